"""Shared fixtures. ``sandbox``/``sandbox_session``: see sandbox/testing.py."""

from sandbox.testing import Sandbox, pytest_configure, sandbox, sandbox_session  # noqa: F401
