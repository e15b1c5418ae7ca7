"""Where each input comes from: the one owner of the precedence chain.

    flag (--project/--region/--zone/--prefix/--credentials/--set key.path=value)
  > answers file
  > environment (GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT, CLOUDSDK_COMPUTE_REGION, CLOUDSDK_COMPUTE_ZONE)
  > gcloud's active configuration (core/project, compute/region, compute/zone), read from its files
  > the defaults of the answers model

The command line (install, plan, validate, render, destroy, init) and the wizard's prefill both use it, so a value
comes from the same place whichever front-end asks, and each value's source is known (``Resolved.sources``).

gcloud's configuration files, read directly (no gcloud process; https://cloud.google.com/sdk/docs/configurations:
"Configurations are stored in your user config directory (typically ~/.config/gcloud ...) ... The config directory
can be changed by setting the environment variable CLOUDSDK_CONFIG"). The active configuration's name is
``CLOUDSDK_ACTIVE_CONFIG_NAME`` if set, else the text of ``<config dir>/active_config``, else ``default``; its
properties are the INI file ``<config dir>/configurations/config_<name>`` (Google Cloud SDK,
googlecloudsdk/core/configurations/named_configs.py: ``_EffectiveActiveConfigName`` checks the flag, then
CLOUDSDK_ACTIVE_CONFIG_NAME, then the activator file; ``_FileForConfig`` joins the configurations folder with
``'config_' + name``; names match ``^[a-z][-a-z0-9]*$``). Sections and properties: ``[core] project``,
``[compute] region``, ``[compute] zone`` (https://cloud.google.com/sdk/docs/properties; each property can also be
set as ``CLOUDSDK_<SECTION>_<PROPERTY>``, which wins over the file, as gcloud does). ``GOOGLE_CLOUD_PROJECT`` is the
project variable of Google's client libraries (https://cloud.google.com/docs/authentication/application-default-credentials
and google-auth's ``google.auth.environment_vars.PROJECT``); it is read before gcloud's.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .errors import BadInput

if TYPE_CHECKING:  # argparse is imported by the command line that calls add_flags
    import argparse

# (answers path, environment variables in order, gcloud property as (section, name))
AMBIENT: tuple[tuple[str, tuple[str, ...], tuple[str, str]], ...] = (
    ("project", ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"), ("core", "project")),
    ("region", ("CLOUDSDK_COMPUTE_REGION",), ("compute", "region")),
    ("zone", ("CLOUDSDK_COMPUTE_ZONE",), ("compute", "zone")),
)
# the flags every input-taking command has: flag dest -> answers path
FLAG_PATHS: dict[str, str] = {"project": "project", "region": "region", "zone": "zone", "prefix": "prefix",
                              "credentials": "credentials"}
CONFIG_NAME_RE = re.compile(r"^[a-z][-a-z0-9]*$")
MAX_CONFIG_BYTES = 1 << 16

FLAG = "flag"
FILE = "answers file"
DEFAULT = "default"


# ---------------------------------------------------------------------------------------------------------------
# gcloud's configuration files

def gcloud_config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("CLOUDSDK_CONFIG"):
        return Path(env["CLOUDSDK_CONFIG"]).expanduser()
    return Path(env.get("HOME") or Path.home()).expanduser() / ".config" / "gcloud"


def _read_small(path: Path) -> str | None:
    """A small regular file's text, or None (missing, unreadable, not a regular file, too big)."""
    from .files import UnsafePath, read_regular
    try:
        return read_regular(path, limit=MAX_CONFIG_BYTES, what="gcloud configuration").decode("utf-8", "replace")
    except (OSError, UnsafePath, BadInput):
        return None


def active_configuration(env: Mapping[str, str] | None = None) -> tuple[str, Path]:
    """The active gcloud configuration's name and its properties file (which may not exist)."""
    env = os.environ if env is None else env
    cdir = gcloud_config_dir(env)
    name = (env.get("CLOUDSDK_ACTIVE_CONFIG_NAME") or "").strip()
    if not name:
        name = (_read_small(cdir / "active_config") or "").strip()
    if not CONFIG_NAME_RE.fullmatch(name):
        name = "default"
    return name, cdir / "configurations" / f"config_{name}"


def gcloud_properties(env: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """``{"core/project": (value, "gcloud config (configuration NAME)")}`` for the properties the installer uses
    that the active configuration's file sets."""
    name, path = active_configuration(env)
    text = _read_small(path)
    if not text:
        return {}
    import configparser  # here: ~3 ms to import, which the wizard's first frame does not wait for
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cp.read_string(text)
    except configparser.Error:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for _path, _vars, (section, prop) in AMBIENT:
        value = cp.get(section, prop, fallback="").strip()
        if value:
            out[f"{section}/{prop}"] = (value, f"gcloud config {section}/{prop}, configuration {name}")
    return out


def ambient(env: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """Project, region and zone from the environment, else gcloud's active configuration:
    ``{"project": (value, source)}``, only those found."""
    env = os.environ if env is None else env
    props = None
    out: dict[str, tuple[str, str]] = {}
    for path, names, (section, prop) in AMBIENT:
        for var in names:
            if (env.get(var) or "").strip():
                out[path] = (env[var].strip(), f"environment {var}")
                break
        else:
            if props is None:
                props = gcloud_properties(env)
            if f"{section}/{prop}" in props:
                out[path] = props[f"{section}/{prop}"]
    return out


AMBIENT_SOURCES = ("environment ", "gcloud config ", "the zone's region")


def is_ambient(source: str) -> bool:
    """A value from the environment or gcloud's config (not given for this install: a default to start from)."""
    return source.startswith(AMBIENT_SOURCES)


# ---------------------------------------------------------------------------------------------------------------
# --set key.path=value, typed by the answers' field table

NULL_WORDS = ("null", "none", "~", "")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def parse_set(items: Sequence[str]) -> tuple[dict[str, Any], list]:
    """``["cluster.node_count=2", ...]`` -> ({"cluster.node_count": 2}, problems). Types follow the field table
    (integer, boolean, string, a comma-separated string list, null for the fields that take it); an unknown key
    gets the same did-you-mean as in the file."""
    if not items:
        return {}, []  # the field table's import is not needed (the wizard's start-up)
    from .fields import FIELD_BY_PATH, SECTIONS, TYPE_WORDS, _did_you_mean
    from .problems import Problem
    values: dict[str, Any] = {}
    problems: list = []
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        where = f"--set {item}"
        if not eq or not key:
            problems.append(Problem(key or "(--set)", None, f"{where}: not of the form key.path=value",
                                    "e.g. --set cluster.node_count=2"))
            continue
        spec = FIELD_BY_PATH.get(key)
        if spec is None:
            parent, _, last = key.rpartition(".")
            if key in SECTIONS:
                hint = f"set one field of it, e.g. --set {key}.{next(p for p in FIELD_BY_PATH if p.startswith(key + '.')).split('.', 1)[1]}=..."
            elif parent and parent not in SECTIONS:
                hint = _did_you_mean(parent, "")
            else:
                hint = _did_you_mean(last, parent)
            problems.append(Problem(key, None, f"{where}: unknown key {key!r}", hint))
            continue
        text = raw.strip()
        try:
            if spec.nullable and text.lower() in NULL_WORDS:
                value: Any = None
            elif spec.type == "integer":
                value = int(text)
            elif spec.type == "boolean":
                if text.lower() not in TRUE_WORDS + FALSE_WORDS:
                    raise ValueError
                value = text.lower() in TRUE_WORDS
            elif spec.type == "string-list":
                value = [s.strip() for s in text.split(",") if s.strip()]
            else:
                value = text
        except ValueError:
            problems.append(Problem(key, None, f"{where}: must be {TYPE_WORDS[spec.type]}, not {text!r}",
                                    "true or false" if spec.type == "boolean" else ""))
            continue
        values[key] = value
    return values, problems


# ---------------------------------------------------------------------------------------------------------------
# the chain

def _get(d: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    head, _, rest = path.partition(".")
    if not rest:
        return (head in d), d.get(head)
    sub = d.get(head)
    if isinstance(sub, Mapping) and rest in sub:
        return True, sub[rest]
    return False, None


def _put(d: dict[str, Any], path: str, value: Any) -> None:
    head, _, rest = path.partition(".")
    if not rest:
        d[head] = value
        return
    sub = d.get(head)
    if not isinstance(sub, dict):
        sub = {}
        d[head] = sub
    sub[rest] = value


@dataclass
class Resolved:
    """The merged answers mapping and where each of its top-level and ``--set`` values came from."""
    data: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)  # dotted path -> "flag --project", "answers file", ...
    flag_problems: list = field(default_factory=list)
    flag_paths: set[str] = field(default_factory=set)

    def source(self, path: str) -> str:
        return self.sources.get(path, DEFAULT)

    def describe(self, paths: Sequence[str] = ("project", "region", "zone", "prefix")) -> str:
        """``project p (flag --project), region r (gcloud config compute/region ...)`` for what did not come from
        the answers file."""
        parts = [f"{p} {self.data.get(p) if self.data.get(p) is not None else 'none (regional cluster)'} "
                 f"({self.sources[p]})" for p in paths if p in self.sources and self.sources[p] != FILE]
        return ", ".join(parts)


def add_flags(p: argparse.ArgumentParser, top: bool = False) -> None:
    """The inputs every answers-taking command has (``installer.inputs``: flag > answers file > environment >
    gcloud config > defaults)."""
    import argparse
    d = {} if top else {"default": argparse.SUPPRESS}
    g = p.add_argument_group("inputs (over the answers file; else the environment, else gcloud's config)")
    g.add_argument("--project", dest="in_project", metavar="ID", help="Google Cloud project id (else "
                   "GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT, gcloud's core/project)", **d)
    g.add_argument("--region", dest="in_region", metavar="REGION", help="region (else CLOUDSDK_COMPUTE_REGION, "
                   "gcloud's compute/region)", **d)
    g.add_argument("--zone", dest="in_zone", metavar="ZONE", help="zone for a zonal cluster, `none` for a regional "
                   "one (else CLOUDSDK_COMPUTE_ZONE, gcloud's compute/zone when it is in the region)", **d)
    g.add_argument("--prefix", dest="in_prefix", metavar="P", help="name prefix of every resource", **d)
    g.add_argument("--credentials", dest="in_credentials", choices=("key", "workload-identity"),
                   help="how KFP workloads get Google credentials", **d)
    g.add_argument("--set", dest="set", action="append", metavar="KEY.PATH=VALUE", help="any answers field, "
                   "typed by the schema (e.g. --set cluster.node_count=2); repeatable", **d)


def flag_values(args: Any) -> tuple[dict[str, Any], dict[str, str], list]:
    """The inputs given by flags on ``args`` (argparse namespace): (values by path, sources, problems)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for dest, path in FLAG_PATHS.items():
        v = getattr(args, f"in_{dest}", None)
        if v is None:
            continue
        if path == "zone" and v.strip().lower() in NULL_WORDS:
            v = None
        values[path] = v
        sources[path] = f"flag --{dest}"
    if getattr(args, "enable_apis", False):  # consent, as apis.enable: true in the file
        values["apis.enable"] = True
        sources["apis.enable"] = "flag --enable-apis"
    setv, problems = parse_set(getattr(args, "set", None) or [])
    for k, v in setv.items():
        values[k] = v
        sources[k] = f"flag --set {k}"
    return values, sources, problems


def resolve(file_data: Any, flags: Mapping[str, Any] | None = None, flag_sources: Mapping[str, str] | None = None,
            env: Mapping[str, str] | None = None) -> Resolved:
    """Merge the chain. ``file_data``: the parsed answers file (None: no file). A file that is not a mapping is
    left as it is (validation reports it). An ambient zone is used only when it lies in the region chosen (else a
    gcloud default zone elsewhere would make every answers file with another region invalid); an ambient region
    follows from an ambient zone when no region is given."""
    flags = dict(flags or {})
    data: Any = {} if file_data is None else file_data
    if not isinstance(data, dict):
        return Resolved(data=data, sources={}, flag_paths=set(flags))
    import copy
    data = copy.deepcopy(data)
    sources: dict[str, str] = {}
    for key in data:
        if isinstance(data[key], dict):
            for sub in data[key]:
                sources[f"{key}.{sub}"] = FILE
        elif data[key] is not None:
            sources[str(key)] = FILE
    for path, value in flags.items():
        _put(data, path, value)
        sources[path] = (flag_sources or {}).get(path, FLAG)
    amb = ambient(env)
    from .field_checks import ZONE_RE

    def given(path: str) -> bool:
        present, value = _get(data, path)
        return present and (value is not None or path == "zone")
    if not given("project") and "project" in amb:
        data["project"], sources["project"] = amb["project"]
    if not given("region"):
        if "region" in amb:
            data["region"], sources["region"] = amb["region"]
        elif "zone" in amb and not given("zone") and ZONE_RE.fullmatch(amb["zone"][0]):
            data["region"] = ZONE_RE.fullmatch(amb["zone"][0]).group(1)
            sources["region"] = f"the zone's region ({amb['zone'][1]})"
    if not given("zone") and "zone" in amb and isinstance(data.get("region"), str):
        m = ZONE_RE.fullmatch(amb["zone"][0])
        if m and m.group(1) == data["region"]:
            data["zone"], sources["zone"] = amb["zone"]
    return Resolved(data=data, sources=sources, flag_paths=set(flags))


def _mark_flag_problems(problems: list, resolved: Resolved) -> None:
    """A problem in a value that came from outside the file says so (and has no line of the file)."""
    for p in problems:
        src = resolved.sources.get(p.path.split("[")[0])
        if src and src != FILE:
            p.line = None
            if f"({src})" not in p.message:
                p.message = f"{p.message} (from {src})"


def load_resolved(answers_path: str | Path | None, args: Any = None, env: Mapping[str, str] | None = None,
                  what: str | None = None):
    """The ``Answers`` from the whole chain (raises ``BadInput`` listing every problem, as ``load_answers`` does)
    and the ``Resolved`` behind it. ``answers_path`` None: flags, environment and gcloud only."""
    from .answers_yaml import parse_yaml, read_answers_text
    from .problems import capped
    from .validation import validate_dict
    flags, fsrc, problems = flag_values(args) if args is not None else ({}, {}, [])
    data, lines = None, {}
    base_dir = Path.cwd()
    label = what or (str(answers_path) if answers_path else "the inputs")
    if answers_path:
        p = Path(answers_path)
        data, lines, syntax = parse_yaml(read_answers_text(p))
        if syntax:
            raise BadInput(f"{p} has {len(syntax)} problem(s)", problems=capped(syntax),
                           remedy=f"fix each line listed, then run `mlops-install validate {p}`")
        base_dir = p.parent.resolve()
    resolved = resolve(data, flags, fsrc, env)
    lines = {k: v for k, v in (lines or {}).items() if k.split("[")[0] not in resolved.flag_paths}
    answers, found = validate_dict(resolved.data, lines, base_dir)
    _mark_flag_problems(found, resolved)
    if not answers_path:  # no file to add a line to: say the flag
        from .fields import FIELD_BY_PATH
        for p in found:
            if p.message.endswith("required but missing") and p.path in FIELD_BY_PATH:
                flag = f"--{p.path}" if p.path in FLAG_PATHS else f"--set {p.path}="
                p.hint = f"give {flag}{' ' if flag.startswith('--' + p.path) else ''}{FIELD_BY_PATH[p.path].example}"
    problems = problems + found
    if problems:
        if answers_path:
            remedy = f"fix each line listed, then run `mlops-install validate {answers_path}`"
        else:
            remedy = ("give them as flags (--project P --region R --prefix X, --set key.path=value) or in an "
                      "answers file (`mlops-install init` writes one)")
        raise BadInput(f"{label} has {len(problems)} problem(s)" if answers_path else
                       f"the inputs have {len(problems)} problem(s)", problems=capped(problems), remedy=remedy)
    assert answers is not None
    return answers, resolved


@dataclass
class Given:
    """What the command line and the answers file give, read and parsed (``read_given``: a bad ``--set`` value, an
    unreadable file or a YAML error raise ``BadInput`` here), before the environment and gcloud's configuration are
    added and the answers' rules checked (``partial_resolved``). The full-screen wizard does that second part after
    its first frame: the rules' modules cost its start-up ~12 ms."""
    flags: dict[str, Any] = field(default_factory=dict)
    flag_sources: dict[str, str] = field(default_factory=dict)
    data: Any = None  # the parsed file (None: no file)
    lines: dict[str, int] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)

    def gives(self, path: str) -> bool:
        """Whether a flag or the file gives ``path`` (a dotted answers path) a value, right or wrong."""
        if path in self.flags:
            return self.flags[path] is not None
        return isinstance(self.data, Mapping) and _get(self.data, path)[1] is not None


def read_given(answers_path: str | Path | None, args: Any = None) -> Given:
    """The flags on ``args`` (argparse namespace) and the answers file, read (raises ``BadInput``)."""
    flags, fsrc, problems = flag_values(args) if args is not None else ({}, {}, [])
    if problems:
        raise BadInput(f"{len(problems)} flag(s) cannot be used", problems=problems,
                       remedy="fix the --set values listed")
    given = Given(flags, fsrc)
    if answers_path:
        from .answers_yaml import parse_yaml, read_answers_text
        from .problems import capped
        p = Path(answers_path)
        given.data, given.lines, syntax = parse_yaml(read_answers_text(p))
        if syntax:
            raise BadInput(f"{p} is not valid YAML", problems=capped(syntax), remedy="fix the line listed")
        given.base_dir = p.parent.resolve()
    return given


def partial_resolved(given: Given, env: Mapping[str, str] | None = None):
    """For the wizard: the ``validation.Partial`` of the whole chain and the ``Resolved`` (its sources)."""
    from .validation import validate_partial
    resolved = resolve(given.data, given.flags, given.flag_sources, env)
    partial = validate_partial(resolved.data, given.base_dir)
    for prob in partial.problems:
        prob.line = None if prob.path in resolved.flag_paths else given.lines.get(prob.path, prob.line)
    _mark_flag_problems(partial.problems, resolved)
    return partial, resolved


def load_partial_resolved(answers_path: str | Path | None, args: Any = None,
                          env: Mapping[str, str] | None = None):
    """``read_given`` and ``partial_resolved`` at once."""
    return partial_resolved(read_given(answers_path, args), env)


# ---------------------------------------------------------------------------------------------------------------
# `init`: a commented answers file

INIT_HEADER = """\
# mlops-install answers file (version 1), written by `mlops-install init`.
# Each field says what it is; a value's source is noted beside it when it did not come from a default.
# Check it with `mlops-install validate {name}`, see what it would make with `mlops-install plan --answers {name}`,
# then install with `mlops-install install --non-interactive --answers {name} --enable-apis`.
# Input flags (--project, --region, --zone, --prefix, --set key.path=value) override what is written here.
# It holds no secret.
"""


def _yaml_scalar(value: Any) -> str:
    import yaml
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text[:-4].rstrip() if text.endswith("\n...") else text.removesuffix("...").strip() or "null"


def commented_answers(resolved: Resolved, name: str = "answers.yaml") -> str:
    """The whole answers file, every field with its description as a comment and its value (given, else the
    default); a required field nothing gave is left empty with what to write."""
    from .fields import FIELDS, SECTIONS, _default
    lines = [INIT_HEADER.format(name=name).rstrip("\n")]
    section = None
    for spec in FIELDS:
        head, _, rest = spec.path.partition(".")
        indent = "  " if rest else ""
        if rest and head != section:
            section = head
            lines.append(f"\n# {SECTIONS[head]}\n{head}:")
        present, value = _get(resolved.data, spec.path)
        if not present:
            value = _default(spec.path)
            if hasattr(value, "__dataclass_fields__"):
                value = None
        src = resolved.sources.get(spec.path)
        note = f"  # from {src}" if src and src != FILE else ""
        if not rest:
            lines.append("")
        for text_line in _wrap(spec.description, 110 - len(indent)):
            lines.append(f"{indent}# {text_line}")
        key = rest or head
        if value is None and spec.required:
            lines.append(f"{indent}{key}:  # REQUIRED, e.g. {spec.example}")
        elif value is None and not spec.nullable:
            lines.append(f"{indent}# {key}:  (leave out for the default)")
        elif isinstance(value, list):
            lines.append(f"{indent}{key}:{note}")
            lines.extend(f"{indent}  - {_yaml_scalar(v)}" for v in value)
        else:
            lines.append(f"{indent}{key}: {_yaml_scalar(value)}{note}")
    return "\n".join(lines).lstrip("\n") + "\n"


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width) or [""]
