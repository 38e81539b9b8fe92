"""What every serving format is: a `Model` that predicts validated rows, and its `Format` record."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from modelapi.bundle import Label, Task
from modelapi.schema import Feature, Row

__all__ = ["Exporter", "Format", "Loader", "Model", "Prediction"]

# (label or value, class probabilities in manifest class order or None for a regressor)
Prediction = tuple[object, tuple[float, ...] | None]


class Model(Protocol):
    """What a served artifact can do: predict rows that the feature table already validated."""

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict each row, in order."""
        ...


# load(data, features=..., task=..., classes=...): raise BundleError when the bytes do not fit.
Loader = Callable[..., Model]
# export(estimator, features, task, classes): the artifact's bytes, or None when the format
# cannot express this estimator (the next format is tried). Imports scikit-learn lazily.
Exporter = Callable[[object, Sequence[Feature], Task, Sequence[Label] | None], bytes | None]


class Format(NamedTuple):
    """One serving format: its artifact file, how it is loaded and exported, what Lambda needs.

    `tolerance` is the largest difference from scikit-learn's own answers (probabilities, or
    regression values relative to max(1, |value|)) that the check at training time allows.
    `wheels` are the distributions a Lambda package needs to serve it, beside modelapi's own
    modules (found by following imports).
    """

    file_name: str
    load: Loader
    export: Exporter
    tolerance: float
    wheels: tuple[str, ...]
