"""Issue 14, cases 2 and 3: files are written without following links (installer/files.py).

Where ownership matters the writer runs as an unprivileged user (``nobody``, through ``setpriv``) in a
world-writable folder, the way an attacker's planted link would meet a real user; those cases are skipped only
where this machine cannot drop privileges (not root, or no ``setpriv``)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from installer.errors import BadInput
from installer.files import UnsafePath, create_new, private_dir, write_file
from tests.keymaterial import pem

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
CAN_DROP = os.geteuid() == 0 and shutil.which("setpriv") is not None
needs_drop = pytest.mark.skipif(not CAN_DROP, reason="needs root and setpriv to run a writer as another user")


def as_nobody(code: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            sys.executable, "-c", textwrap.dedent(code)]
    e = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_INSTALL")}
    e.update(HOME="/nonexistent", PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=e)


def cli(*args: str, env: dict, as_user: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    code = f"import sys; from installer.cli import main; sys.exit(main({list(args)!r}))"
    if as_user:
        return as_nobody(code, env, timeout)
    e = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env=e)


@pytest.fixture
def shared() -> Path:
    """A world-writable, sticky folder (like /tmp) that both root and nobody can write into (pytest's own
    tmp_path sits under a 0700 folder nobody cannot enter)."""
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="mlops-issue14-", dir="/tmp"))
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


KEY = {"type": "service_account", "private_key_id": "k1" * 20, "private_key": pem(),  # generated at test time
       "client_email": "demo-kfp-sa@p.iam.gserviceaccount.com"}


# -- --export-key -------------------------------------------------------------------------------------------------
@needs_drop
def test_export_key_never_follows_a_planted_link(shared):
    victim = shared / "victim"
    victim.write_text("precious")
    os.chown(victim, NOBODY, NOBODY)
    (shared / "key.json").symlink_to(victim)
    p = as_nobody(f"""
        from backends.secrets.custody import export_key
        from installer.errors import BadInput
        try:
            export_key({str(shared / 'key.json')!r}, {json.dumps(KEY)!r}, {KEY['private_key_id']!r})
        except BadInput as exc:
            print("refused:", exc.message)
        """)
    assert "refused:" in p.stdout and "symbolic link" in p.stdout, p.stdout + p.stderr
    assert victim.read_text() == "precious" and (shared / "key.json").is_symlink()


@needs_drop
def test_export_key_already_there_only_for_the_journals_key(shared):
    key = json.dumps(KEY)
    code = f"""
        from backends.secrets.custody import export_key
        from installer.errors import BadInput
        import sys
        try:
            print(export_key(sys.argv[1] if len(sys.argv) > 1 else {str(shared / 'k.json')!r}, {key!r},
                             {KEY['private_key_id']!r})[1])
        except BadInput as exc:
            print("refused:", exc.message)
        """
    first = as_nobody(code)
    assert first.stdout.strip() == "written", first.stderr
    st = os.stat(shared / "k.json")
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == NOBODY
    assert as_nobody(code).stdout.strip() == "already there"
    # an empty file from a failed attempt, or another key: refused, left as it is
    (shared / "k.json").unlink()
    (shared / "k.json").write_text("")
    os.chown(shared / "k.json", NOBODY, NOBODY)
    out = as_nobody(code).stdout
    assert "refused:" in out and "is empty" in out and "no key was written" in out, out
    (shared / "k.json").write_text(json.dumps({**KEY, "private_key_id": "other"}))
    out = as_nobody(code).stdout
    assert "holds another key (other)" in out, out
    # someone else's file at the path: refused without reading or replacing it
    (shared / "k.json").unlink()
    (shared / "k.json").write_text("root's")
    out = as_nobody(code).stdout
    assert "refused:" in out and "another user" in out, out
    assert (shared / "k.json").read_text() == "root's"


# -- the lock, the state folders, the debug log ------------------------------------------------------------------
def _journal_lock(state: Path, env: str = "p-demo"):
    from installer.journal import Journal
    return Journal(env, state).lock()


@needs_drop
def test_symlinked_lock_is_refused_and_its_target_kept(shared):
    state = shared / "state"
    env_dir = state / "envs" / "p--demo"
    env_dir.mkdir(parents=True)
    for d in (state, state / "envs", env_dir):
        os.chown(d, NOBODY, NOBODY)
        os.chmod(d, 0o700)
    target = shared / "target"
    target.write_text("keep me")
    os.chown(target, NOBODY, NOBODY)
    (env_dir / "lock").symlink_to(target)
    p = as_nobody(f"""
        from installer.journal import Journal
        from installer.errors import BadInput
        try:
            Journal("p--demo", __import__("pathlib").Path({str(state)!r})).lock()
            print("locked")
        except BadInput as exc:
            print("refused:", exc.message)
        """)
    assert "refused:" in p.stdout and "symbolic link" in p.stdout, p.stdout + p.stderr
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("what", ["folder", "fifo"])
def test_a_folder_or_fifo_as_the_lock_is_a_clear_error_not_a_hang(tmp_path, what):
    from installer.journal import Journal
    j = Journal("p--demo", tmp_path / "state")
    j.dir.mkdir(parents=True)
    if what == "folder":
        j.lock_path.mkdir()
    else:
        os.mkfifo(j.lock_path)
    with pytest.raises(BadInput) as ei:
        j.lock()
    assert ("a folder" if what == "folder" else "a FIFO") in ei.value.message
    # through the command line: exit 2, a message, no traceback, no hang
    answers = tmp_path / "a.yaml"
    answers.write_text("version: 1\nproject: p-demo-project\nregion: us-central1\nprefix: demo\n")
    j2 = Journal("p-demo-project--demo", tmp_path / "state")
    j2.dir.mkdir(parents=True)
    j2.lock_path.mkdir() if what == "folder" else os.mkfifo(j2.lock_path)
    p = cli("destroy", "--answers", str(answers), "--yes", env={"MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state")},
            timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def test_state_folders_are_0700_whatever_the_umask(tmp_path):
    state = tmp_path / "state"
    code = (f"import os; os.umask(0); from pathlib import Path; from installer.journal import Journal; "
            f"from installer.logs import setup_logging; j = Journal('p--demo', Path({str(state)!r})); j.lock(); "
            f"j.start_run(); j.unlock(); setup_logging(state_dir=Path({str(state)!r}))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MLOPS_INSTALL_STATE_DIR": str(state)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert p.returncode == 0, p.stderr
    for d in (state, state / "envs", state / "envs" / "p--demo", state / "logs"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    for f in [state / "envs" / "p--demo" / "journal.json", state / "envs" / "p--demo" / "lock",
              *(state / "logs").iterdir()]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


@needs_drop
def test_a_foreign_state_folder_is_refused_with_a_message(shared):
    state = shared / "state"
    state.mkdir()
    os.chmod(state, 0o777)  # root's, writable by all: not a place for nobody's journals
    p = cli("status", env={"MLOPS_INSTALL_STATE_DIR": str(state)}, as_user=True)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "belongs to another user" in p.stderr and "MLOPS_INSTALL_STATE_DIR" in p.stderr, p.stderr
    assert not any(state.iterdir())


@needs_drop
def test_log_file_through_a_link_is_refused(shared):
    target = shared / "target"
    target.write_text("keep me")
    os.chown(target, NOBODY, NOBODY)
    (shared / "my.log").symlink_to(target)
    state = shared / "st"
    p = cli("--log-file", str(shared / "my.log"), "status",
            env={"MLOPS_INSTALL_STATE_DIR": str(state)}, as_user=True)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "symbolic link" in p.stderr, p.stderr
    assert target.read_text() == "keep me"


# -- kubeconfig, render output, the helpers -----------------------------------------------------------------------
def test_a_symlinked_kubeconfig_stays_a_link_and_its_target_is_written(tmp_path):
    from backends.k8s.kubeconfig import write_kubeconfig
    real = tmp_path / "dotfiles" / "kubeconfig"
    real.parent.mkdir()
    real.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "a",
                                                                                      "cluster": {"server": "x"}}]}))
    os.chmod(real, 0o600)
    link = tmp_path / ".kube" / "config"
    link.parent.mkdir()
    link.symlink_to(real)
    path, ctx = write_kubeconfig("p", "us-central1-a", "c", "1.2.3.4", "Q0E=", path=link)
    assert path == link and link.is_symlink() and os.readlink(link) == str(real)
    doc = yaml.safe_load(real.read_text())
    assert {c["name"] for c in doc["clusters"]} == {"a", ctx} and doc["current-context"] == ctx
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_render_output_is_0600_and_never_written_through_a_link(tmp_path):
    from installer.answers import Answers, KfpAnswers
    from backends.kfp.render import write_review
    src = tmp_path / "kfp"
    src.mkdir()
    (src / "cluster-scoped.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: kubeflow}\n")
    (src / "env-gcp.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: kubeflow}\n"
                                      "data: {k: c2VjcmV0}\n")
    a = Answers(project="p-demo-project", region="us-central1", prefix="demo",
                kfp=KfpAnswers(manifests=str(src)))
    out = tmp_path / "out"
    files = write_review(a, out)
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    victim = tmp_path / "victim"
    victim.write_text("system file")
    (out / "env.yaml").unlink()
    (out / "env.yaml").symlink_to(victim)
    with pytest.raises(UnsafePath):
        write_review(a, out)
    assert victim.read_text() == "system file"


def test_helpers(tmp_path):
    p = write_file(tmp_path / "a", b"1")
    assert p.read_bytes() == b"1"
    with pytest.raises(FileExistsError):
        create_new(tmp_path / "a", b"2")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        create_new(tmp_path / "dangling", b"x")
    assert not (tmp_path / "nowhere").exists()
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(UnsafePath):
        private_dir(f)
