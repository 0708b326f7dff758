"""Starting a command the way a terminal does, for tests that press Ctrl-C."""
from __future__ import annotations

import signal


def sigint_as_in_a_terminal() -> None:
    """``preexec_fn``: SIGINT at its default disposition in the child.

    A test run launched as a background job of a non-interactive shell (a
    CI script's ``cmd &``) inherits SIGINT *ignored*, and so would every
    command it starts: Python then never raises KeyboardInterrupt, and a
    test of what Ctrl-C does would wait out the whole run instead."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
