"""``persist``: merge fields into the metadata (``persist_state``); a
``None`` value clears its field."""
from sessioncheck.operations import OperationDef, register


def _describe(session: str, fields: dict | None) -> str:
    from sessioncheck.checking.history import format_fields

    return f"persist_state({session}, {format_fields(fields)})"


PERSIST = register(OperationDef(
    name="persist", effect="registers", input="fields", method="persist_state", capability="metadata",
    call=lambda store, session, fields: store.persist_state(session, dict(fields)),
    describe=_describe,
))
