"""Shared fixtures. ``sandbox``/``sandbox_session``: see sandbox/testing.py."""

import os
from pathlib import Path

import pytest

from sandbox.testing import Sandbox, pytest_configure, sandbox, sandbox_session  # noqa: F401


KFP_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "kfp-2.14.4"


@pytest.fixture
def kfp_fixtures() -> Path:
    """The rendered KFP 2.14.4 manifests beside the checkout (read, never copied); a test that needs them fails
    under CI=true when they are missing, and is skipped elsewhere."""
    if not KFP_FIXTURES.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test fixtures missing: {KFP_FIXTURES}")
        pytest.skip(f"test fixtures missing: {KFP_FIXTURES}")
    return KFP_FIXTURES
