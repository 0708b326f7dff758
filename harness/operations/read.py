"""``read``: the session's state (``read``); in flight beside writers it
may show any outcome of theirs the specification allows."""
from sessioncheck.operations import OperationDef, register


def _output(state):
    from sessioncheck.controlled.actor import read_value

    return read_value(state)


READ = register(OperationDef(
    name="read", effect="read", method="read",
    call=lambda store, session, _: store.read(session), output=_output,
    describe=lambda session, _: f"read({session})",
))
