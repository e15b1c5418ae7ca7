"""Plain mode (``--plain``, or a terminal Textual cannot drive): the same questions with questionary, then the
plain reporter's lines."""
from __future__ import annotations

import asyncio
import sys

from installer.flags import written_files

from . import services


def _print(*a) -> None:
    print(*a, flush=True)


def _reporter():
    """The core's plain reporter (``installer.reporters.PlainReporter``): a line per event."""
    from installer.reporters import PlainReporter
    return PlainReporter(stream=sys.stdout)


def _ask(q):
    ans = q.ask()
    if ans is None:  # Ctrl-C in questionary
        raise KeyboardInterrupt
    return ans


async def _consent(question: str) -> bool:
    """The backends' consent hook (``runtime["consent"]``): the question with questionary, on the install's loop."""
    import questionary

    ans = await questionary.confirm(question, default=False).ask_async()
    if ans is None:  # Ctrl-C
        raise KeyboardInterrupt
    return bool(ans)


def _region_default(regions: list[str], defaults: dict | None, sources: dict | None) -> str | None:
    """gcloud's (or the environment's) region when it is one of ``regions``, else us-central1 if listed."""
    want = (defaults or {}).get("region")
    if want in regions:
        _print(f"region {want}: from {(sources or {}).get('region', 'the environment')}")
        return want
    return "us-central1" if "us-central1" in regions else None


def run_plain(data: dict, *, answers_path: str | None = None, assume_yes: bool = False, log_path: str = "",
              runtime: dict | None = None, manifests_from: str | None = None,
              defaults: dict | None = None, sources: dict | None = None) -> int:
    """``defaults``: values from the environment or gcloud's config to start the questions from (``sources``: where
    they came from, said beside the question)."""
    from installer.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED

    data = dict(data)
    if manifests_from is None:  # not looked up by the caller: the same lookup as the wizard's and demo's
        manifests_from = services.fill_manifests(data)
    try:
        return _run_plain(data, assume_yes=assume_yes, log_path=log_path, runtime=dict(runtime or {}),
                          manifests_from=manifests_from, defaults=defaults or {}, sources=sources or {})
    except KeyboardInterrupt:
        _print("\ninterrupted; run mlops-install again to resume")
        return EXIT_INTERRUPTED
    except EOFError:
        _print("no answer (end of input); give the missing answers in an --answers file")
        return EXIT_BAD_INPUT


def _run_plain(data: dict, *, assume_yes: bool, log_path: str, runtime: dict | None = None,
               manifests_from: str = "", defaults: dict | None = None, sources: dict | None = None) -> int:
    import questionary

    env = services.detect_environment()
    _print(f"mlops-install: running {services.runtime_words(env.runtime)}"
           + (", against the local sandbox" if env.sandbox else ""))
    for tool, path in env.tools.items():
        _print(f"  {tool}: {'found' if path else 'not found'}")

    # resume
    env_id = f"{data['project']}--{data['prefix']}" if data.get("project") and data.get("prefix") else None
    found = services.find_unfinished(env_id)
    if found is not None:
        if assume_yes or _ask(questionary.confirm(
                f"{found.env_id} has an unfinished install ({found.done}/{found.total} steps done). Resume it?",
                default=True)):
            project, _, prefix = found.env_id.partition("--")
            data = services.deep_merge(found.answers or {}, data)
            data.setdefault("project", project)
            data.setdefault("prefix", prefix)

    # auth
    auth = services.whoami()
    while not auth.ok:
        _print(f"no usable credentials ({auth.error or 'no account'})")
        if env.cloud_shell:
            _print("Cloud Shell: authorize the session in the browser dialog, then press Enter")
            input()
        else:
            cmd = services.login_command(env)
            if not _ask(questionary.confirm(f"Run `{' '.join(cmd)}` now?", default=True)):
                return 2
            import subprocess
            subprocess.run(cmd)
        auth = services.whoami()
    _print(f"account: {auth.account} ({auth.source})")

    # project
    if not data.get("project"):
        try:
            projects = [p["projectId"] for p in services.list_projects()]
        except Exception as exc:
            _print(f"could not list projects: {services._short(exc)}")
            projects = []
        default = (auth.project or "") if (auth.project or "") in projects or not projects else projects[0]
        if (defaults or {}).get("project"):
            default = defaults["project"]
            _print(f"project {default}: from {(sources or {}).get('project', 'the environment')}")
        check = (lambda v: services.project_id_problem(v.strip()) is None or
                 services.project_id_problem(v.strip()))
        if projects:
            q = questionary.autocomplete("Project id:", choices=projects, default=default, validate=check)
        else:  # the list is not available (e.g. Resource Manager's API is still off): type the id
            q = questionary.text("Project id:", default=default, validate=check)
        data["project"] = _ask(q).strip()

    # APIs (before the location: on a fresh project Compute's region list needs its API)
    from installer.answers import REQUIRED_APIS
    required = list((data.get("apis") or {}).get("required") or REQUIRED_APIS)
    try:
        states = services.api_states(data["project"], required)
        missing = [a for a in required if not states.get(a)]
    except Exception as exc:
        _print(f"could not read the API states: {services._short(exc)}")
        missing = []
    if missing:
        _print(f"{len(missing)} required APIs are disabled: {', '.join(missing)}")
        given = (data.get("apis") or {}).get("enable")
        yes = bool(given) or assume_yes or (given is None and _ask(questionary.confirm(
            f"Enable them now in {data['project']}?", default=True)))
        data["apis"] = {**(data.get("apis") or {}), "enable": bool(yes)}
        if yes:
            _print("enabling the APIs…")
            try:
                services.enable_apis(data["project"], required, lambda m: _print(f"  {m}"))
            except Exception as exc:
                _print(f"enabling failed: {services._short(exc)} (the install tries again)")
    else:
        data["apis"] = {**(data.get("apis") or {}), "enable": (data.get("apis") or {}).get("enable", True)}

    # location and prefix
    if not data.get("region"):
        from .location import FALLBACK_REGIONS
        try:
            regions = services.list_regions(data["project"])
        except Exception as exc:
            _print(f"could not list regions ({services._short(exc)}); the usual ones (not checked):")
            regions = FALLBACK_REGIONS
        data["region"] = _ask(questionary.select(
            "Region:", choices=regions, default=_region_default(regions, defaults, sources)))
    if "zone" not in data:
        try:
            zones = services.list_zones(data["project"], data["region"])
        except Exception:
            zones = [f"{data['region']}-{z}" for z in "abc"]
        choice = _ask(questionary.select("Zone:", choices=["none: regional cluster"] + zones,
                                         default=zones[0] if zones else None))
        data["zone"] = None if choice.startswith("none") else choice
    if not data.get("prefix"):
        def check(v: str):
            bad = [r for r in services.derived_name_checks(v.strip(), data["project"]) if not r.ok]
            return True if not bad else f"{bad[0].what} {bad[0].name}: {bad[0].problem}"
        data["prefix"] = _ask(questionary.text("Name prefix:", default="mlops", validate=check)).strip()
    for r in services.derived_name_checks(data["prefix"], data["project"]):
        _print(f"  {'ok ' if r.ok else 'BAD'} {r.what:22} {r.name}")

    # credentials
    if not data.get("credentials"):
        try:
            allowed = services.key_creation_allowed(data["project"])
        except Exception:
            allowed = None
        if allowed is False:
            _print("org policy iam.disableServiceAccountKeyCreation is enforced: key mode is not possible here")
        choices = [questionary.Choice("Workload Identity (no keys)", "workload-identity")]
        if allowed is not False:
            choices.append(questionary.Choice("Service-account key in a Kubernetes secret", "key"))
        data["credentials"] = _ask(questionary.select("Credentials for workloads:", choices=choices))

    # review
    answers = services.answers_from_dict(data)
    problems = services.full_problems(answers)
    if problems:
        for p in problems:
            _print(f"  - {p}")
        return 2
    plan = services.build_plan(answers)
    _print("plan:")
    for s in plan:
        _print(f"  {s.group:15} {s.title:30} {s.resource}")
    _print(f"KFP manifests: {services.manifests_text(answers.kfp.manifests, manifests_from)}")
    total, _ = plan.critical_path()
    from installer.reporters import fmt_duration
    _print(f"expected: about {fmt_duration(total * services.time_scale())}")
    if not assume_yes and not _ask(questionary.confirm("Install now?", default=True)):
        return 130
    path = services.answers_path_for(answers.env_id)
    try:  # before the install too, when the environment's folder is there already (a resume)
        services.write_answers(answers, path)
    except OSError:  # a new environment's folder is made by the install's first step (none for a run that stops)
        pass

    emit = _reporter()
    runtime = runtime if runtime is not None else {}
    # "Install now?" (or --yes) agreed to the APIs and to changed settings of what is installed, as before; what
    # the backends ask while they run (a Secret not made by this install, manifests that differ from the release,
    # fields owned by another manager) is asked here, unless --yes
    runtime.setdefault("enable_apis", True)
    runtime.setdefault("apply_changes", True)
    if not assume_yes:
        runtime["consent"] = _consent
    fin = asyncio.run(services.install(answers, emit, assume_yes=assume_yes, runtime=runtime))
    services.write_answers(answers, path)
    for w in written_files(runtime, fin, answers.credentials):
        _print(w.line())
    _print(f"answers written to {path}")
    if fin.exit_code == 0:
        from installer.next_steps import next_steps, next_steps_text, ui_url_of
        _print(f"KFP UI: {ui_url_of(fin.outputs) or '(not reported)'}")
        _print(f"repeat without questions: {services.repeat_command(path, runtime, answers.credentials)}")
        _print(next_steps_text(next_steps(answers, fin.outputs, answers_path=str(path), log_path=str(log_path or ""),
                                          kubeconfig=runtime.get("kubeconfig_written"))))
    else:
        _print(f"log: {log_path}")
    return fin.exit_code
