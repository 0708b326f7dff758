"""``rename``: set the session's name (``rename_session``, agno-style), if
the store declares ``capabilities.rename``.

The name is a last-writer-wins register beside the metadata fields: a read
shows it as ``metadata["name"]``, and a rename never changes another field.
A ``None`` name clears it, as ``persist_state`` clears a field."""
from sessioncheck.operations import OperationDef, register

#: the one register a rename writes
NAME = "name"

RENAME = register(OperationDef(
    name="rename", effect="registers", input="fields", method="rename_session", capability="rename",
    keys=(NAME,),
    call=lambda store, session, fields: store.rename_session(session, fields[NAME]),
    describe=lambda session, fields: f"rename_session({session}, {fields.get(NAME)!r})",
))
