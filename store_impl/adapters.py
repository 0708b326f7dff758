"""Adapters to third-party stores, each an optional extra.

``ADAPTERS`` maps a store spec to ``(module:factory, extra, package)``.
A missing package is a configuration error that names the extra to
install.
"""
from __future__ import annotations

import importlib.util

from harness.errors import ConfigError

ADAPTERS: dict[str, tuple[str, str, str]] = {}


def load(name: str) -> str:
    target, extra, package = ADAPTERS[name]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"store {name!r} needs the package {package!r}: pip install 'sessioncheck[{extra}]'"
        )
    return target
