"""Answers validation: each rule, every problem at once with its line, did-you-mean, schema, round trip."""
from __future__ import annotations

import json
import os
import stat
import textwrap
from pathlib import Path

import pytest
import yaml

from installer.answers import Answers
from installer.cli import main
from installer.errors import BadInput
from installer.fields import FIELDS, json_schema
from installer.validation import (answers_from_dict, dump_answers, load_answers, validate_dict, validate_partial,
                                  validate_text)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "answers.yaml"
BASE = {"project": "mlops-demo-project", "region": "us-central1", "prefix": "demo"}


def problems_of(d):
    answers, problems = validate_dict(d)
    return problems


def one(d, path):
    probs = [p for p in problems_of(d) if p.path == path]
    assert probs, f"no problem at {path}: {problems_of(d)}"
    return probs[0]


def with_(**kw):
    d = json.loads(json.dumps(BASE))
    for k, v in kw.items():
        head, _, rest = k.partition("__")
        if rest:
            d.setdefault(head, {})[rest] = v
        else:
            d[head] = v
    return d


def test_example_is_valid_and_uses_defaults():
    a = load_answers(EXAMPLE)
    assert a == Answers(project="mlops-demo-project", region="us-central1", prefix="demo", zone="us-central1-a")
    assert a.names.cluster == "demo-kfp-cluster"


def test_minimal_dict():
    a = answers_from_dict(BASE)
    assert a.zone is None and a.credentials == "key" and a.cluster.node_count == 1  # regional: 1 per zone


def test_bad_prefix_unknown_key_no_project_all_reported_with_lines(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("version: 1\nregion: us-central1\nprefix: Demo_1\nclustr:\n  node_count: 3\n")
    with pytest.raises(BadInput) as err:
        load_answers(f)
    by_path = {p.path: p for p in err.value.problems}
    assert by_path["prefix"].line == 3
    assert by_path["clustr"].line == 4 and "did you mean 'cluster'" in by_path["clustr"].hint
    assert "project" in by_path and "missing" in by_path["project"].message


@pytest.mark.parametrize("value,ok", [
    ("mlops-demo-project", True), ("abcdef", True), ("abcde", False), ("a" * 31, False), ("1abcdef", False),
    ("abcdef-", False), ("Abcdefg", False), ("my-google-proj", False), ("proj_under", False),
])
def test_project_rule(value, ok):
    assert (not [p for p in problems_of(with_(project=value)) if p.path == "project"]) is ok


@pytest.mark.parametrize("value,ok", [
    ("demo", True), ("a", True), ("a" * 23, True), ("a" * 24, False), ("Demo", False), ("demo-", False),
    ("1demo", False), ("de_mo", False), ("goog", False), ("my-google", False),
])
def test_prefix_rule_including_derived_names(value, ok):
    assert (not [p for p in problems_of(with_(prefix=value)) if p.path == "prefix"]) is ok


def test_prefix_goog_names_the_bucket():
    p = one(with_(prefix="googly"), "prefix")
    assert "bucket" in p.message and "goog" in p.message


@pytest.mark.parametrize("path,value,ok", [
    ("cluster__existing", "my-cluster", True), ("cluster__existing", "a" * 41, False),
    ("cluster__existing", "My-cluster", False), ("cluster__existing", "c-", False),
    ("sql__existing", "my-sql-1", True), ("sql__existing", "a" * 99, False), ("sql__existing", "sql_1", False),
    ("sql__existing", "1sql", False),
    ("bucket__existing", "my.bucket_1", True), ("bucket__existing", "ab", False), ("bucket__existing", "a" * 64, False),
    ("bucket__existing", "goog-bucket", False), ("bucket__existing", "my-google-bucket", False),
    ("bucket__existing", "192.168.1.1", False), ("bucket__existing", "-ab", False),
])
def test_existing_resource_names(path, value, ok):
    d = with_(**{path: value})
    dotted = path.replace("__", ".")
    assert (not [p for p in problems_of(d) if p.path == dotted]) is ok, problems_of(d)


@pytest.mark.parametrize("region,zone,ok_region,ok_zone", [
    ("us-central1", "us-central1-a", True, True), ("us-central1", None, True, True),
    ("europe-west4", "us-central1-b", True, False), ("us-central1-a", None, False, True),
    ("uscentral", None, False, True), ("us-central1", "us-central1", True, False),
    ("northamerica-northeast1", "northamerica-northeast1-c", True, True),
])
def test_region_zone(region, zone, ok_region, ok_zone):
    d = with_(region=region, zone=zone)
    probs = problems_of(d)
    assert (not [p for p in probs if p.path == "region"]) is ok_region, probs
    assert (not [p for p in probs if p.path == "zone"]) is ok_zone, probs


def test_zone_outside_region_message():
    p = one(with_(zone="us-east1-b"), "zone")
    assert "not in region 'us-central1'" in p.message and "us-east1" in p.hint


@pytest.mark.parametrize("path,value,ok", [
    ("credentials", "key", True), ("credentials", "workload-identity", True), ("credentials", "keys", False),
    ("credentials", "wi", False),
    ("kfp__version", "2.14.4", True), ("kfp__version", "2.0.0-rc.1", True), ("kfp__version", "v2.14.4", False),
    ("kfp__version", "2.14", False), ("kfp__version", "latest", False),
    ("kfp__namespace", "kubeflow", True), ("kfp__namespace", "Kubeflow", False),
    ("kfp__manifests", "upstream", True), ("kfp__manifests", "/definitely/not/here", False),
    ("cluster__release_channel", "REGULAR", True), ("cluster__release_channel", "STABLE", True),
    ("cluster__release_channel", "regular", False), ("cluster__release_channel", "NIGHTLY", False),
    ("cluster__node_count", 1, True), ("cluster__node_count", 0, False), ("cluster__node_count", -3, False),
    ("cluster__node_count", "3", False), ("cluster__node_count", True, False), ("cluster__node_count", 2.5, False),
    ("cluster__machine_type", "e2-standard-4", True), ("cluster__machine_type", "big", False),
    ("sql__disk_size_gb", 10, True), ("sql__disk_size_gb", 9, False),
    ("sql__tier", "db-f1-micro", True), ("sql__tier", "n1-standard-2", False),
    ("sql__database_version", "MYSQL_8_0", True), ("sql__database_version", "POSTGRES_15", False),
    ("apis__enable", False, True), ("apis__enable", "yes", False),
    ("apis__required", ["container.googleapis.com"], True), ("apis__required", ["container"], False),
    ("apis__required", "container.googleapis.com", False), ("apis__required", [3], False),
    ("apis__required", ["iam.googleapis.com", "iam.googleapis.com"], False),
    ("service_accounts__kfp_roles", ["roles/storage.admin"], True),
    ("service_accounts__kfp_roles", ["storage.admin"], False),
    ("bucket__location", "US", True), ("bucket__location", "us central", False),
    ("version", 1, True), ("version", 2, False),
])
def test_field_rules(path, value, ok):
    d = with_(**{path: value})
    dotted = path.replace("__", ".")
    probs = [p for p in problems_of(d) if p.path == dotted or p.path.startswith(dotted + "[")]
    assert (not probs) is ok, problems_of(d)


def test_manifests_folder_relative_to_the_file(tmp_path):
    (tmp_path / "kfp").mkdir()  # a folder of manifests (an empty one fails: tests/installer/test_answers_input.py)
    (tmp_path / "kfp" / "cluster-scoped.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: kubeflow}\n")
    (tmp_path / "kfp" / "env-gcp.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    f = tmp_path / "a.yaml"
    f.write_text(yaml.safe_dump({**BASE, "kfp": {"manifests": "kfp"}}))
    a = load_answers(f)
    assert a.kfp.manifests == str((tmp_path / "kfp").resolve())


def test_hints():
    assert "did you mean 'workload-identity'" in one(with_(credentials="workload_identity"), "credentials").hint
    assert "without quotes" in one(with_(cluster__node_count="3"), "cluster.node_count").hint
    assert "without the 'v'" in one(with_(kfp__version="v2.14.4"), "kfp.version").hint
    assert "did you mean 'cluster.node_count'" in one(with_(cluster__node_cout=3), "cluster.node_cout").hint
    assert "cluster.node_count" in one(with_(node_count=3), "node_count").hint
    assert "container.googleapis.com" in one(with_(apis__required=["container"]), "apis.required[0]").hint


def test_every_problem_at_once_with_lines():
    text = textwrap.dedent("""\
        version: 1
        project: Bad
        region: us-central1
        zone: europe-west1-b
        prefix: demo
        credentials: keyz
        cluster:
          node_count: 0
          release_channel: nightly
          colour: red
        sql:
          disk_size_gb: 5
        kfp:
          version: v1
        extra: 1
    """)
    answers, probs = validate_text(text)
    assert answers is None
    got = {(p.path, p.line) for p in probs}
    assert {("project", 2), ("zone", 4), ("credentials", 6), ("cluster.node_count", 8),
            ("cluster.release_channel", 9), ("cluster.colour", 10), ("sql.disk_size_gb", 12),
            ("kfp.version", 14), ("extra", 15)} <= got, got


def test_yaml_syntax_error_has_a_line():
    answers, probs = validate_text("project: a\nregion: [us\nprefix: x\n")
    assert answers is None and probs[0].line is not None and "YAML" in probs[0].message


def test_duplicate_key_is_reported():
    answers, probs = validate_text("project: mlops-demo-project\nregion: us-central1\nprefix: a\nprefix: b\n")
    assert any("duplicate" in p.message and p.line == 4 for p in probs)


@pytest.mark.parametrize("text", ["", "null", "[]", "- a\n- b", "42", "just text", "{}"])
def test_not_a_mapping_or_empty(text):
    answers, probs = validate_text(text)
    assert answers is None and probs


def test_section_not_a_mapping():
    assert "section" in one(with_(cluster=3), "cluster").message


def test_partial_for_the_wizard():
    part = validate_partial({"project": "mlops-demo-project", "cluster": {"node_count": 0}})
    assert part.missing == ["region", "prefix"]
    assert part.values["project"] == "mlops-demo-project"
    assert [p.path for p in part.problems] == ["cluster.node_count"]
    assert not part.complete
    assert validate_partial(BASE).complete


def test_dump_round_trip_is_private(tmp_path):
    a = load_answers(EXAMPLE)
    a.cluster.existing = "old-cluster"
    out = dump_answers(a, tmp_path / "out.yaml", why="wizard")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    text = out.read_text()
    assert text.startswith("# mlops-install answers file")
    assert load_answers(out) == a


def test_schema_covers_every_field_and_matches_the_model():
    s = json_schema()
    assert s["additionalProperties"] is False and s["required"] == ["project", "region", "prefix"]
    for f in FIELDS:
        head, _, rest = f.path.partition(".")
        node = s["properties"][head]
        if rest:
            assert node["additionalProperties"] is False
            node = node["properties"][rest]
        assert node["description"]
    # the field table and the dataclasses describe the same keys
    model = Answers(**BASE).to_dict()
    flat = {f"{k}.{kk}" if isinstance(v, dict) else k for k, v in model.items()
            for kk in (v if isinstance(v, dict) else [None])}
    assert flat == {f.path for f in FIELDS}


def test_schema_validates_the_example_with_jsonschema_if_available():
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load(EXAMPLE.read_text())
    jsonschema.validate(data, json_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "prefix": "Bad_"}, json_schema())


def test_cli_validate_names_all_three_with_lines(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text("version: 1\nregion: us-central1\nprefix: BAD\ncolor: blue\n")
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert "line 3: prefix" in err and "line 4: color: unknown key" in err and "project" in err and "missing" in err
    assert "Traceback" not in err


def test_cli_validate_ok_and_schema(capsys):
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "mlops-install answers file"


def test_cli_validate_json_output(tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text("project: x\n")
    assert main(["validate", str(f), "--output", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and {p["path"] for p in doc["problems"]} >= {"project", "region", "prefix"}


def test_billion_laughs_and_cyclic_aliases_are_quick(tmp_path, capsys):
    import time
    rows = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefgh"
    for prev, cur in zip(names, names[1:]):
        rows.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    rows += ["project: &i [" + ",".join(["*h"] * 9) + "]", "region: *i", "prefix: &r [1, *r]",
             "cluster: {node_count: *i}", "apis: {required: *h}"]
    f = tmp_path / "laughs.yaml"
    f.write_text("\n".join(rows) + "\n")
    t = time.monotonic()
    assert main(["validate", str(f)]) == 2
    assert time.monotonic() - t < 5
    err = capsys.readouterr().err
    assert "line 9: project: must be a string" in err and "prefix" in err


def test_derived_name_rules_directly():
    """Rules that a valid prefix cannot break today, checked on their own (a longer suffix or limit change would)."""
    from installer.field_checks import (check_bucket, check_cluster, check_network, check_sa_id,
                                        check_sql_instance)
    assert not check_network("a" * 63) and check_network("a" * 64) and check_network("1net") and check_network("")
    assert not check_sa_id("abcdef") and check_sa_id("abcde") and check_sa_id("a" * 31) and check_sa_id("abcde-")
    assert not check_cluster("a" * 40) and check_cluster("a" * 41)
    assert not check_sql_instance("a" * 98) and check_sql_instance("a" * 99) and check_sql_instance("a_b")
    assert check_bucket("googbucket") and check_bucket("a-google-b") and check_bucket("g00gle-x")
    assert not check_bucket("my-bucket.v1_x")
