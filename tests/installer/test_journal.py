"""The journal: atomic writes under SIGKILL, the lock (live and stale), answers changes, the secret guard."""
from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.keymaterial import pem

from installer.answers import Answers
from installer.journal import Journal, JournalLocked, list_envs
from installer.journal_writer import atomic_write
from installer.secret_guard import SecretInJournal, find_secret
from installer.logs import redact

ROOT = Path(__file__).resolve().parents[2]
A = Answers(project="mlops-demo-project", region="us-central1", prefix="demo")
PEM = pem()  # generated at test time


def test_atomic_write_is_private(tmp_path):
    p = tmp_path / "d" / "f.json"
    atomic_write(p, b"{}")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700


def test_killed_writer_leaves_old_or_new_never_broken(tmp_path):
    """A child saves the journal in a loop; we SIGKILL it at random moments; the file always parses."""
    script = textwrap.dedent(f"""
        import sys, itertools
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from installer.journal import Journal
        j = Journal("mlops-demo-project--demo", Path(sys.argv[1]))
        for i in itertools.count():
            j.data["counter"] = i
            j.data["payload"] = [str(i) * 50] * 2000   # ~100 kB, so a write takes a while
            j.save()
            if i == 0:
                print("ready", flush=True)
    """)
    path = tmp_path / "envs" / "mlops-demo-project--demo" / "journal.json"
    seen = set()
    for n in range(25):
        p = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        time.sleep((n % 7) * 0.011)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if path.exists():
            data = json.loads(path.read_text())  # never a broken file
            i = data["counter"]
            assert data["payload"] == [str(i) * 50] * 2000  # never a mix of two versions
            seen.add(i)
    assert seen, "the writer never finished a save"
    j = Journal("mlops-demo-project--demo", tmp_path)
    j.lock()
    j.unlock()
    assert not list(path.parent.glob(".journal.json.*.tmp"))  # leftovers of killed writers are cleaned


def test_lock_refuses_a_live_holder_and_takes_over_a_stale_one(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from pathlib import Path
        from installer.journal import Journal
        j = Journal("mlops-demo-project--demo", Path(sys.argv[1]))
        j.lock()
        print("locked", flush=True)
        time.sleep(60)
    """), str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        j = Journal("mlops-demo-project--demo", tmp_path)
        with pytest.raises(JournalLocked) as err:
            j.lock()
        assert f"pid {holder.pid}" in err.value.message and "kill" in err.value.remedy
        assert j.lock_holder()["pid"] == holder.pid
        holder.send_signal(signal.SIGKILL)  # dies holding the lock: a stale lock file remains
        holder.wait()
        j.lock()
        assert any(f"stale lock" in n and str(holder.pid) in n for n in j.notes), j.notes
        assert json.loads(j.lock_path.read_text())["pid"] == os.getpid()
        j.unlock()
        assert j.lock_holder() is None
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_lock_in_one_process_twice(tmp_path):
    j1, j2 = Journal("p--x", tmp_path), Journal("p--x", tmp_path)
    with j1:
        with pytest.raises(JournalLocked):
            j2.lock()
    with j2:
        assert j2.locked


def test_answers_recorded_and_changes_explained(tmp_path):
    j = Journal(A.env_id, tmp_path)
    j.record_answers(A)
    assert j.answer_changes(A) == []
    b = Answers(project="mlops-demo-project", region="us-central1", prefix="demo", credentials="workload-identity")
    b.cluster.node_count = 4
    j2 = Journal(A.env_id, tmp_path)
    changes = {c.path: (c.old, c.new) for c in j2.answer_changes(b)}
    assert changes == {"credentials": ("key", "workload-identity"), "cluster.node_count": (1, 4)}  # regional default 1
    assert j2.data["answers_digest"] == A.digest()


@pytest.mark.parametrize("outputs", [
    {"private_key": "abc"},
    {"key_id": "123", "blob": PEM},
    {"token": "abc"},
    {"x": "Authorization: Bearer abcdefghijklmnop"},
    {"x": "ya29.a0AfH6SMBxyz"},
    {"password": "hunter22"},
    {"nested": [{"conn": "mysql://kfp:pw@host password=s3cr3t"}]},
    {"k": base64.b64encode(json.dumps({"type": "service_account", "private_key": "x"}).encode()).decode()},
])
def test_secret_guard_refuses_and_writes_nothing(tmp_path, outputs):
    j = Journal(A.env_id, tmp_path)
    j.set_status("kfp-sa-key", "running")
    before = j.path.read_bytes()
    j.step("kfp-sa-key")["outputs"] = outputs
    with pytest.raises(SecretInJournal):
        j.save()
    assert j.path.read_bytes() == before


def test_registered_secret_is_refused(tmp_path):
    redact.register("generated-db-password-0123")
    j = Journal(A.env_id, tmp_path)
    j.step("sql-user")["outputs"] = {"note": "made user with generated-db-password-0123"}
    with pytest.raises(SecretInJournal):
        j.save()
    assert not j.path.exists()


def test_ids_and_error_texts_are_fine(tmp_path):
    j = Journal(A.env_id, tmp_path)
    j.step("kfp-sa-key")["outputs"] = {"key_id": "0123abcd", "key_name": "projects/p/serviceAccounts/x/keys/1",
                                       "secret": "kubeflow/user-gcp-sa", "operation": "operation-123"}
    j.save()
    j.set_status("sql-user", "failed", error={"class": "unexpected", "message": "failed with password=hunter22",
                                              "remedy": ""})
    text = j.path.read_text()
    assert "hunter22" not in text and "<redacted>" in text
    assert find_secret(json.loads(text)) is None


def test_status_summary_and_list(tmp_path):
    j = Journal(A.env_id, tmp_path)
    j.record_answers(A)
    j.start_run()
    j.set_status("apis", "done", started=1.0, finished=3.5, outcome="created")
    j.set_status("network", "failed", error={"class": "quota", "message": "no quota", "remedy": "ask"})
    j.finish("failed")
    s = j.summary()
    assert s["counts"] == {"done": 1, "failed": 1} and s["status"] == "failed"
    text = j.format_status(["apis", "network", "subnet"])
    assert "apis" in text and "created" in text and "no quota" in text and "resume" in text
    assert [x.env_id for x in list_envs(tmp_path)] == [A.env_id]


def test_corrupt_journal_is_a_clear_error(tmp_path):
    from installer.errors import InstallerError
    p = tmp_path / "envs" / A.env_id / "journal.json"
    p.parent.mkdir(parents=True)
    p.write_text("{not json")
    with pytest.raises(InstallerError) as err:
        Journal(A.env_id, tmp_path)
    assert "cannot be read" in err.value.message and "mv" in err.value.remedy


def test_garbage_lock_file_is_taken_over(tmp_path):
    j = Journal("p--x", tmp_path)
    j.dir.mkdir(parents=True)
    j.lock_path.write_text('{"pid": "not-a-pid", "host": "elsewhere"}')
    j.lock()
    assert j.notes and "not-a-pid" in j.notes[0]
    j.unlock()
    j.lock_path.write_text("garbage")
    j.lock()
    j.unlock()


def test_status_shows_the_ui_address_once_known(tmp_path):
    j = Journal(A.env_id, tmp_path)
    j.record_answers(A)
    j.start_run()
    assert "Kubeflow Pipelines UI" not in j.format_status()
    j.set_status("kfp-ui", "done", started=1.0, finished=2.0, outcome="created")
    j.step("kfp-ui").setdefault("outputs", {})["ui_url"] = "https://x-dot-us-central1.pipelines.googleusercontent.com"
    j.finish("done")
    assert "Kubeflow Pipelines UI: https://x-dot-us-central1.pipelines.googleusercontent.com" in j.format_status()


async def test_writer_thread_keeps_order_and_awaits_durability(tmp_path, monkeypatch):
    """During an install the saves go to one writer thread: in order, the last snapshot wins, a durable save
    stays durable when a newer one replaces it in the queue, awaiting a save means it is on disk, and a secret
    still raises at the call site (writing nothing)."""
    import installer.journal_writer as jm

    writes = []
    real = jm.atomic_write

    def slow_write(path, data, mode=0o600, durable=True):
        time.sleep(0.02)
        real(path, data, mode, durable)
        writes.append((json.loads(data)["counter"], durable))

    monkeypatch.setattr(jm, "atomic_write", slow_write)
    j = Journal(A.env_id, tmp_path)
    j.lock()
    j.start_writer()
    try:
        saved = []
        for i in range(20):
            j.data["counter"] = i
            saved.append(j.save(durable=(i == 5)))
        await saved[-1]
        assert json.loads(j.path.read_text())["counter"] == 19
        counters = [c for c, _ in writes]
        assert counters == sorted(counters) and counters[-1] == 19 and len(counters) < 20  # coalesced, in order
        assert any(d for c, d in writes if c >= 5)  # the durable save (5) was written durably, by itself or later
        j.step("kfp-sa-key")["outputs"] = {"password": "hunter22"}
        with pytest.raises(SecretInJournal):
            j.save()
        del j.step("kfp-sa-key")["outputs"]
        j.data["counter"] = 20
        await j.save()
        assert json.loads(j.path.read_text())["counter"] == 20 and "hunter22" not in j.path.read_text()
    finally:
        j.unlock()
    assert j._writer is None and not j.locked


def test_a_read_only_journal_is_never_written(tmp_path):
    """``plan``'s journal (``Journal(read_only=True)``): read without the lock, ``save`` writes nothing, and a journal
    that cannot be read reads as empty instead of stopping the plan."""
    j = Journal(A.env_id, tmp_path)
    j.set_status("network", "done", outputs={"network": "x"})
    before = j.path.read_bytes()
    r = Journal(A.env_id, tmp_path, read_only=True)
    assert r.status_of("network") == "done"
    r.set_status("network", "failed")
    r.start_run()
    assert j.path.read_bytes() == before and not j.lock_path.exists()
    j.path.write_text("{not json")
    assert Journal(A.env_id, tmp_path, read_only=True).data["steps"] == {}
    with pytest.raises(Exception, match="cannot be read"):
        Journal(A.env_id, tmp_path)
