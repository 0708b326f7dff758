"""``read``: the session's state (``read``); in flight beside writers it
may show any outcome of theirs the specification allows."""
from sessioncheck.operations import OperationDef, register


def _output(state, identity="content"):
    from sessioncheck.controlled.actor import read_value

    return read_value(state, identity)


READ = register(OperationDef(
    name="read", effect="read", method="read",
    call=lambda store, session, _: store.read(session), output=_output, output_identity=_output,
    describe=lambda session, _: f"read({session})",
))
