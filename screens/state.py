"""What the wizard's screens share (``WizardState``): the answers being built, where each prefilled value came from,
and what was found out along the way (environment, sign-in, projects, regions, API states, the key policy)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import answer_rules

if TYPE_CHECKING:  # pragma: no cover
    from .lookups import AuthInfo, EnvInfo


class WizardState:
    """What the screens share: the answers being built and what was found out along the way."""

    def __init__(self, prefill: dict | None = None, sources: dict[str, str] | None = None) -> None:
        self.take_prefill(prefill, sources)
        self.env: EnvInfo | None = None
        self.auth: AuthInfo | None = None
        self.projects: list[dict] | None = None
        self.projects_error = ""
        self.regions: dict[str, list[str]] = {}
        self.zones: dict[tuple[str, str], list[str]] = {}
        self.key_allowed: bool | None = None
        self.key_allowed_for: str | None = None
        self.key_policy_note = ""  # why the key policy is not known (the API not enabled, no permission)
        self.api_states: dict[str, bool] | None = None
        self.api_states_for: str | None = None
        self.apis_confirmed = False
        self.manifests_from = ""  # where kfp.manifests came from (answer_rules.fill_manifests)

    def take_prefill(self, prefill: dict | None, sources: dict[str, str] | None = None) -> None:
        """Start from ``prefill`` (the answers given before the wizard) and their ``sources``."""
        self.data: dict[str, Any] = dict(prefill or {})
        self.prefilled: set[str] = {k for k, v in self.data.items() if v is not None}
        # where each prefilled value came from (installer.inputs: flag, answers file, environment, gcloud config);
        # values from the environment or gcloud's config are defaults the screens start from, not answers
        self.sources: dict[str, str] = {}
        self.defaults: dict[str, Any] = {}
        if sources:
            self.adopt_sources(sources)

    def adopt_sources(self, sources: dict[str, str]) -> None:
        """Take the input chain's sources: the environment's and gcloud's values move from the answers to the
        defaults (their screens are asked, starting from them)."""
        from installer.inputs import is_ambient
        self.sources = dict(sources)
        for key, src in self.sources.items():
            if "." not in key and is_ambient(src) and key in self.data:
                self.defaults[key] = self.data.pop(key)
                self.prefilled.discard(key)

    def given_elsewhere(self) -> list[str]:
        """"credentials from flag --credentials", ...: the answers that came from outside the wizard (a flag, the
        environment, gcloud's config; the answers file is named on its own) and were kept (Review lists them)."""
        from installer.inputs import FILE
        return [f"{k} from {src}" for k, src in sorted(self.sources.items()) if src not in (FILE, "default")]

    def source_note(self, key: str) -> str:
        """"from gcloud config core/project, configuration default" (or the flag, the file, the environment)."""
        src = self.sources.get(key)
        return f"from {src}" if src else ""

    def default(self, key: str) -> Any:
        """The answer so far, else the default from the environment or gcloud's config."""
        return self.data.get(key) if self.data.get(key) is not None else self.defaults.get(key)

    def set(self, key: str, value: Any) -> None:
        if value != self.default(key):  # answered here, not as the flag, file, environment or gcloud said
            self.sources.pop(key, None)
        if self.data.get(key) != value:
            if key == "project":  # what was found for another project no longer holds
                self.api_states = None
                self.key_allowed_for = None
            self.data[key] = value
        elif key not in self.data:
            self.data[key] = value

    def set_api_consent(self, yes: bool) -> None:
        apis = dict(self.data.get("apis") or {})
        apis["enable"] = yes
        self.data["apis"] = apis

    def answered(self, step: str) -> bool:
        p = self.prefilled
        if step == "project":
            return "project" in p
        if step == "location":
            return {"region", "prefix"} <= p
        if step == "credentials":
            return "credentials" in p
        if step == "apis":
            return "enable" in (self.data.get("apis") or {}) and "apis" in p
        return False

    def default_project(self) -> str | None:
        if self.data.get("project"):
            return self.data["project"]
        if self.defaults.get("project"):
            return self.defaults["project"]
        from installer.inputs import ambient  # the same chain as the command line: environment, gcloud config
        found = ambient().get("project")
        if found:
            return found[0]
        if self.auth and self.auth.project:
            return self.auth.project
        return None

    def answers(self):
        missing = [k for k in ("project", "region", "prefix") if not self.data.get(k)]
        if missing:
            raise ValueError(f"missing: {', '.join(missing)}")
        return answer_rules.answers_from_dict(self.data)

    def journal_status(self, env_id: str) -> dict[str, str]:
        try:
            from installer.journal import Journal
            j = Journal(env_id)
        except Exception:
            return {}
        return {sid: rec.get("status", "") for sid, rec in j.data.get("steps", {}).items()}
