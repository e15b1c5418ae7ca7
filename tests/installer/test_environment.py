"""Runtime and tool detection (real subprocesses; tools that are absent are reported, not raised)."""
from __future__ import annotations

import os
import shutil
import stat

from installer.environment import check_tools, detect_runtime, gcloud_account, terminal_size


def test_detect_runtime(tmp_path):
    none = tmp_path / "none"
    assert detect_runtime({"CLOUD_SHELL": "true"}, none).kind == "cloud-shell"
    cs = detect_runtime({"DEVSHELL_GCLOUD_CONFIG": "cloudshell-1", "GOOGLE_CLOUD_PROJECT": "no-project-id"}, none)
    assert cs.kind == "cloud-shell" and cs.project_hint is None and any("tmux" in n for n in cs.notes)
    assert detect_runtime({"MLOPS_INSTALL_RUNTIME": "tfx-dev"}, none).kind == "tfx-dev"
    marker = tmp_path / "tfx-dev"
    marker.write_text("")
    assert detect_runtime({}, marker).kind == "tfx-dev"
    other = detect_runtime({"GOOGLE_CLOUD_PROJECT": "p-123456", "CLOUD_SHELL_PROJECT": "ignored"}, none)
    assert other.kind == "other" and other.project_hint == "p-123456"


def test_check_tools_real_and_missing(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    tool = fake / "kubectl"
    tool.write_text('#!/bin/sh\necho \'{"clientVersion": {"gitVersion": "v1.31.2"}, "kustomizeVersion": "v5.4.2"}\'\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}/usr/bin:/bin")
    res = {t.name: t for t in check_tools(["kubectl", "kubectl-kustomize", "no-such-tool-zz"])}
    assert res["kubectl"].found and res["kubectl"].version == "v1.31.2" and res["kubectl"].path == str(tool)
    assert res["kubectl-kustomize"].found and res["kubectl-kustomize"].version == "v5.4.2"
    assert not res["no-such-tool-zz"].found and res["no-such-tool-zz"].hint


def test_gcloud_account_never_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gc"))
    monkeypatch.setenv("CLOUDSDK_CORE_CHECK_GCE_METADATA", "false")
    acct = gcloud_account(timeout=20)
    assert acct is None or "@" in acct
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gcloud_account() is None


def test_terminal_size():
    cols, rows = terminal_size()
    assert cols > 0 and rows > 0
