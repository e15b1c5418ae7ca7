"""Location and prefix: region and zone from the API's lists; the prefix checked as you type, every derived name shown."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

from . import services
from .base import StepScreen

REGIONAL = "__regional__"
FALLBACK_REGIONS = ["asia-east1", "asia-northeast1", "asia-southeast1", "australia-southeast1", "europe-north1",
                    "europe-west1", "europe-west2", "europe-west3", "europe-west4", "northamerica-northeast1",
                    "southamerica-east1", "us-central1", "us-east1", "us-east4", "us-west1", "us-west2"]


class LocationScreen(StepScreen):
    STEP = "location"
    TITLE_TEXT = "Location and name prefix"
    HINT = "Tab: next field · Enter: continue · Esc: back"
    AUTO_FOCUS = "#prefix"

    def body(self) -> ComposeResult:
        d = self.state.data
        # compact fields (one line each): the derived names below must fit an 80×24 terminal as well
        with Horizontal(id="where"):
            with Vertical(classes="field"):
                yield Label("Region")
                yield Select([], prompt="loading regions…", id="region", allow_blank=True, compact=True)
            with Vertical(classes="field"):
                yield Label("Zone (or regional)")
                yield Select([], prompt="(choose a region)", id="zone", allow_blank=True, compact=True)
            cl = d.get("cluster") or {}
            with Vertical(classes="field", id="nodes-field"):
                yield Label("Nodes per zone")
                yield Input(value=str(cl["node_count"]) if cl.get("node_count") else "", id="nodes",
                            placeholder="default", max_length=3, compact=True, restrict=r"[0-9]*")
            with Vertical(classes="field", id="machine-field"):
                yield Label("Machine type")
                yield Input(value=cl.get("machine_type") or "e2-standard-4", id="machine", max_length=40,
                            compact=True)
        yield Static("", id="size")
        yield Static("", id="where-note")
        yield Label("Name prefix (every resource's name starts with it)", id="prefix-label")
        yield Input(value=d.get("prefix") or "mlops", placeholder="e.g. mlops", id="prefix", max_length=40,
                    compact=True)
        yield Static("", id="prefix-check")
        yield Static("", id="names")

    def on_mount(self) -> None:
        inp = self.query_one("#prefix", Input)
        inp.cursor_blink = not self.app.is_headless
        for i in self.query(Input):
            i.cursor_blink = not self.app.is_headless
        self._show_names(inp.value)
        self._show_size()
        self._show_sources()
        self.load_regions()

    def _show_sources(self) -> None:
        """Where the region, zone and prefix it starts from came from (flag, answers file, environment, gcloud)."""
        notes = [f"{k} {self.state.source_note(k)}" for k in ("region", "zone", "prefix") if self.state.source_note(k)]
        if notes:
            self.query_one("#where-note", Static).update(f"[dim]{'; '.join(notes)}[/dim]")

    # regions and zones come from the API (thread workers)
    @work(thread=True, exclusive=True, group="regions", exit_on_error=False)
    def load_regions(self) -> None:
        project = self.state.data["project"]
        cached = self.state.regions.get(project)
        if cached is None:
            try:
                cached = services.list_regions(project)
            except Exception as exc:
                self.app.call_from_thread(self._region_error, services._short(exc))
                return
            self.state.regions[project] = cached
        self.app.call_from_thread(self._regions_loaded, cached)

    def _region_error(self, msg: str) -> None:
        """The Compute API is off (or no permission): offer the usual regions, marked as not checked."""
        if not self.is_attached:  # the user moved on before the answer came
            return
        sel = self.query_one("#region", Select)
        sel.set_options([(f"{r} (not checked)", r) for r in FALLBACK_REGIONS])
        sel.prompt = "choose a region (not checked)"
        want = self.state.default("region") or "us-central1"
        sel.value = want if want in FALLBACK_REGIONS else "us-central1"
        self.query_one("#where-note", Static).update(
            f"[yellow]Could not list regions ({msg}); the install checks the choice.[/yellow]")

    def _regions_loaded(self, regions: list[str]) -> None:
        if not self.is_attached:  # the user moved on before the answer came
            return
        sel = self.query_one("#region", Select)
        sel.prompt = "choose a region"
        sel.set_options([(r, r) for r in regions])
        want = self.state.default("region") or ("us-central1" if "us-central1" in regions else None)
        if want in regions:
            sel.value = want
            self.load_zones(want)

    @on(Select.Changed, "#region")
    def _region_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            zsel = self.query_one("#zone", Select)
            zsel.prompt = "loading zones…"
            self.load_zones(str(event.value))

    @work(thread=True, exclusive=True, group="zones", exit_on_error=False)
    def load_zones(self, region: str) -> None:
        project = self.state.data["project"]
        key = (project, region)
        zones = self.state.zones.get(key)
        if zones is None:
            try:
                zones = services.list_zones(project, region)
            except Exception:
                zones = [f"{region}-{z}" for z in "abc"] if region in FALLBACK_REGIONS else []
                self.app.call_from_thread(self._zones_loaded, region, zones)
                return
            self.state.zones[key] = zones
        self.app.call_from_thread(self._zones_loaded, region, zones)

    def _zones_loaded(self, region: str, zones: list[str]) -> None:
        if not self.is_attached:  # the user moved on before the answer came
            return
        zsel = self.query_one("#zone", Select)
        # the blank choice is "none" (one entry for it, not a prompt and an option saying the same)
        zsel.prompt = "none: regional cluster"
        zsel.set_options([(z, z) for z in zones])
        want = self.state.default("zone")
        if want in zones:
            zsel.value = want
        elif "zone" in self.state.data and self.state.data.get("region") == region and not want:
            zsel.clear()
        elif zones:
            zsel.value = zones[0]  # zonal by default: a zonal cluster comes up in half the time
        else:
            zsel.clear()

    # the cluster's size, live: nodes, vCPU and boot disk in all zones (the core's sizing rule)
    def _zone_value(self) -> str | None:
        zone = self.query_one("#zone", Select).value
        return None if zone in (Select.NULL, REGIONAL) else str(zone)

    def _size_inputs(self) -> tuple[int | None, str, str | None]:
        """(node count or None for the default, machine type, the first problem of either)."""
        raw = self.query_one("#nodes", Input).value.strip()
        machine = self.query_one("#machine", Input).value.strip()
        nodes = int(raw) if raw.isdigit() else None
        problem = (services.cluster_field_problem("node_count", nodes) if raw else None) or \
            services.cluster_field_problem("machine_type", machine)
        return nodes, machine, problem

    def _show_size(self) -> bool:
        zone = self._zone_value()
        default = services.default_nodes_per_zone(zone)
        self.query_one("#nodes", Input).placeholder = f"{default} (default)"
        nodes, machine, problem = self._size_inputs()
        out = Text()
        if problem:
            out.append(f"✘ {problem}", style="bold red")
        else:
            region = self.query_one("#region", Select).value
            text = services.cluster_size_text("" if region is Select.NULL else str(region), zone, nodes, machine)
            out.append("Cluster: ", style="bold")
            out.append(text)
        self.query_one("#size", Static).update(out)
        return not problem

    @on(Input.Changed, "#nodes")
    @on(Input.Changed, "#machine")
    @on(Select.Changed, "#zone")
    def _size_changed(self, event) -> None:
        self._show_size()

    @on(Input.Submitted, "#nodes")
    @on(Input.Submitted, "#machine")
    def _size_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next()

    # the prefix and its derived names, live
    @on(Input.Changed, "#prefix")
    def _prefix_changed(self, event: Input.Changed) -> None:
        self._show_names(event.value)

    def _show_names(self, prefix: str) -> bool:
        prefix = prefix.strip()
        rows = services.derived_name_checks(prefix, self.state.data.get("project", ""))
        first, derived = rows[0], rows[1:]
        # the prefix's own problem in full (it wraps): the table's cells are cut at 80 columns
        bad = [r for r in derived if not r.ok]
        check = Text()
        if not first.ok:
            check.append(f"✘ {first.problem}" if prefix else "✘ a prefix is required", style="bold red")
            if prefix and "not valid" in (first.problem or ""):
                check.append("  (lowercase letters, digits and -; start with a letter; end with a letter or digit)",
                             style="red")
        elif bad:
            check.append(f"✘ {len(bad)} derived name{'s' if len(bad) > 1 else ''} break{'' if len(bad) > 1 else 's'}"
                         f" a rule: {bad[0].what} {bad[0].problem}", style="bold red")
        else:
            check.append("✔ every derived name fits its rule", style="green")
        self.query_one("#prefix-check", Static).update(check)
        t = Table(box=None, padding=(0, 1), expand=True, show_edge=False, show_header=False)
        t.add_column("resource", style="bold", no_wrap=True, min_width=16)
        t.add_column("name", no_wrap=True, overflow="ellipsis", ratio=3)
        t.add_column("rule", no_wrap=True, overflow="ellipsis", ratio=2)
        for r in derived:
            name = Text("✔ " if r.ok else "✘ ", style="bold green" if r.ok else "bold red")
            name.append(r.name, style="green" if r.ok else "red")
            rule = Text(r.rule, style="dim") if r.ok else Text(f"{r.problem} ({r.rule})", style="red")
            t.add_row(r.what, name, rule)
        self.query_one("#names", Static).update(t)
        return all(r.ok for r in rows)

    @on(Input.Submitted, "#prefix")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next()

    def commit(self) -> bool:
        region = self.query_one("#region", Select).value
        zone = self.query_one("#zone", Select).value
        prefix = self.query_one("#prefix", Input).value.strip()
        if region is Select.NULL:
            self.notify("Choose a region.", severity="error")
            self.query_one("#region").focus()
            return False
        if not self._show_names(prefix):
            self.notify(f"The prefix does not fit: {services.prefix_problem(prefix) or 'a derived name breaks its rule'}",
                        severity="error")
            self.query_one("#prefix").focus()
            return False
        nodes, machine, problem = self._size_inputs()
        if problem:
            self.notify(problem, severity="error")
            self.query_one("#nodes" if "node_count" in problem else "#machine").focus()
            return False
        cluster = dict(self.state.data.get("cluster") or {})
        cluster["machine_type"] = machine
        if nodes:
            cluster["node_count"] = nodes
        else:  # the default per zone, from the zone chosen (the core's rule)
            cluster.pop("node_count", None)
        self.state.data["cluster"] = cluster
        self.state.set("region", str(region))
        self.state.set("zone", None if zone in (Select.NULL, REGIONAL) else str(zone))
        self.state.set("prefix", prefix)
        return True
