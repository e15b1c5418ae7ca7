"""The journal in Cloud Storage and the lock across machines (issue 17), on the sandbox: two state dirs stand for two
machines. Real HTTP, real google-cloud-storage; the installer's own code is not mocked."""
from __future__ import annotations

import asyncio
import json

import pytest
from google.cloud import storage

from installer.answers import Answers
from installer.destroy import destroy
from installer.errors import BadInput
from installer.journal import Journal
from installer.secret_guard import SECRET_KEY_RE
from installer.plan import Plan, build_plan
from installer.remote import RemoteLocked, RemoteState
from installer.run import build_backend_steps, install
from tests.installer.timed_steps import World, timed_steps

P = "mlops-demo-project"
ON = {"remote_state": True}


def state_request(r: dict) -> bool:
    """A request log entry of the remote journal or lock (``.mlops-install/`` objects: the uploads carry the name in
    their body, so every object upload counts; the installer uploads no other object)."""
    from urllib.parse import unquote

    return r["path"].startswith("/upload/storage/") or "/o/.mlops-install/" in unquote(r["path"])


def _answers(prefix: str, **state) -> Answers:
    a = Answers(project=P, region="us-central1", zone="us-central1-a", prefix=prefix)
    for k, v in state.items():
        setattr(a.state, k, v)
    return a


def _plan(a: Answers) -> Plan:
    full = build_plan(a)
    return Plan(a, [full["apis"], full["bucket"]])


async def _install(a: Answers, root, **kw):
    plan = _plan(a)
    events: list = []
    fin = await install(a, events.append, preflight=False, plan=plan, steps=build_backend_steps(plan),
                        journal_root=root, runtime=dict(ON, **kw.pop("runtime", {})), **kw)
    return fin, events


def _remote(a: Answers) -> tuple[dict | None, dict | None]:
    b = storage.Client(project=P).bucket(a.state.bucket or a.names.bucket)
    out = []
    for name in (f".mlops-install/{a.env_id}/journal.json", f".mlops-install/{a.env_id}/lock.json"):
        blob = b.get_blob(name)
        out.append(json.loads(blob.download_as_bytes()) if blob else None)
    return out[0], out[1]


async def test_install_here_status_resume_and_destroy_from_a_second_machine(sandbox, tmp_path, monkeypatch):
    sandbox.enable()
    a = _answers("team")
    one, two = tmp_path / "one", tmp_path / "two"
    fin, _ = await _install(a, one)
    assert fin.exit_code == 0
    journal, lock = _remote(a)
    assert journal["steps"]["bucket"]["status"] == "done" and journal["env_id"] == a.env_id
    assert lock is None  # released at the end of the run
    # nothing secret in the remote journal: the journal's own scan, and no secret-named key nor key material
    raw = json.dumps(journal)
    assert Journal("x", tmp_path).data is not None
    from installer.secret_guard import find_secret
    assert find_secret(journal) is None
    assert not any(SECRET_KEY_RE.search(k) for k in _keys(journal))
    assert "PRIVATE KEY" not in raw and "ya29." not in raw

    # the second machine: status reads the remote journal (nothing written here)
    from installer.cli import main
    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(two))
    ans_file = tmp_path / "answers.yaml"
    ans_file.write_text(f"project: {P}\nregion: us-central1\nzone: us-central1-a\nprefix: team\n")
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["status", "--answers", str(ans_file)]) == 0
    assert f"gs://{a.names.bucket}/.mlops-install/{a.env_id}/journal.json" in buf.getvalue()
    assert "bucket" in buf.getvalue() and "done" in buf.getvalue()
    assert not (two / "envs" / a.env_id / "journal.json").exists()

    # a resume there without --yes is refused, saying where the journal is; with --yes it goes on from it
    with pytest.raises(BadInput, match=f"gs://{a.names.bucket}/") as ei:
        await _install(a, two)
    assert "--yes" in ei.value.remedy and not (two / "envs" / a.env_id).exists()
    asked: list[str] = []  # the wizard's question (runtime["consent"]): "no" leaves the remote journal alone
    with pytest.raises(BadInput):
        await _install(a, two, runtime={"consent": lambda q: asked.append(q) or False})
    assert asked and f"gs://{a.names.bucket}/" in asked[0] and asked[0].endswith("Go on from it on this machine?")
    assert (await _install(a, two, runtime={"consent": lambda q: True}))[0].exit_code == 0
    local = Journal(a.env_id, two)
    assert local.exists and local.status_of("bucket") == "done"
    assert any(r.get("host") for r in local.data["runs"]) and len(local.data["runs"]) >= 2  # one's run kept

    # status --project P from an empty state dir: the environment found by its bucket's label, with its journal
    monkeypatch.setenv("MLOPS_INSTALL_STATE_DIR", str(tmp_path / "empty"))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["status", "--project", P]) == 0
    assert f"environment {a.env_id}: done" in buf.getvalue() and "(not on this machine)" in buf.getvalue(), \
        buf.getvalue()

    # plan on a machine without the journal shows the remote journal's statuses
    from installer.run import describe_plan
    rows = {r.step_id: r for r in await describe_plan(a, check=True, journal_root=tmp_path / "empty")}
    assert rows["bucket"].journal_status == "done" and rows["bucket"].action == "exists: unchanged"

    # destroy from a third, empty state dir: the remote journal is taken (destroy's own confirmation)
    three = tmp_path / "three"
    fin = await destroy(a, lambda e: None, journal_root=three, runtime=dict(ON))
    assert fin.exit_code == 0, fin
    assert a.names.bucket not in sandbox.state()["buckets"]


def _keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def _state_bucket(name: str) -> None:
    storage.Client(project=P).create_bucket(name, location="us-central1")


async def test_two_installers_at_once_one_refused_with_the_holder_named(sandbox, tmp_path):
    """A team's state bucket (state.bucket): the lock holds from the start of the run."""
    _state_bucket("team-state-one")
    a = _answers("duo", bucket="team-state-one")
    plan = build_plan(a)
    world = World()

    async def run(root):
        try:
            return await install(a, lambda e: None, preflight=False, plan=plan,
                                 steps=timed_steps(plan, world, default=0.25), journal_root=root,
                                 runtime=dict(ON))
        except RemoteLocked as exc:
            return exc
    first = asyncio.create_task(run(tmp_path / "one"))
    blob = storage.Client(project=P).bucket("team-state-one").blob(f".mlops-install/{a.env_id}/lock.json")
    for _ in range(500):  # the first holds the lock (its steps take ~2 s more): the second starts now
        if await asyncio.to_thread(blob.exists):
            break
        await asyncio.sleep(0.01)
    second = await run(tmp_path / "two")
    assert isinstance(second, RemoteLocked), second
    done = await first
    assert done.exit_code == 0
    msg = second.message
    assert "held by" in msg and "pid" in msg and "since" in msg and "--force-unlock" in second.remedy
    journal, lock = _remote(a)
    assert lock is None and all(journal["steps"][s.id]["status"] == "done" for s in plan)


async def test_two_fresh_installs_at_once_the_second_stops_once_the_bucket_exists(sandbox, tmp_path):
    """No state.bucket: two installs of one environment start together from two machines, before the artifact bucket
    (and so the remote lock) exists. When the bucket step ends, the engine's checkpoint takes the lock before any
    other step starts: one run goes on, the other starts nothing more (its running steps finish), says who holds the
    environment, and is recorded as stopped."""
    sandbox.enable()
    a = _answers("race")
    plan = build_plan(a)
    world = World()  # one cloud for both

    def steps_for():
        steps = timed_steps(plan, world, default=0.15)
        real = Plan(a, [plan["apis"], plan["bucket"]])
        steps.update(build_backend_steps(real))  # the real APIs and bucket steps: the lock needs the real bucket
        return steps

    async def run(root):
        try:
            return await install(a, lambda e: None, preflight=False, plan=plan, steps=steps_for(), journal_root=root,
                                 runtime=dict(ON))
        except RemoteLocked as exc:
            return exc
    one, two = await asyncio.gather(run(tmp_path / "one"), run(tmp_path / "two"))
    results = {"one": one, "two": two}
    refused = [k for k, r in results.items() if isinstance(r, RemoteLocked)]
    assert len(refused) == 1, results
    loser = refused[0]
    winner = "two" if loser == "one" else "one"
    assert results[winner].exit_code == 0, results[winner]
    exc = results[loser]
    assert "held by" in exc.message and "pid" in exc.message and "--force-unlock" in exc.remedy
    lj = Journal(a.env_id, tmp_path / loser)
    assert lj.data["status"] == "stopped"
    bucket_done = lj.step("bucket")["finished"]
    # nothing started after the bucket step ended: the steps that began before it did finished, no other began
    late = [sid for sid, rec in lj.data["steps"].items() if (rec.get("started") or 0) > bucket_done]
    assert not late, late
    assert lj.status_of("kfp-ready") is None and lj.status_of("mysql-secret") in (None,)
    journal, lock = _remote(a)  # the winner's journal, all done; its lock released
    assert lock is None and all(journal["steps"][s.id]["status"] == "done" for s in plan)


async def test_expired_lease_is_taken_over_and_force_unlock(sandbox, tmp_path, monkeypatch):
    _state_bucket("team-state-two")
    a = _answers("lease", bucket="team-state-two")
    plan = build_plan(a)
    held = RemoteState(a)  # another machine's installer, holding the lock (its thread not renewing: it "died")
    monkeypatch.setenv("MLOPS_INSTALL_LOCK_LEASE", "600")
    assert await asyncio.to_thread(held.lock)
    held._closed = True  # noqa: SLF001 - stop its renewals: the holder is gone without releasing
    with pytest.raises(RemoteLocked) as ei:
        await install(a, lambda e: None, preflight=False, plan=plan, steps=timed_steps(plan, World()),
                      journal_root=tmp_path / "one", runtime=dict(ON))
    assert held.lock_id in ei.value.message
    # --force-unlock with the lock's id
    events: list = []
    fin = await install(a, events.append, preflight=False, plan=plan, steps=timed_steps(plan, World()),
                        journal_root=tmp_path / "one", runtime=dict(ON, force_unlock=held.lock_id))
    assert fin.exit_code == 0
    assert any("force-unlocked" in getattr(e, "message", "") for e in events)
    # an expired lease is taken over with a message
    monkeypatch.setenv("MLOPS_INSTALL_LOCK_LEASE", "0.2")
    stale = RemoteState(a)
    assert await asyncio.to_thread(stale.lock)
    stale._closed = True  # noqa: SLF001
    await asyncio.sleep(0.5)
    events = []
    fin = await install(a, events.append, preflight=False, plan=plan, steps=timed_steps(plan, World()),
                        journal_root=tmp_path / "two", runtime=dict(ON, adopt_remote=True))
    assert fin.exit_code == 0
    assert any("took over an expired lock" in getattr(e, "message", "") and stale.lock_id in e.message
               for e in events)


async def test_a_412_race_on_the_journal_loses_no_step(sandbox, tmp_path):
    _state_bucket("team-state-three")
    a = _answers("race", bucket="team-state-three")
    rs = RemoteState(a)
    mine = {"env_id": a.env_id, "steps": {"apis": {"status": "done"}}, "runs": [{"started": 1, "pid": 1}]}
    rs.submit(json.dumps(mine).encode())
    assert await asyncio.to_thread(rs.flush, 10)
    first = rs.generation
    # someone else writes the object meanwhile (another machine's step), changing its generation
    blob = storage.Client(project=P).bucket("team-state-three").blob(rs.journal_name)
    theirs = {"env_id": a.env_id, "steps": {"apis": {"status": "done"}, "network": {"status": "done"}},
              "runs": [{"started": 1, "pid": 1}, {"started": 2, "pid": 2}]}
    blob.upload_from_string(json.dumps(theirs), if_generation_match=first)
    mine["steps"]["bucket"] = {"status": "done"}
    rs.submit(json.dumps(mine).encode())
    assert await asyncio.to_thread(rs.flush, 10)
    await asyncio.to_thread(rs.close)
    got, _ = _remote(a)
    assert {k: v["status"] for k, v in got["steps"].items()} == {"apis": "done", "network": "done", "bucket": "done"}
    assert [r["pid"] for r in got["runs"]] == [1, 2]
    assert rs.generation > int(blob.generation)
    log = [r for r in sandbox.requests(api="storage") if r["status"] == 412]
    assert log  # the lost race was a real 412


def test_force_unlock_flag_reaches_the_runtime():
    from installer.cli import build_parser
    from installer.flags import RunFlags

    p = build_parser()
    for argv in (["--non-interactive", "--answers", "x.yaml"], ["install", "--answers", "x.yaml"]):
        args = p.parse_args([*argv, "--force-unlock", "0123abcd"])
        assert RunFlags.from_args(args).runtime()["force_unlock"] == "0123abcd"
    assert p.parse_args(["destroy", "--answers", "x.yaml", "--force-unlock", "0123abcd"]).force_unlock == "0123abcd"


async def test_bucket_destroy_empties_again_after_a_late_write(sandbox, tmp_path):
    """An object written while the bucket is emptied (a remote journal write in flight): the delete's 409 "not
    empty" makes the step empty it again instead of failing."""
    from backends.infra.harness import infra_steps
    from installer.steps import StepContext

    sandbox.enable()
    a = _answers("late")
    fin, _ = await _install(a, tmp_path / "one")
    assert fin.exit_code == 0
    sandbox.fault(rf"/storage/v1/b/{a.names.bucket}$", 409, method="DELETE", times=1,
                  message="The bucket you tried to delete was not empty.", reason="conflict")
    plan = _plan(a)
    ctx = StepContext(answers=a, plan=plan, spec=plan["bucket"], record={}, runtime={}, emit=lambda e: None,
                      save=lambda: None, outputs_of=lambda sid: {})
    await infra_steps(plan)["bucket"].destroy(ctx)
    assert a.names.bucket not in sandbox.state()["buckets"]
    deletes = [r["status"] for r in sandbox.requests(api="storage") if r["method"] == "DELETE"
               and r["path"].endswith(f"/b/{a.names.bucket}")]
    assert deletes == [409, 204]
