"""Error classes shared by the engine, the backends and the front-ends.

Every failure that reaches a user is an ``InstallerError``: a class (what kind of
problem), a message (what is wrong) and a remedy (how to fix it).
"""
from __future__ import annotations

import enum

# Documented exit codes (README, "Exit codes").
EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_PREFLIGHT = 3
EXIT_INSTALL_FAILED = 4
EXIT_INTERRUPTED = 130


class ErrorClass(str, enum.Enum):
    # user-fixable
    BAD_INPUT = "bad-input"
    API_DISABLED = "api-disabled"
    PERMISSION_DENIED = "permission-denied"
    QUOTA = "quota"
    ORG_POLICY = "org-policy"
    NAME_TAKEN = "name-taken"
    CONFLICT = "conflict"  # exists, not ours, does not fit
    AUTH = "auth"  # no / invalid credentials
    TOOL_MISSING = "tool-missing"
    # not the user's fault
    TRANSIENT = "transient"
    TIMEOUT = "timeout"
    UNEXPECTED = "unexpected"

    @property
    def user_fixable(self) -> bool:
        return self not in (ErrorClass.TRANSIENT, ErrorClass.TIMEOUT, ErrorClass.UNEXPECTED)


class InstallerError(Exception):
    """A failure with a class, a message and a remedy."""

    def __init__(self, message: str, *, error_class: ErrorClass = ErrorClass.UNEXPECTED,
                 remedy: str = "", details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class
        self.remedy = remedy
        self.details = details or {}

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class BadInput(InstallerError):
    def __init__(self, message: str, remedy: str = "", problems: list | None = None) -> None:
        super().__init__(message, error_class=ErrorClass.BAD_INPUT, remedy=remedy)
        self.problems = problems or []


class PreflightFailed(InstallerError):
    def __init__(self, message: str, report=None) -> None:
        super().__init__(message, error_class=ErrorClass.BAD_INPUT,
                         remedy="Fix the failed checks above, then run the installer again.")
        self.report = report


def exit_code(exc: BaseException) -> int:
    """The documented exit code (README, "Exit codes") of what a run raised: a failed preflight 3, bad input 2
    (an ``InstallerError`` of class ``bad-input``, or input nested too deeply for the parser), Ctrl-C 130, any other
    failure 4 (resumable, or unexpected)."""
    if isinstance(exc, PreflightFailed):
        return EXIT_PREFLIGHT
    if isinstance(exc, InstallerError):
        return EXIT_BAD_INPUT if exc.error_class is ErrorClass.BAD_INPUT else EXIT_INSTALL_FAILED
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, RecursionError):
        return EXIT_BAD_INPUT
    return EXIT_INSTALL_FAILED
