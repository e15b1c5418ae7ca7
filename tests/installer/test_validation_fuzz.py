"""Property-based fuzzing of answers files through the real command-line entry, in-process.

Whatever the file holds: exit 2 with a message (or 0 when the file happens to be valid), never a traceback.
"""
from __future__ import annotations

import copy
import string
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.cli import main

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "answers.yaml").read_text())
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
                    st.sampled_from(["us-central1", "us-central1-a", "demo", "key", "upstream", "REGULAR", "goog",
                                     "2.14.4", "roles/x", "x.googleapis.com", "", "~", "null", "0x10", "1e3"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=12)
keys = st.sampled_from(["version", "project", "region", "zone", "prefix", "credentials", "apis", "cluster", "sql",
                        "bucket", "kfp", "service_accounts", "node_count", "clustr", "machine_type", "enable",
                        "required", "existing", "manifests", "namespace", "tier"])


def run(tmp_path: Path, capsys, data: bytes | str, *argv_extra: str) -> tuple[int, str, str]:
    f = tmp_path / "fuzz.yaml"
    f.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    rc = main(["validate", str(f), *argv_extra])
    out, err = capsys.readouterr()
    return rc, out, err


def check(rc: int, out: str, err: str, valid_possible: bool = True) -> None:
    assert "Traceback" not in err and "Traceback" not in out
    if rc == 0:
        assert valid_possible and "valid" in out
    else:
        assert rc == 2, (rc, out, err)
        assert err.startswith("error:") and "how to fix" in err, err


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes(tmp_path, capsys, data):
    check(*run(tmp_path, capsys, data), valid_possible=False)


@SETTINGS
@given(text=st.text(alphabet=string.printable + "äé€\t:-[]{}&*!|>'\"%@`#", max_size=300))
def test_random_text(tmp_path, capsys, text):
    check(*run(tmp_path, capsys, text), valid_possible=False)


@SETTINGS
@given(doc=st.dictionaries(keys, values, max_size=8))
def test_random_documents(tmp_path, capsys, doc):
    check(*run(tmp_path, capsys, yaml.safe_dump(doc, allow_unicode=True)))


@SETTINGS
@given(path=st.sampled_from([(k,) for k in EXAMPLE] + [(s, k) for s in EXAMPLE if isinstance(EXAMPLE[s], dict)
                                                        for k in EXAMPLE[s]]),
       value=values, drop=st.booleans())
def test_one_field_changed(tmp_path, capsys, path, value, drop):
    doc = copy.deepcopy(EXAMPLE)
    target = doc
    for k in path[:-1]:
        target = target[k]
    if drop:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    rc, out, err = run(tmp_path, capsys, yaml.safe_dump(doc, allow_unicode=True))
    check(rc, out, err)
    if rc == 2:
        assert ".".join(path) in err or path[0] in err or "missing" in err


@SETTINGS
@given(doc=st.dictionaries(keys, values, max_size=6))
def test_plan_and_json_output_never_trace(tmp_path, capsys, doc):
    f = tmp_path / "fuzz.yaml"
    f.write_text(yaml.safe_dump(doc))
    rc = main(["plan", "--no-check", "--answers", str(f)])
    out, err = capsys.readouterr()
    assert rc in (0, 2) and "Traceback" not in err
    rc = main(["validate", str(f), "--output", "json"])
    out, err = capsys.readouterr()
    assert rc in (0, 2) and "Traceback" not in err and out.strip().startswith("{")


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=st.dictionaries(keys, values, max_size=6))
def test_non_interactive_with_bad_answers_is_2(tmp_path, capsys, doc):
    from hypothesis import assume

    from installer.validation import validate_dict
    answers, problems = validate_dict(doc)
    assume(problems)  # a valid file would start an install
    f = tmp_path / "fuzz.yaml"
    f.write_text(yaml.safe_dump(doc))
    rc = main(["--non-interactive", "--answers", str(f)])
    out, err = capsys.readouterr()
    assert rc == 2 and err.startswith("error:") and "Traceback" not in err
