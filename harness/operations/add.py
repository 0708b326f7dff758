"""``add``: append one message (``add_message``)."""
from sessioncheck.operations import OperationDef, register

ADD = register(OperationDef(
    name="add", effect="append", input="message", method="add_message",
    call=lambda store, session, mid: store.add_message(session, {"role": "user", "content": mid}),
    describe=lambda session, mid: f"add_message({session}, {mid})",
))
