"""Review: the plan (create or adopt, per resource, from a read-only look at what is there) and the expected
time; jump back to change anything."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from installer.reporters import fmt_duration

from . import services
from .base import StepScreen

ACTION_STYLE = {"create": "yellow", "exists: adopt": "cyan", "exists: unchanged": "green",
                "exists: update": "magenta", "in progress: wait": "yellow", "conflict": "bold red",
                "unknown": "red", "not checked": "dim", "checking…": "dim"}


class ReviewScreen(StepScreen):
    STEP = "review"
    TITLE_TEXT = "Review the plan"
    HINT = "Enter: install · p/l/c/a: change · Esc: back"
    NEXT_LABEL = "Install"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "enter", "Install", priority=True),
        Binding("p", "change('project')", "Project"),
        Binding("l", "change('location')", "Location"),  # short: the footer fits 80 columns
        Binding("c", "change('credentials')", "Credentials"),
        Binding("a", "change('apis')", "APIs"),
        Binding("m", "manifests", "Manifests"),
    ]

    def body(self) -> ComposeResult:
        with VerticalScroll(id="review-scroll"):
            yield Static("", id="summary")
            yield Static("", id="estimate")
            yield Static("", id="checks")
            yield Static("", id="plan")
            yield Static("", id="check-details")

    def on_mount(self) -> None:
        self.rows = None
        self.report = None  # the preflight's report (before Install: it is offered when it passes)
        self.report_error = ""
        self.warnings_accepted = False
        self.questions: list[str] = []  # what the install will ask (the preflight's consent questions), asked here
        self.query_one("#review-scroll").focus()  # the arrows scroll the plan at once; the keys still work
        self.show()
        if self.answers is not None:
            self.look()
            self.check()

    @property
    def answers(self):
        try:
            return self.state.answers()
        except Exception:
            return None

    @work(exclusive=True, group="plan-look", exit_on_error=False)
    async def look(self) -> None:
        """A read-only look at each resource (the core's describe_plan): create, adopt, or already there."""
        from installer.run import describe_plan

        try:
            self.rows = await describe_plan(self.answers)
        except Exception as exc:
            services.log.exception("describe_plan failed")
            self.notify(f"Could not look at the resources: {services._short(exc)}", severity="warning")
            self.rows = []
        self.show()

    @work(exclusive=True, group="preflight", exit_on_error=False)
    async def check(self) -> None:
        """The core's read-only preflight (quota, permissions, bucket name, org policy, ...), now that the APIs
        are enabled: its problems show here, before Install, not after it."""
        self.questions = []

        def ask(question: str) -> bool:  # a preview: the question is asked once, on Enter (commit)
            if question not in self.questions:
                self.questions.append(question)
            return True

        try:
            # with the consents the user is asked for on Enter: changed settings (apply_changes) and the backends'
            # questions (a manifests folder that differs from the release) show as what needs consent, not as failures
            self.report = await services.preflight(self.answers, {"apply_changes": True, "consent": ask})
        except Exception as exc:
            services.log.exception("the preflight failed")
            self.report_error = services._short(exc)
        self.show_checks()

    def show_checks(self) -> None:
        if not self.is_attached:
            return
        t = Text()
        t.append("Checks before install: ", style="bold")
        if self.report_error:
            t.append(f"could not run ({self.report_error}); the install runs them again", style="yellow")
        elif self.report is None:
            t.append("running…", style="dim")
        else:
            checks = self.report.checks
            bad = [c for c in checks if c.status == "fail"]
            warn = [c for c in checks if c.status == "warn"]
            t.append(f"✔ {len(checks) - len(bad) - len(warn)} passed", style="green")
            if warn:
                t.append(f" · ! {len(warn)} warning{'s' if len(warn) > 1 else ''}", style="yellow")
            if bad:
                t.append(f" · ✘ {len(bad)} failed: fix them before Install", style="bold red")
            if bad or warn:
                t.append(" (under the plan)", style="dim")
            d = Text()
            for c in bad + warn:  # under the plan (the plan stays in view; the summary line says where)
                mark, style = ("✘", "red") if c.status == "fail" else ("!", "yellow")
                d.append(f"\n{mark} {c.name}: ", style=f"bold {style}")
                d.append((c.detail or "").replace("(accepted)", "(needs your consent: asked on Enter)"))
                if c.fix:
                    d.append(f"\n  fix: {c.fix}", style="green")
            self.query_one("#check-details", Static).update(d)
        self.query_one("#checks", Static).update(t)

    def show(self) -> None:
        if not self.is_attached:  # the user moved on before the answer came
            return
        answers = self.answers
        if answers is None:
            try:
                self.state.answers()
            except Exception as exc:
                self.query_one("#summary", Static).update(f"[red]The answers are incomplete: {exc}[/red]")
            return
        s = Table.grid(padding=(0, 2))
        s.add_column(style="bold", no_wrap=True)
        s.add_column()
        s.add_column(no_wrap=True)

        def key(k: str) -> Text:  # which key changes the row: "p change", not a bare letter
            return Text.assemble((k, "bold"), (" change", "dim"))

        s.add_row("Project", answers.project, key("p"))
        s.add_row("Location", f"{answers.region}" + (f", zone {answers.zone} (zonal cluster)" if answers.zone
                                                     else " (regional cluster)"), key("l"))
        s.add_row("Prefix", answers.prefix, key("l"))
        s.add_row("Credentials", {"key": "service-account key", "workload-identity": "Workload Identity"}
                  [answers.credentials], key("c"))
        given = self.state.given_elsewhere()
        if given:  # where the prefilled answers came from (installer.inputs: flags, environment, gcloud's config)
            s.add_row("Given by", Text("; ".join(given), style="dim"), "")
        miss = len([a for a, on in (self.state.api_states or {}).items() if not on])
        s.add_row("APIs", (f"{miss} to enable" if miss else "all enabled") if self.state.api_states is not None
                  else "checked and enabled by the install", key("a"))
        rt = self.wizard.runtime
        if rt.get("export_key_path"):
            if answers.credentials == "key":
                s.add_row("Key file", f"{rt['export_key_path']} (--export-key)", "")
            else:
                s.add_row("Key file", Text("none: Workload Identity makes no key (--export-key is ignored)",
                                           style="yellow"), "")
        if rt.get("write_kubeconfig"):
            s.add_row("Kubeconfig", "written for the new cluster (--write-kubeconfig)", "")
        manifests = answers.kfp.manifests
        src = Text(services.manifests_text(manifests, self.state.manifests_from))
        if manifests == "upstream" and services.sandboxed():
            src.append("\nthe sandbox has no network: choose a folder of rendered manifests", style="yellow")
        s.add_row("KFP manifests", src, key("m"))
        self.query_one("#summary", Static).update(s)

        plan = services.build_plan(answers)
        total, chain = plan.critical_path()
        scale = services.time_scale()
        est = Text()
        est.append("Expected time: ", style="bold")
        est.append(f"about {fmt_duration(total * scale)}", style="bold")
        est.append(f" (longest chain: {' → '.join(chain)})", style="dim")
        if scale != 1:
            est.append(f"\n{fmt_duration(total)} on real Google Cloud; this sandbox runs ×{1 / scale:g} faster.",
                       style="dim")
        done = self.state.journal_status(answers.env_id)
        if any(v == "done" for v in done.values()):
            est.append("\nAn earlier run of this environment left state: the install resumes it.", style="green")
        self.query_one("#estimate", Static).update(est)

        from installer.plan import GROUP_TITLES
        rows = {r.step_id: r for r in (self.rows or [])}
        t = Table(box=None, padding=(0, 1), expand=True, show_edge=False, header_style="bold")
        t.add_column("resource", no_wrap=True, overflow="ellipsis", ratio=2)
        t.add_column("name", overflow="ellipsis", no_wrap=True, ratio=3)
        t.add_column("action", no_wrap=True, overflow="ellipsis", ratio=2)
        group = None
        for spec in plan:
            if spec.group != group:
                group = spec.group
                t.add_row(Text(GROUP_TITLES.get(group, group), style="bold underline"), "", "")
            r = rows.get(spec.id)
            if r is None:
                action = "checking…" if self.rows is None else "not checked"
            else:
                action = r.action
            if done.get(spec.id) == "done" and action.startswith("exists"):
                action = f"{action} (done earlier)"
            if not spec.mutating and action in ("create", "not checked", "checking…"):
                action = "wait"
            style = ACTION_STYLE.get(action.split(" (")[0], "")
            t.add_row(f"  {spec.title}", spec.resource, Text(action, style=style))
            for c in self.changes_of(r):  # what an update changes: field, old → new
                t.add_row(Text("    ↳ update", style="magenta"), Text(f"{c.get('field')}: {c.get('old')} → {c.get('new')}"),
                          Text(str(c.get("how") or "in place"), style="dim"))
        self.query_one("#plan", Static).update(t)

    @staticmethod
    def changes_of(row) -> list[dict]:
        return list(row.changes) if row is not None and row.action == "update" and row.changes else []

    def consent_lines(self) -> list[str]:
        """What Install needs the user's consent for, in one list: the changed settings of what is installed, the
        backends' questions (manifests that differ from the release), the preflight's warnings."""
        out = [f"update {c.get('field')}: {c.get('old')} → {c.get('new')}" + (f" ({c['how']})" if c.get("how") else "")
               for r in (self.rows or []) for c in self.changes_of(r)]
        out += [f"? {q}" for q in self.questions]
        skip = {"changes"} if out else set()  # the changes check says what the update rows say
        if self.questions:
            skip.add("manifests")  # its question is listed
        out += [f"! {c.name}: {c.detail}" for c in (self.report.checks if self.report is not None else [])
                if c.status == "warn" and c.name not in skip]
        return out

    def action_change(self, step: str) -> None:
        self.move(step)  # that step, then back here

    def action_manifests(self) -> None:
        """Where the KFP manifests come from: a folder of rendered manifests, or 'upstream' (github.com)."""
        from .modals import InputModal

        current = (self.state.data.get("kfp") or {}).get("manifests") or "upstream"

        def chosen(value: str | None) -> None:
            if value is None:
                return
            value = "upstream" if value in ("", "upstream") else value
            kfp = dict(self.state.data.get("kfp") or {})
            kfp["manifests"] = value
            self.state.data["kfp"] = kfp
            self.state.manifests_from = "" if value == "upstream" else "chosen on Review"
            self.show()

        self.app.push_screen(InputModal(
            "Kubeflow Pipelines manifests",
            "A folder of rendered KFP 2.14.4 manifests (cluster-scoped.yaml and env-gcp.yaml, or a copy of KFP's "
            "manifests/kustomize), or [b]upstream[/b] to build them from github.com (needs network access and git).",
            value=current, check=services.manifests_problem, placeholder="a folder, or upstream"), chosen)

    def commit(self) -> bool:
        try:
            self.state.answers()
        except Exception as exc:
            self.notify(str(exc), severity="error")
            return False
        conflicts = [r for r in (self.rows or []) if r.action == "conflict"]
        if conflicts:
            self.notify("Cannot install over a conflict: " + "; ".join(
                f"{r.title}: {r.detail}" for r in conflicts[:3]), severity="error", timeout=12)
            return False
        if self.report is None and not self.report_error:
            self.notify("The checks before install are still running.", severity="warning")
            return False
        if self.report is not None and not self.report.ok:
            self.notify("A check before install failed: fix it (see under the plan), then press Enter.",
                        severity="error", timeout=12)
            return False
        lines = self.consent_lines()
        if lines and not self.warnings_accepted:  # asked once, for everything together
            from .modals import ConfirmModal

            n_changes = sum(len(self.changes_of(r)) for r in (self.rows or []))

            def answered(yes: bool | None) -> None:
                if yes:
                    self.warnings_accepted = True
                    self.wizard.changes_confirmed = n_changes > 0
                    self.wizard.consented.update(self.questions)
                    self.action_next()

            if n_changes:
                title = f"Change {n_changes} setting{'s' if n_changes > 1 else ''} of the installed environment?"
            elif self.questions:
                title = "Install with what needs your consent?"
            else:
                title = f"Install despite {len(lines)} warning{'s' if len(lines) > 1 else ''}?"
            more = f"\n… and {len(lines) - 8} more (under the plan)" if len(lines) > 8 else ""
            self.app.push_screen(ConfirmModal(title, "\n".join(lines[:8]) + more, yes="Install", no="Not yet"),
                                 answered)
            return False
        if not lines:
            self.wizard.changes_confirmed = False  # nothing to change (a Review of other answers may have said yes)
        return True
