"""Checking answers and loading / writing answers files.

Every problem is reported at once, each with its field path and line number
(``Problem(path="cluster.node_count", line=12, message=..., hint=...)``, ``installer.problems``). The field table
is ``installer.fields`` (with the JSON Schema, ``json_schema()``), each field's rule ``installer.field_checks``,
the file's text and YAML with line numbers ``installer.answers_yaml``.

Public:
- ``load_answers(path) -> Answers`` (raises ``BadInput(problems=[...])``)
- ``answers_from_dict(d) -> Answers`` (raises ``BadInput``)
- ``validate_dict(d, lines=None) -> (Answers | None, [Problem])``
- ``validate_partial(d) -> Partial`` (for the wizard: what is given, what is wrong, what is missing)
- ``dump_answers(answers, path)``
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import (Answers, ApisAnswers, BucketAnswers, ClusterAnswers, KfpAnswers, ServiceAccountsAnswers,
                      SqlAnswers, StateAnswers, prefixed)
from .answers_yaml import parse_yaml, read_answers_text
from .errors import BadInput
from .field_checks import (ZONE_RE, check_bucket, check_cluster, check_manifests, check_network, check_sa_id,
                           check_sql_instance)
from .fields import (ANSWERS_VERSION, FIELD_BY_PATH, FIELDS, REQUIRED, SECTIONS, TYPE_WORDS, FieldSpec,
                     _did_you_mean, _known_children)
from .problems import Problem, _shorten, capped


def _type_ok(spec: FieldSpec, value: Any) -> bool:
    if value is None:
        return spec.nullable
    if spec.type == "string":
        return isinstance(value, str)
    if spec.type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.type == "boolean":
        return isinstance(value, bool)
    if spec.type == "string-list":
        return isinstance(value, list)
    return False  # pragma: no cover


def _type_hint(spec: FieldSpec, value: Any) -> str:
    if spec.type == "integer" and isinstance(value, str) and value.strip().isdigit():
        return f"write it without quotes: {value.strip()}"
    if spec.type == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"put it in quotes: \"{value}\""
    if spec.type == "boolean" and isinstance(value, str):
        return "write true or false without quotes"
    if spec.type == "string-list" and isinstance(value, str):
        return f"write a list, e.g. [{value}]"
    if value is None and not spec.nullable:
        return "give a value or remove the line to use the default"
    return ""


@dataclass
class Partial:
    """What ``validate_partial`` found: the values to prefill, the problems in what is given, what is missing."""
    values: dict[str, Any]  # dotted path -> value (only the valid, given ones)
    problems: list[Problem]
    missing: list[str]  # required dotted paths not given
    answers: Answers | None = None  # set when complete and valid

    @property
    def complete(self) -> bool:
        return self.answers is not None


def _check(d: Any, lines: dict[str, int], base_dir: Path | None
           ) -> tuple[dict[str, Any], list[Problem], list[str]]:
    """Check ``d``; return (valid values by dotted path, problems, missing required paths)."""
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    missing: list[str] = []

    def line(path: str) -> int | None:
        while path:
            if path in lines:
                return lines[path]
            path = path.rpartition(".")[0]
        return None

    if d is None:
        d = {}
    if not isinstance(d, dict):
        problems.append(Problem("", 1 if lines is not None else None,
                                f"the answers file must be a mapping of keys to values, not {type(d).__name__}",
                                "start from the file `mlops-install init` writes"))
        return values, problems, list(REQUIRED)

    # unknown keys (two levels: top and sections)
    for key, val in d.items():
        skey = str(key)
        if skey in SECTIONS:
            if val is None:
                continue
            if not isinstance(val, dict):
                problems.append(Problem(skey, line(skey), f"{skey} must be a section (a mapping), "
                                        f"not {type(val).__name__}", f"e.g.\n  {skey}:\n    "
                                        f"{_known_children(skey)[0]}: ..."))
                continue
            for sub in val:
                if f"{skey}.{sub}" not in FIELD_BY_PATH:
                    problems.append(Problem(f"{skey}.{_shorten(str(sub), 40).strip(chr(39))}",
                                            line(f"{skey}.{sub}"), f"unknown key {_shorten(str(sub))}",
                                            _did_you_mean(str(sub), skey)))
        elif skey not in FIELD_BY_PATH:
            problems.append(Problem(_shorten(skey, 40).strip(chr(39)), line(skey), f"unknown key {_shorten(skey)}",
                                    _did_you_mean(skey, "")))

    for spec in FIELDS:
        head, _, rest = spec.path.partition(".")
        container = d
        if rest:
            container = d.get(head)
            if not isinstance(container, dict):
                continue
            key = rest
        else:
            key = head
        if key not in container:
            if spec.required:
                missing.append(spec.path)
            continue
        value = container[key]
        if value is None and spec.required:
            missing.append(spec.path)
            continue
        if not _type_ok(spec, value):
            problems.append(Problem(spec.path, line(spec.path),
                                    f"must be {TYPE_WORDS[spec.type]}, not {_shorten(value)}",
                                    _type_hint(spec, value)))
            continue
        if value is None:
            values[spec.path] = None
            continue
        errs: list[tuple[str, str]] = []
        if spec.type == "string-list":
            bad_items = False
            seen: set[str] = set()
            for i, item in enumerate(value):
                ipath = f"{spec.path}[{i}]"
                if not isinstance(item, str):
                    problems.append(Problem(ipath, line(ipath) or line(spec.path),
                                            f"must be a string, not {_shorten(item)}", ""))
                    bad_items = True
                    continue
                if item in seen:
                    problems.append(Problem(ipath, line(ipath) or line(spec.path), f"{item!r} is listed twice", ""))
                    bad_items = True
                seen.add(item)
                for msg, hint in (spec.check(item) if spec.check else []):
                    problems.append(Problem(ipath, line(ipath) or line(spec.path), msg, hint))
                    bad_items = True
            if not bad_items:
                values[spec.path] = list(value)
            continue
        if spec.path == "version":
            if value != ANSWERS_VERSION:
                errs.append((f"version {value} is not supported; this installer reads version {ANSWERS_VERSION}",
                             "write version: 1"))
        elif spec.path == "kfp.manifests":
            errs = check_manifests(value, base_dir)
        elif spec.check:
            errs = spec.check(value)
        for msg, hint in errs:
            problems.append(Problem(spec.path, line(spec.path), msg, hint))
        if not errs:
            values[spec.path] = value

    # cross-field rules
    region, zone = values.get("region"), values.get("zone")
    if region and zone and ZONE_RE.fullmatch(zone).group(1) != region:
        problems.append(Problem("zone", line("zone"), f"zone {zone!r} is not in region {region!r}",
                                f"use a zone of {region} (e.g. {region}-a), or set region: "
                                f"{ZONE_RE.fullmatch(zone).group(1)}"))
        values.pop("zone", None)
    prefix = values.get("prefix")
    if prefix:
        d = prefixed(prefix)
        derived = [
            ("network", d["network"], check_network),
            ("subnet", d["subnet"], check_network),
            ("GKE service account id", d["gke_sa"], check_sa_id),
            ("KFP service account id", d["kfp_sa"], check_sa_id),
        ]
        if "cluster.existing" not in values or values.get("cluster.existing") is None:
            derived.append(("cluster", d["cluster"], check_cluster))
        if values.get("sql.existing") is None:
            derived.append(("Cloud SQL instance", d["sql_instance"], check_sql_instance))
        if values.get("bucket.existing") is None:
            derived.append(("bucket", d["bucket"], check_bucket))
        bad = False
        for what, name, check in derived:
            for msg, hint in check(name):
                problems.append(Problem("prefix", line("prefix"), f"the derived {what} name is not valid: {msg}",
                                        hint or "choose another prefix"))
                bad = True
        if bad:
            values.pop("prefix", None)
    return values, problems, missing


def _build(values: dict[str, Any]) -> Answers:
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    top: dict[str, Any] = {}
    for path, v in values.items():
        head, _, rest = path.partition(".")
        if rest:
            sections[head][rest] = v
        else:
            top[path] = v
    return Answers(
        project=top["project"], region=top["region"], prefix=top["prefix"],
        zone=top.get("zone"), credentials=top.get("credentials", "key"),
        version=top.get("version", ANSWERS_VERSION), verify=top.get("verify", True),
        apis=ApisAnswers(**sections["apis"]), cluster=ClusterAnswers(**sections["cluster"]),
        sql=SqlAnswers(**sections["sql"]), bucket=BucketAnswers(**sections["bucket"]),
        kfp=KfpAnswers(**sections["kfp"]), service_accounts=ServiceAccountsAnswers(**sections["service_accounts"]),
        state=StateAnswers(**sections["state"]),
    )


def _missing_problems(missing: list[str], lines: dict[str, int] | None) -> list[Problem]:
    out = []
    for path in missing:
        spec = FIELD_BY_PATH[path]
        example = f"{path.split('.')[-1]}: {spec.example}" if spec.example else ""
        out.append(Problem(path, None, f"{path} is required but missing",
                           f"add a line such as `{example}`" if example else spec.description))
    return out


def validate_dict(d: Any, lines: dict[str, int] | None = None, base_dir: Path | None = None
                  ) -> tuple[Answers | None, list[Problem]]:
    """Validate a parsed answers document; return the Answers (None if any problem) and every problem."""
    values, problems, missing = _check(d, lines or {}, base_dir)
    problems += _missing_problems(missing, lines)
    problems.sort(key=lambda p: (p.line is None, p.line or 0, p.path))
    if problems:
        return None, problems
    answers = _build(values)
    if answers.kfp.manifests != "upstream" and base_dir is not None:
        p = Path(answers.kfp.manifests).expanduser()
        if not p.is_absolute():
            answers.kfp.manifests = str((base_dir / p).resolve())
    return answers, []


def answers_from_dict(d: dict[str, Any], base_dir: Path | None = None) -> Answers:
    answers, problems = validate_dict(d, None, base_dir)
    if problems:
        raise BadInput(f"the answers have {len(problems)} problem(s)", problems=capped(problems),
                       remedy="fix each field listed")
    assert answers is not None
    return answers


def validate_partial(d: Any, base_dir: Path | None = None) -> Partial:
    """For the wizard: a partial answers dict prefills; returns valid values, problems and missing fields."""
    values, problems, missing = _check(d, {}, base_dir)
    answers = None
    if not problems and not missing:
        answers, _ = validate_dict(d, None, base_dir)
    return Partial(values=values, problems=problems, missing=missing, answers=answers)


def validate_text(text: str, base_dir: Path | None = None) -> tuple[Answers | None, list[Problem]]:
    data, lines, problems = parse_yaml(text)
    if problems:
        return None, problems
    return validate_dict(data, lines, base_dir)


def load_answers(path: str | Path) -> Answers:
    """Load and validate an answers file; raise ``BadInput`` listing every problem."""
    p = Path(path)
    text = read_answers_text(p)
    answers, problems = validate_text(text, p.parent.resolve())
    if problems:
        raise BadInput(f"{p} has {len(problems)} problem(s)", problems=capped(problems),
                       remedy=f"fix each line listed, then run `mlops-install validate {p}`")
    assert answers is not None
    return answers


def load_partial(path: str | Path) -> tuple[Partial, list[Problem]]:
    """For ``--answers FILE`` with the wizard: syntax problems are fatal, the rest prefill."""
    p = Path(path)
    text = read_answers_text(p)
    data, lines, problems = parse_yaml(text)
    if problems:
        raise BadInput(f"{p} is not valid YAML", problems=capped(problems), remedy="fix the line listed")
    partial = validate_partial(data, p.parent.resolve())
    for prob in partial.problems:
        prob.line = lines.get(prob.path, prob.line)
    return partial, problems


# ---------------------------------------------------------------------------------------------------------------
# Writing answers back

ANSWERS_HEADER = """\
# mlops-install answers file (version 1).
# Written by mlops-install{why}. Replay it with:
#   mlops-install --non-interactive --answers {name}
# Field reference: README.md, "Answers file". It holds no secret.
"""


def dump_answers(answers: Answers, path: str | Path, why: str = "") -> Path:
    """Write the answers as YAML (mode 0600, atomically) with a header comment."""
    import yaml

    from .files import write_file

    p = Path(path)
    d = answers.to_dict()
    order = ["version", "project", "region", "zone", "prefix", "credentials", "verify", *SECTIONS]
    ordered = {k: d[k] for k in order if k in d}
    body = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False)
    text = ANSWERS_HEADER.format(why=f" ({why})" if why else "", name=p.name) + body
    write_file(p, text.encode(), mode=0o600)  # no link followed; someone else's file is refused
    return p
