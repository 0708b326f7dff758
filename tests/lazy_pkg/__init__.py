"""A package a store imports only when it first needs it (tests)."""
