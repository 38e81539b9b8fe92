"""Artifact formats: one module each, every one turning artifact bytes into a `Model`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from modelapi.schema import Row

__all__ = ["Model", "Prediction"]

# (label or value, class probabilities in manifest class order or None for a regressor)
Prediction = tuple[object, tuple[float, ...] | None]


class Model(Protocol):
    """What a served artifact can do: predict rows that the feature table already validated."""

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict each row, in order."""
        ...
