"""The debug log (0600, always written) and redaction."""
from __future__ import annotations

import base64
import json
import logging
import os
import stat
import sys

import pytest

from installer.logs import MASK, redact, redact_argv, run_command, setup_logging
from tests.keymaterial import body_line, pem

PKCS8, TRADITIONAL = pem(), pem(traditional=True)

KEY_JSON = json.dumps({"type": "service_account", "project_id": "p", "private_key_id": "abc",
                       "private_key": PKCS8,
                       "client_email": "x@p.iam.gserviceaccount.com"}, indent=2)


@pytest.mark.parametrize("text,secret", [
    ("key: " + TRADITIONAL, body_line(TRADITIONAL)),
    (json.dumps({"private_key": PKCS8}), body_line(PKCS8)),
    ("token ya29.a0AfH6SMBsecretvalue", "a0AfH6SMBsecretvalue"),
    ("mysql password=hunter22 host=x", "hunter22"),
    ('{"password": "hunter22"}', "hunter22"),
    ("PASSWORD: 'hunter22'", "hunter22"),
    ("Authorization: Bearer abcdef123456789", "abcdef123456789"),
    (base64.b64encode(KEY_JSON.encode()).decode(), "ICJ0eXBl"),
    (base64.b64encode(json.dumps({"type": "service_account", "private_key": "x"}).encode()).decode(), "eyJ0eXBl"),
    ("privateKeyData=ewogICJ0eXBlIjogInNlcnZpY2VfYWNjb3VudCIs", "ewogICJ0eXBl"),
], ids=["pem-traditional", "pem-in-json", "ya29", "password=", "json-password", "yaml-password", "bearer",
        "b64-key-file", "b64-compact-key-file", "privateKeyData"])
def test_patterns(text, secret):
    out = redact(text)
    assert secret not in out and MASK in out


def test_ordinary_text_is_kept():
    for t in ("creating cluster demo-kfp-cluster", "Secret kubeflow/mysql-secret created", "key id 0123abcd",
              "password length 24", "user-gcp-sa.json"):
        assert redact(t) == t


def test_registry_masks_value_and_base64_everywhere(tmp_path):
    secret = "Zq8-not-a-pattern-but-secret"
    redact.register(secret)
    assert secret not in redact(f"x {secret} y")
    assert base64.b64encode(secret.encode()).decode() not in redact(base64.b64encode(secret.encode()).decode())
    redact.register(KEY_JSON)
    assert "MIIEvQIBADANBg" not in redact(KEY_JSON) and "MIIEvQIBADANBg" not in redact(json.dumps(KEY_JSON))


def test_log_file_is_private_and_redacted(tmp_path, state_dir):
    path = setup_logging()
    assert path.parent == state_dir / "logs"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    redact.register("registered-secret-123")
    log = logging.getLogger("mlops_install.test")
    log.debug("connecting with password=%s and %s", "hunter22", "registered-secret-123")
    try:
        raise RuntimeError("failed: ya29.tokenvalue123")
    except RuntimeError:
        log.exception("boom")
    text = path.read_text()
    assert "hunter22" not in text and "registered-secret-123" not in text and "tokenvalue123" not in text
    assert "connecting with password=" in text and "Traceback" in text


def test_log_file_option(tmp_path):
    p = setup_logging(tmp_path / "x" / "my.log")
    logging.getLogger("mlops_install").info("hello")
    assert "hello" in p.read_text() and stat.S_IMODE(p.stat().st_mode) == 0o600


def test_redact_argv():
    assert redact_argv(["mysql", "--password=hunter2", "--user", "kfp"]) == ["mysql", f"--password={MASK}", "--user", "kfp"]
    assert redact_argv(["tool", "--token", "abc", "x"]) == ["tool", "--token", MASK, "x"]
    assert redact_argv(["tool", "plain", "s3"], sensitive=[2]) == ["tool", "plain", MASK]


def test_run_command_redacts_and_never_raises_for_missing(tmp_path, state_dir):
    path = setup_logging()
    redact.register("the-generated-secret")
    r = run_command([sys.executable, "-c", "print('out the-generated-secret'); import sys; "
                     "sys.stderr.write('password=abc\\n')", "--password=Q9w8e7"])
    assert r.returncode == 0 and "the-generated-secret" not in r.stdout and "abc" not in r.stderr
    assert "--password=" + MASK in r.args
    r = run_command(["definitely-not-a-tool-xyz"])
    assert r.returncode == 127
    r = run_command([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)
    assert r.returncode == 124
    text = path.read_text()
    assert "the-generated-secret" not in text and "Q9w8e7" not in text
