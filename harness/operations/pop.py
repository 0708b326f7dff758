"""``pop``: remove the session's last message and return it
(``pop_message``), if the store declares ``capabilities.pop``.

The output is the removed message's id, or ``None`` when the session had
no message: that is what lets the checker tell a message a pop removed
from one a racing write lost."""
from typing import Any

from sessioncheck.operations import OperationDef, register


def message_id(result: Any, identity: str = "content") -> str | None:
    """The popped message's identity (its ``identity`` field, ``content``
    by default); ``None`` for none.  Anything else the store returns is
    kept as its text, which the checker then reports as a message never
    added."""
    if result is None:
        return None
    if isinstance(result, dict):
        return str(result.get(identity))
    return repr(result)


POP = register(OperationDef(
    name="pop", effect="remove_last", method="pop_message", capability="pop",
    call=lambda store, session, _: store.pop_message(session), output=message_id, output_identity=message_id,
    describe=lambda session, _: f"pop_message({session})",
))
