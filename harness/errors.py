"""Exceptions raised by sessioncheck.

``SessionCheckError`` is the root.  Each subclass says when it is raised.
"""
from __future__ import annotations


class SessionCheckError(Exception):
    """Root of every error sessioncheck raises on purpose."""


class ConfigError(SessionCheckError):
    """The user's input is wrong: an unknown store spec, a factory that
    raises, a bad option, a corrupt or foreign report file.  The CLI turns
    it into one line on stderr and exit code 2."""


class HistoryError(ConfigError):
    """A history file (JSON lines) does not follow the documented format."""


class ReportError(ConfigError):
    """A report file is corrupt, foreign, or of an unknown schema version."""


class UnsupportedStore(ConfigError):
    """The store does something the controlled engine cannot interleave
    (I/O in a background thread outside any operation, a child process it
    forks).  A blind spot of the harness, not a finding about the store:
    exit 2 with the cause and what to do instead."""
class UnseenWait(ConfigError):
    """An actor blocked in a wait the harness does not model (a lock made
    before interception was installed, a queue, a socket): its stack says
    where.  The harness's blind spot, not the store's bug, so the run stops
    with exit 2 and the fix instead of reporting I5."""
