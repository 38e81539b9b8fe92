"""The models shipped inside the package (the Pima `diabetes` classifier), as a read-only store."""

from __future__ import annotations

from pathlib import Path

from modelapi.store.local import LocalStore

__all__ = ["BUILTIN_ROOT", "BUILTIN_STORE"]

BUILTIN_ROOT = Path(__file__).resolve().parent.parent / "models"
BUILTIN_STORE = LocalStore(BUILTIN_ROOT)
BUILTIN_STORE.uri = "built-in models"
