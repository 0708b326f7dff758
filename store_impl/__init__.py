"""Store backends: ``reference`` (correct stores), ``adapters`` (third-party
stores, one module per package) and ``mutants`` (one known bug each)."""
