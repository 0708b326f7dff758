"""Store backends: the reference-correct stores, adapters to third-party
stores, and the mutant gallery (``mutant_*.py``, one known bug each)."""
