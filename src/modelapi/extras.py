"""Optional dependencies: imported at their point of use, with the exact install command."""

from __future__ import annotations

import importlib
from types import ModuleType

from modelapi.errors import MissingExtra

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency or raise MissingExtra with the exact install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{module} is needed here: pip install 'modelapi[{extra}]'") from None
