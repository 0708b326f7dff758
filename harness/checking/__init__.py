"""The history of a run and the checker that decides the invariants on it:
``history`` (events and operations, the nouns), ``invariants`` (their
names), ``checker`` (ok, violation or unknown)."""
