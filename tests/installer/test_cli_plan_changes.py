"""``mlops-install plan`` (issue 19 part C): each update row's changes (field, old -> new), the cluster size line
(``installer.sizing``) and a summary line counting create / adopt / update."""
from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace

import pytest

from backends.infra.harness import run_infra
from installer import commands, validation
from installer.answers import Answers
from installer.sizing import cluster_size


@pytest.mark.sandbox_speed(0.005)
def test_plan_prints_changes_size_and_summary(sandbox, tmp_path, monkeypatch, capsys, kfp_fixtures):
    root = tmp_path / "state"
    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(root))
    sandbox.enable()
    a = Answers(project=sandbox.project, region="us-central1", zone="us-central1-a", prefix="pln")
    a.kfp.manifests = str(kfp_fixtures)
    fin, _ = asyncio.run(run_infra(a, journal_root=root, preflight=False))
    assert fin.exit_code == 0

    b = copy.deepcopy(a)
    b.cluster.node_count = 2
    path = validation.dump_answers(b, tmp_path / "b.yaml", why="test")
    capsys.readouterr()
    assert commands.cmd_plan(SimpleNamespace(answers=str(path), check=True, output="text")) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    cluster_row = next(i for i, ln in enumerate(lines) if ln.strip().startswith("cluster ") and "update" in ln)
    assert "cluster.node_count: 3 -> 2" in lines[cluster_row + 1], out
    assert f"cluster: {cluster_size(b).describe()}" in out
    assert cluster_size(b).describe() == "2 nodes (1 zone), 8 vCPU, 200 GB boot disk"
    summary = next(ln for ln in lines if ln.endswith(" update") or " update," in ln)
    n_create, n_adopt, n_update = (int(summary.split(", ")[i].split()[0]) for i in range(3))
    # cluster resize + sql-user reset; the 9 creates include kfp-verify (a first pipeline run, issue 12)
    assert n_update == 2 and n_create == 9 and "10 unchanged" in summary, out
