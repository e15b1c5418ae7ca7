"""Inputs the usual way (issue 15): flags > answers file > environment > gcloud's config files > defaults, the
same chain for every command and for the wizard's prefill (``installer.inputs``)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from installer import inputs
from installer.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "answers.yaml"
ENV_VARS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "CLOUDSDK_COMPUTE_REGION", "CLOUDSDK_COMPUTE_ZONE",
            "CLOUDSDK_ACTIVE_CONFIG_NAME")


def gcloud_config(root: Path, name: str = "default", active: bool = True, **props: dict[str, str]) -> Path:
    """A gcloud config folder as gcloud writes it: active_config names the configuration, whose INI properties
    file is configurations/config_<name>."""
    (root / "configurations").mkdir(parents=True, exist_ok=True)
    if active:
        (root / "active_config").write_text(name)
    body = "".join(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
                   for section, values in props.items())
    (root / "configurations" / f"config_{name}").write_text(body)
    return root


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for v in ENV_VARS:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    return tmp_path / "gcloud"


def test_gcloud_config_files_are_read_without_gcloud(tmp_path):
    cfg = gcloud_config(tmp_path / "gc", "work", core={"project": "gc-proj-1", "account": "me@example.com"},
                        compute={"region": "europe-west4", "zone": "europe-west4-b"})
    gcloud_config(cfg, "other", active=False, core={"project": "other-proj-1"})
    env = {"CLOUDSDK_CONFIG": str(cfg)}
    got = inputs.ambient(env)
    assert got["project"] == ("gc-proj-1", "gcloud config core/project, configuration work")
    assert got["region"][0] == "europe-west4" and got["zone"][0] == "europe-west4-b"
    # CLOUDSDK_ACTIVE_CONFIG_NAME picks another configuration, as gcloud does
    assert inputs.ambient({**env, "CLOUDSDK_ACTIVE_CONFIG_NAME": "other"})["project"][0] == "other-proj-1"
    # no active_config file: the configuration named default
    (cfg / "active_config").unlink()
    assert inputs.ambient(env) == {}
    gcloud_config(cfg, "default", active=False, core={"project": "dflt-proj-1"})
    assert inputs.ambient(env)["project"][0] == "dflt-proj-1"
    # HOME's ~/.config/gcloud without CLOUDSDK_CONFIG
    home = tmp_path / "home"
    gcloud_config(home / ".config" / "gcloud", core={"project": "home-proj-1"})
    assert inputs.ambient({"HOME": str(home)})["project"][0] == "home-proj-1"


def test_broken_or_odd_gcloud_config_is_ignored(tmp_path):
    cfg = tmp_path / "gc"
    (cfg / "configurations").mkdir(parents=True)
    (cfg / "active_config").write_text("../../etc")  # not a configuration name: default
    (cfg / "configurations" / "config_default").write_text("not [ini\n= at all")
    assert inputs.ambient({"CLOUDSDK_CONFIG": str(cfg)}) == {}
    (cfg / "configurations" / "config_default").unlink()
    os.symlink("/etc/hostname", cfg / "configurations" / "config_default")  # a link is not followed
    assert inputs.ambient({"CLOUDSDK_CONFIG": str(cfg)}) == {}


def test_precedence_flag_file_env_gcloud_default(tmp_path):
    cfg = gcloud_config(tmp_path / "gc", core={"project": "gc-proj-1"},
                        compute={"region": "asia-east1", "zone": "asia-east1-b"})
    env = {"CLOUDSDK_CONFIG": str(cfg)}
    # gcloud only
    r = inputs.resolve(None, {}, {}, env)
    assert (r.data["project"], r.data["region"], r.data["zone"]) == ("gc-proj-1", "asia-east1", "asia-east1-b")
    assert r.source("project").startswith("gcloud config core/project")
    # environment over gcloud; GOOGLE_CLOUD_PROJECT before CLOUDSDK_CORE_PROJECT
    env2 = {**env, "CLOUDSDK_CORE_PROJECT": "env-proj-2", "GOOGLE_CLOUD_PROJECT": "env-proj-1",
            "CLOUDSDK_COMPUTE_REGION": "us-east1"}
    r = inputs.resolve(None, {}, {}, env2)
    assert r.data["project"] == "env-proj-1" and r.source("project") == "environment GOOGLE_CLOUD_PROJECT"
    assert r.data["region"] == "us-east1" and "zone" not in r.data  # gcloud's zone is not in that region
    # the answers file over the environment
    r = inputs.resolve({"project": "file-proj-1", "region": "us-west1", "zone": None}, {}, {}, env2)
    assert r.data["project"] == "file-proj-1" and r.source("project") == inputs.FILE
    assert r.data["zone"] is None  # an explicit regional cluster stays regional
    # flags over the file
    r = inputs.resolve({"project": "file-proj-1", "cluster": {"node_count": 2}},
                       {"project": "flag-proj-1", "cluster.node_count": 4},
                       {"project": "flag --project", "cluster.node_count": "flag --set cluster.node_count"}, env2)
    assert r.data["project"] == "flag-proj-1" and r.data["cluster"] == {"node_count": 4}
    assert r.source("cluster.node_count") == "flag --set cluster.node_count"
    # nothing anywhere: the default (none)
    assert inputs.resolve(None, {}, {}, {"CLOUDSDK_CONFIG": str(tmp_path / "none")}).data == {}


def test_set_is_typed_by_the_schema_with_did_you_mean():
    vals, problems = inputs.parse_set(["cluster.node_count=3", "apis.enable=no", "zone=none",
                                       "service_accounts.kfp_roles=roles/a.b, roles/c.d", "kfp.version=2.14.4"])
    assert not problems
    assert vals == {"cluster.node_count": 3, "apis.enable": False, "zone": None,
                    "service_accounts.kfp_roles": ["roles/a.b", "roles/c.d"], "kfp.version": "2.14.4"}
    _, problems = inputs.parse_set(["cluster.nod_count=3", "clustr.node_count=3", "sql.disk_size_gb=big",
                                    "noequals", "apis.enable=maybe"])
    text = [str(p) for p in problems]
    assert "did you mean 'cluster.node_count'?" in text[0]
    assert "did you mean 'cluster'?" in text[1]
    assert "must be a whole number" in text[2] and "key.path=value" in text[3] and "true or false" in text[4]


def test_cli_needs_no_answers_file_when_flags_give_project_region_prefix(clean_env, capsys):
    rc = main(["validate", "--project", "flag-proj-1", "--region", "europe-west4", "--prefix", "fl",
               "--set", "cluster.node_count=2", "-o", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["env_id"] == "flag-proj-1--fl"
    assert out["sources"]["project"] == "flag --project" and out["sources"]["cluster.node_count"].startswith("flag")
    rc = main(["plan", "--project", "flag-proj-1", "--region", "europe-west4", "--prefix", "fl", "--no-check"])
    out = capsys.readouterr().out
    assert rc == 0 and "Plan for project flag-proj-1, prefix fl: region europe-west4" in out
    assert "project flag-proj-1 (flag --project)" in out


def test_cli_flags_override_the_file_and_errors_say_where(clean_env, capsys):
    gcloud_config(clean_env, core={"project": "gc-proj-1"})
    assert main(["validate", str(EXAMPLE), "--prefix", "other", "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["env_id"] == "mlops-demo-project--other"  # the file's project, the flag's prefix
    assert main(["validate", str(EXAMPLE), "--set", "cluster.node_cout=2", "--zone", "europe-west4-a"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'cluster.node_cout'" in err and "did you mean 'cluster.node_count'?" in err
    assert "zone 'europe-west4-a' is not in region 'us-central1' (from flag --zone)" in err
    assert "Traceback" not in err


def test_cli_fills_the_file_from_gcloud_config(clean_env, tmp_path, capsys):
    gcloud_config(clean_env, core={"project": "gc-proj-1"}, compute={"region": "asia-east1"})
    f = tmp_path / "a.yaml"
    f.write_text("version: 1\nprefix: gc\n")
    assert main(["validate", str(f)]) == 0
    out = capsys.readouterr().out
    assert "project gc-proj-1" in out and "gcloud config core/project, configuration default" in out
    # without anything, the old message: what is missing
    (clean_env / "configurations" / "config_default").unlink()
    assert main(["validate", str(f)]) == 2
    assert "project is required but missing" in capsys.readouterr().err


def test_cli_without_any_input_says_how(clean_env, capsys):
    assert main(["plan", "--no-check"]) == 2
    err = capsys.readouterr().err
    assert "no answers" in err and "init" in err


def test_wizard_prefill_uses_the_same_chain(clean_env, tmp_path):
    gcloud_config(clean_env, core={"project": "gc-proj-1"}, compute={"region": "asia-east1"})
    import argparse
    args = argparse.Namespace(in_project=None, in_region="us-east1", in_zone=None, in_prefix="wz",
                              in_credentials=None, set=None, enable_apis=False)
    partial, resolved = inputs.load_partial_resolved(None, args)
    assert partial.values["project"] == "gc-proj-1" and partial.values["region"] == "us-east1"
    assert resolved.sources["region"] == "flag --region" and resolved.sources["project"].startswith("gcloud")
    from screens import services
    from screens.state import WizardState
    data, _ = services.prefill_from(partial)
    state = WizardState(data, sources=resolved.sources)
    assert state.source_note("project") == "from gcloud config core/project, configuration default"
    assert state.source_note("region") == "from flag --region"
    assert state.source_note("zone") == ""
