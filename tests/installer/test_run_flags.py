"""One owner of the install's runtime flags (issue 18, ``installer.flags.RunFlags``): the command line and the wizard
refuse the same ``--export-key`` paths with the same words, before anything starts; ``--export-key`` without
``credentials: key`` is refused where the credentials are already known (the command line), while the wizard, which
asks them later, says after the run that Workload Identity made no key."""
from __future__ import annotations

from installer.cli import build_parser, main
from installer.flags import RunFlags, written_files
from installer.validation import load_answers
from screens.app import run_wizard

from .test_cli import EXAMPLE


def _said(err: str) -> list[str]:
    """The refusal's lines: what is wrong and how to fix it."""
    return [ln for ln in err.splitlines() if ln.startswith(("error:", "how to fix:"))]


def _bad_paths(tmp_path) -> list[str]:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    (tmp_path / "a-folder").mkdir()
    return [str(tmp_path / "a-folder"), str(a_file / "k.json")]


def test_command_line_and_wizard_refuse_the_same_export_key_with_the_same_words(tmp_path, capsys):
    for path in _bad_paths(tmp_path):
        flag = ["--export-key", path]
        # the command line, without questions
        assert main(["install", "--non-interactive", "--answers", str(EXAMPLE), *flag]) == 2
        cli_words = _said(capsys.readouterr().err)
        assert cli_words and cli_words[0].startswith(f"error: --export-key {path}"), cli_words
        # the wizard as the bare command starts it (no terminal here: its plain prompts, which never start)
        assert main(["--answers", str(EXAMPLE), *flag]) == 2
        assert _said(capsys.readouterr().err) == cli_words
        # the wizard's own entry, with the flags the command line parsed
        args = build_parser().parse_args(["--answers", str(EXAMPLE), *flag])
        assert run_wizard(str(EXAMPLE), flags=RunFlags.from_args(args), plain=True,
                          log_path=str(tmp_path / "w.log")) == 2
        assert _said(capsys.readouterr().err) == cli_words
    assert not (tmp_path / "state" / "envs").exists()  # nothing started: no journal


def test_export_key_without_key_credentials(tmp_path, capsys):
    wi = tmp_path / "wi.yaml"
    wi.write_text(EXAMPLE.read_text().replace("credentials: key", "credentials: workload-identity"))
    key = str(tmp_path / "k.json")
    assert main(["install", "--non-interactive", "--answers", str(wi), "--export-key", key]) == 2
    cli_words = _said(capsys.readouterr().err)
    flags = RunFlags(export_key=key)
    refusal = flags.problems(load_answers(wi))
    assert cli_words == [f"error: {refusal[0].message}", f"how to fix: {refusal[0].remedy}"]
    assert flags.problems() == []  # the wizard: the credentials are not chosen yet
    said = [w.line() for w in written_files(flags.runtime(), None, "workload-identity")]
    assert said == [f"key file: not written: Workload Identity makes no key (--export-key {key} applies to the "
                    f"service-account key mode)"]


def test_runtime_holds_only_what_was_given(tmp_path):
    p = build_parser()
    assert RunFlags.from_args(p.parse_args(["--non-interactive"])).runtime() == {}
    args = p.parse_args(["install", "--export-key", "k.json", "--write-kubeconfig", "--force-unlock", "ab12"])
    rt = RunFlags.from_args(args).runtime()
    assert rt["write_kubeconfig"] is True and rt["force_unlock"] == "ab12"
    assert rt["export_key_path"].endswith("/k.json") and rt["export_key_path"].startswith("/")
