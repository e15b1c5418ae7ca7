"""`verify` in the answers and `--no-verify` on the command line (issue 12): both drop the kfp-verify step from the
plan; a value that is not a boolean is a clear problem; the JSON Schema has the field."""
from __future__ import annotations

from installer.cli import build_parser
from installer.flags import RunFlags
from installer.next_steps import verified_line
from installer.plan import build_plan
from installer.fields import json_schema
from installer.validation import validate_dict

BASE = {"version": 1, "project": "mlops-demo-project", "region": "us-central1", "prefix": "demo"}


def test_verify_default_on_and_false_drops_the_step():
    a, problems = validate_dict(dict(BASE))
    assert problems == [] and a.verify is True
    plan = build_plan(a)
    assert plan.ids[-1] == "kfp-verify" and plan["kfp-verify"].deps == ("kfp-ui",)
    a, problems = validate_dict({**BASE, "verify": False})
    assert problems == [] and a.verify is False and "kfp-verify" not in build_plan(a).ids


def test_verify_must_be_a_boolean():
    a, problems = validate_dict({**BASE, "verify": 3})
    assert a is None and [p.path for p in problems] == ["verify"]


def test_schema_and_flag():
    assert json_schema()["properties"]["verify"]["type"] == "boolean"
    a, _ = validate_dict(dict(BASE))
    args = build_parser().parse_args(["--non-interactive", "--no-verify"])
    RunFlags.from_args(args).apply_to(a)
    assert a.verify is False and "kfp-verify" not in build_plan(a).ids


def test_verified_line():
    assert verified_line({}) == "" and verified_line({"state": "FAILED"}) == ""
    assert verified_line({"state": "SUCCEEDED", "seconds": 41.6, "run_url": "https://u/#/runs/details/r"}) == \
        "verified: pipeline run succeeded in 42s: https://u/#/runs/details/r"
