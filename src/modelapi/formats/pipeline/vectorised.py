"""numpy evaluation of a `pipeline.json` model, a block of rows at a time."""

from __future__ import annotations

from typing import Any

__all__ = ["evaluator_for"]


def evaluator_for(model: Any) -> Any | None:
    """The numpy evaluator of a model, or None when numpy or the model does not allow one."""
    return None
