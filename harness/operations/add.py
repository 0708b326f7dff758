"""``add``: append one message (``add_message``)."""
from sessioncheck.operations import OperationDef, register

ADD = register(OperationDef(
    name="add", effect="append", input="message", method="add_message",
    call=lambda store, session, message: store.add_message(session, message),
    describe=lambda session, mid: f"add_message({session}, {mid})",
))
