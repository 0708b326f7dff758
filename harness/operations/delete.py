"""``delete``: remove the session, messages and metadata
(``delete_session``), if the store declares ``capabilities.delete``."""
from sessioncheck.operations import OperationDef, register

DELETE = register(OperationDef(
    name="delete", effect="delete", method="delete_session", capability="delete",
    call=lambda store, session, _: store.delete_session(session),
    describe=lambda session, _: f"delete_session({session})",
))
