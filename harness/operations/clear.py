"""``clear``: remove every message of the session, keeping its metadata
(``clear_messages``), if the store declares ``capabilities.clear``."""
from sessioncheck.operations import OperationDef, register

CLEAR = register(OperationDef(
    name="clear", effect="clear", method="clear_messages", capability="clear",
    call=lambda store, session, _: store.clear_messages(session),
    describe=lambda session, _: f"clear_messages({session})",
))
