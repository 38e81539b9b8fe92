"""What every serving format is: a `Model` that predicts validated rows, and its `Format` record."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NamedTuple, Protocol

from modelapi.bundle import Label, Task
from modelapi.errors import BundleError
from modelapi.schema import Feature, Row

__all__ = ["Exporter", "Format", "Loader", "Model", "Prediction"]

# (label or value, class probabilities in manifest class order or None for a regressor)
Prediction = tuple[object, tuple[float, ...] | None]


class Model(Protocol):
    """What a served artifact can do: predict rows that the feature table already validated.

    A model that prepares work lazily may also have `warm()`, which `Predictor` calls to do
    that work at load time where first answers must be quick.
    """

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict each row, in order."""
        ...


# load(data, features=..., task=..., classes=...): raise BundleError when the bytes do not fit.
Loader = Callable[..., Model]
# export(estimator, features, task, classes): the artifact's bytes, or None when the format
# cannot express this estimator (the next format is tried). Imports scikit-learn lazily.
Exporter = Callable[[object, Sequence[Feature], Task, Sequence[Label] | None], bytes | None]


class Format(NamedTuple):
    """One serving format: its artifact file, the module serving it, what a Lambda zip needs.

    `module` defines `load` and `export` (a `Loader` and an `Exporter`); `Format.of` makes a
    record whose `load` and `export` import it on their first call, so that a process imports
    the module of the format it serves and no other. `tolerance` is the largest difference
    from scikit-learn's own answers (probabilities, or regression values relative to
    max(1, |value|)) that the check at training time allows. A Lambda zip for this format
    carries `module` and the modelapi modules it imports, except `exporters` (the modules only
    `export` imports: scikit-learn to the artifact), and the distributions in `wheels`.
    """

    file_name: str
    module: str
    load: Loader
    export: Exporter
    tolerance: float
    wheels: tuple[str, ...]
    exporters: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        file_name: str,
        module: str,
        *,
        tolerance: float,
        wheels: tuple[str, ...],
        exporters: tuple[str, ...] = (),
    ) -> Format:
        """The format of `file_name`, served by `module`, which is imported on first use."""

        def load(data: bytes, **model: object) -> Model:
            served: Loader = _imported(module, file_name).load
            return served(data, **model)

        def export(
            estimator: object,
            features: Sequence[Feature],
            task: Task,
            classes: Sequence[Label] | None,
        ) -> bytes | None:
            exported: Exporter = _imported(module, file_name).export
            return exported(estimator, features, task, classes)

        return cls(file_name, module, load, export, tolerance, wheels, exporters)


def _imported(module: str, file_name: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        if not missing.startswith("modelapi."):
            raise
        # A Lambda zip carries the modules of the format it was packaged for, and no other.
        raise BundleError(
            f"{file_name}: serving it needs {missing}, which this installation does not have;"
            f" package the function again for this model (modelapi package lambda)"
        ) from exc
