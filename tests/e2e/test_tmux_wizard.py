"""End to end: `mlops-install --sandbox` in a real terminal (tmux), driven with send-keys as a person would,
from the welcome screen to the done screen."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "mlops-install"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


class Tmux:
    def __init__(self, tmp: Path) -> None:
        self.sock = f"mlops-e2e-{uuid.uuid4().hex[:8]}"
        self.name = "wizard"
        self.tmp = tmp

    def run(self, *args: str, check: bool = True) -> str:
        p = subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True, timeout=20)
        if check and p.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {p.stderr}")
        return p.stdout

    def start(self, command: str, env: dict[str, str], size: tuple[int, int] = (120, 40)) -> None:
        # pytest exports COLUMNS/LINES (80x24), which would override the pane size for the child
        exports = " ".join(f"{k}={_q(v)}" for k, v in env.items())
        self.run("new-session", "-d", "-x", str(size[0]), "-y", str(size[1]), "-s", self.name,
                 f"cd {_q(str(REPO))} && env -u COLUMNS -u LINES {exports} {command}; echo EXIT=$?; sleep 600")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name, check=False)

    def wait(self, text: str, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < end:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        size = self.run("display", "-p", "-t", self.name, "#{window_width}x#{window_height}", check=False).strip()
        raise AssertionError(f"{text!r} did not show within {timeout:g}s; the screen ({size}):\n{screen}")

    def kill(self) -> None:
        self.run("kill-server", check=False)


def _q(s: str) -> str:
    import shlex
    return shlex.quote(s)


@pytest.fixture
def tmux(tmp_path):
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    t = Tmux(tmp_path)
    yield t
    t.kill()


def test_wizard_in_tmux_to_done(tmux, tmp_path, kfp_fixtures):
    # no answers file: everything is asked, and the KFP manifests are found beside the checkout as `demo` finds
    # them (no network here)
    kubeconfig, key_file = tmp_path / "kube" / "config", tmp_path / "out" / "kfp-key.json"
    env = {"MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KUBECONFIG": str(kubeconfig)}
    # the runtime flags reach the wizard's install (and are no longer "for --non-interactive only")
    tmux.start(f"{_q(str(BIN))} --sandbox --speed 0.01 --write-kubeconfig --export-key {_q(str(key_file))}", env)

    tmux.wait("Welcome", 60)
    tmux.wait("Terminal 120×40")
    tmux.keys("Enter")
    tmux.wait("Sign-in")
    tmux.wait("iam.gserviceaccount.com", 30)  # the sandbox's key is the ADC
    tmux.keys("Enter")
    tmux.wait("Google Cloud project")
    tmux.wait("mlops-demo-project")  # the default project (gcloud's config) is typed in already
    tmux.keys("Enter")
    tmux.wait("Google Cloud APIs")
    tmux.wait("required APIs are disabled", 30)
    tmux.keys("Enter")  # Next asks to enable them, once
    tmux.wait("Enable (y)")
    tmux.keys("y")
    tmux.wait("Location and name prefix", 120)
    tmux.wait("us-central1-a", 30)
    screen = tmux.wait("mlops-artifact-store")
    assert "✘" not in screen
    tmux.keys("Enter")
    tmux.wait("Credentials for workloads")
    # a new project has the Org Policy API off: the managed key constraint cannot be read, the screen says why,
    # and Workload Identity is the default (marked ●, readable without colour); End picks the key (--export-key)
    screen = tmux.wait("the Org Policy API is not enabled", 30)
    assert "● Workload Identity (recommended)" in screen and "○ Service-account key" in screen, screen
    tmux.keys("End")
    tmux.wait("● Service-account key")
    tmux.keys("Enter")
    tmux.wait("Review the plan")
    screen = tmux.wait("(--write-kubeconfig)", 30)
    assert "(--export-key)" in screen, screen
    assert "../shared/fixtures/kfp-2.14.4 (beside the checkout)" in screen, screen
    tmux.wait("create", 60)
    tmux.wait("Checks before install: ✔", 60)  # the preflight ran on Review
    tmux.keys("Enter")
    tmux.wait("Install despite", 30)  # the sandbox's warnings (billing and the org policy unread), asked once
    tmux.keys("y")
    tmux.wait("Installing", 30)
    tmux.wait("Infrastructure")
    tmux.wait("Kubeflow Pipelines is up", 300)
    screen = tmux.wait("Kubeconfig written:", 30)  # the whole Done frame (a loaded machine paints it in parts)
    assert "KFP UI: https://" in screen, screen
    assert "Answers written to:" in screen  # the path itself may wrap at 120 columns
    assert "Repeat without the wizard:" in screen
    assert "Key file written:" in screen and "Kubeconfig written:" in screen, screen
    tmux.keys("q")
    screen = tmux.wait("EXIT=", 60)
    assert "EXIT=0" in screen, screen
    assert "answers written to" in screen
    # the done screen is gone: the UI address and what to do next stay on the terminal (installer/next_steps.py)
    assert "Next steps:" in screen and "KFP UI:" in screen and "-n kubeflow get pods" in screen, screen
    assert "mlops-install destroy --answers" in screen, screen
    assert "key file written:" in screen and "kubeconfig written:" in screen, screen
    assert "does not take" not in screen, screen
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert kubeconfig.exists()
    written = list((tmp_path / "state").glob("envs/*/answers.yaml"))
    assert written and oct(written[0].stat().st_mode & 0o777) == "0o600"


def test_keys_typed_ahead_in_tmux_80x24(tmux, tmp_path, kfp_fixtures):
    """A person who knows the steps types them at once, in one send-keys: Enter (welcome), Enter (sign-in, while
    its check runs), Enter (the default project, checked before the step moves on), Enter (the APIs: the dialog),
    y (the APIs are enabled, then the step moves on), Ctrl+U and a new prefix. Every key lands where it was meant."""
    env = {"MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    tmux.start(f"{_q(str(BIN))} --sandbox --speed 0.01", env, size=(80, 24))
    tmux.wait("Welcome", 60)
    tmux.keys("Enter", "Enter", "Enter", "Enter", "y", "C-u", "fast")
    tmux.wait("Location and name prefix", 120)
    screen = tmux.wait("fast-artifact-store", 30)
    assert "mlops-network" not in screen, screen
    tmux.keys("C-q")
    screen = tmux.wait("EXIT=", 60)
    assert "EXIT=130" in screen, screen


@pytest.mark.tools
def test_login_hands_the_terminal_to_gcloud_and_comes_back(tmux, tmp_path):
    """No credentials: `l` suspends the wizard and runs the real `gcloud auth login --update-adc` in the
    terminal; Ctrl+C there stops gcloud only, and the wizard comes back on the sign-in screen."""
    if not shutil.which("gcloud"):
        pytest.skip("gcloud is not installed")
    cfg = tmp_path / "gcloud-config"
    cfg.mkdir()
    env = {"MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "CLOUDSDK_CONFIG": str(cfg), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "no-such-key.json")}
    tmux.start(f"{_q(sys.executable)} -m screens", env)
    tmux.wait("Welcome", 60)
    tmux.keys("Enter")
    tmux.wait("No usable credentials", 60)
    tmux.keys("l")
    tmux.wait("$ gcloud auth login --update-adc", 30)
    tmux.wait("verification code", 60)  # gcloud owns the terminal now
    tmux.keys("C-c")
    screen = tmux.wait("Sign-in", 30)  # ... and the wizard is back
    assert "EXIT=" not in screen
    tmux.keys("C-q")
    assert "EXIT=130" in tmux.wait("EXIT=", 20)


def test_ctrl_q_during_the_install_says_how_to_resume(tmux, tmp_path, kfp_fixtures):
    """Ctrl+Q while installing, confirmed: the terminal keeps the resume command, the log, and that Google's
    operations go on (installer/next_steps.py interrupted_text); exit 130."""
    answers = tmp_path / "answers.yaml"
    answers.write_text(f"version: 1\nproject: mlops-demo-project\nregion: us-central1\nzone: us-central1-a\n"
                       f"prefix: stop\ncredentials: workload-identity\napis:\n  enable: true\n"
                       f"kfp:\n  manifests: {kfp_fixtures}\n")
    env = {"MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    # --no-verify reaches the wizard as `verify: false` (the plan it runs has no kfp-verify)
    tmux.start(f"{_q(str(BIN))} --sandbox --speed 0.05 --no-verify --answers {_q(str(answers))}", env, size=(80, 24))
    tmux.wait("Welcome", 60)
    tmux.keys("Enter")
    tmux.wait("Signed in", 30)
    tmux.keys("Enter")  # every other answer is given: on to the review
    tmux.wait("Review the plan", 60)
    tmux.wait("Checks before install", 60)
    tmux.keys("Enter")
    tmux.wait("Install despite", 30)  # the sandbox's warnings (APIs off, billing unread), asked once
    tmux.keys("y")
    tmux.wait("Installing", 30)
    tmux.wait(": started", 30)  # past the preflight: the run is in the journal
    tmux.keys("C-q")
    tmux.wait("Stop the install?", 30)
    tmux.keys("y")
    screen = tmux.wait("EXIT=", 60)
    assert "EXIT=130" in screen, screen
    assert "goes on" in screen and "running there" in screen and "Log:" in screen, screen
    flat = screen.replace("\n", "")  # the answers the wizard wrote for the environment, or the given file
    assert "Resume: mlops-install --answers " in flat and "answers.yaml  (it offers to resume)" in flat, screen
    journal = json.loads((tmp_path / "state" / "envs" / "mlops-demo-project--stop" / "journal.json").read_text())
    planned = journal["runs"][-1]["plan"]
    assert "kfp-ui" in planned and "kfp-verify" not in planned, planned


def test_plain_mode_questions_in_tmux(tmux, tmp_path, kfp_fixtures):
    """`mlops-install --sandbox --plain`: the same questions with questionary, then the plain reporter."""
    answers = tmp_path / "partial.yaml"
    answers.write_text(f"version: 1\nkfp:\n  manifests: {kfp_fixtures}\n")
    env = {"MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    tmux.start(f"{_q(str(BIN))} --sandbox --speed 0.01 --plain --answers {_q(str(answers))}", env)
    tmux.wait("Project id", 60)
    tmux.keys("Enter")  # the default: gcloud's project
    tmux.wait("Enable them now", 30)
    tmux.keys("Enter")
    tmux.wait("Region:", 120)
    tmux.keys("Enter")  # us-central1
    tmux.wait("Zone:", 30)
    tmux.keys("Enter")
    tmux.wait("Name prefix", 30)
    tmux.keys("Enter")  # mlops
    tmux.wait("Credentials for workloads", 30)
    tmux.keys("Enter")  # Workload Identity
    tmux.wait("Install now?", 30)
    tmux.keys("Enter")
    screen = tmux.wait("EXIT=", 300)
    assert "EXIT=0" in screen, screen
    assert "KFP UI: https://" in screen, screen


def test_inputs_that_cannot_be_used_are_refused_before_the_wizard_starts(tmp_path):
    """The full-screen wizard checks the inputs' rules after its first frame (screens.wizard._take_given), but
    what cannot be read or used is still refused before it starts, with exit 2: an answers file with a YAML error,
    a --set value of the wrong type, a --manifests folder that is not one."""
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    env = {"MLOPS_INSTALL_STATE_DIR": str(tmp_path / "state"), "TERM": "xterm-256color", "HOME": str(tmp_path),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nproject: [unclosed\n")
    cases = [(f"--answers {_q(str(bad))}", "is not valid YAML"),
             ("--set cluster.node_count=many", "must be a whole number"),
             (f"--manifests {_q(str(tmp_path / 'nowhere'))}", "is not a folder")]
    for flags, said in cases:
        term = Tmux(tmp_path)  # a tmux server of its own each: a new one on a socket just killed may not start
        try:
            term.start(f"{_q(str(BIN))} {flags}", env, size=(80, 24))
            screen = term.wait("EXIT=", 30)
        finally:
            term.kill()
        flat = screen.replace("\n", "")
        assert "EXIT=2" in screen and said in flat and "Welcome" not in screen, screen
