"""Turn a fitted scikit-learn estimator into bundle artifacts, each checked against scikit-learn.

The serving artifact is the first format in `modelapi.formats.FORMATS` that can express the
estimator and answers as scikit-learn does on the check rows: labels equal, probabilities (or
regression values, relative to max(1, |value|)) within the format's tolerance. `linear.json`
folds a linear model's one-hot encoding into its weights (1e-12: pure-Python sums differ from
BLAS in the last bits); `model.onnx` takes everything else (1e-5: onnxruntime computes in
float32). `model.skops` is always written too, the full-fidelity copy; only types on the trust
list are written.

Any disagreement raises TrainingError: a bundle that would answer differently from the
estimator it claims to be is never written. Never writes a pickle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from modelapi.bundle import Label, Task
from modelapi.errors import TrainingError
from modelapi.formats import FORMATS, Model
from modelapi.formats.skops import FILE_NAME as SKOPS_FILE
from modelapi.formats.skops import dump_skops
from modelapi.schema import Feature, Row

__all__ = ["Artifacts", "export_model", "frame_rows", "model_input"]


@dataclass(frozen=True)
class Artifacts:
    """The files of a bundle and which one serves; `check` records the comparison made."""

    serving: str
    files: dict[str, bytes]
    check: dict[str, object] = field(default_factory=dict)


def frame_rows(X: pd.DataFrame, features: Sequence[Feature]) -> list[Row]:
    """Rows as the service passes them to a model: floats and category strings, in order."""
    columns: list[list[float | str]] = []
    for feature in features:
        values = X[feature.column]
        if feature.type == "category":
            columns.append([str(v) for v in values.tolist()])
        else:
            columns.append([float(v) for v in values.to_numpy(dtype=float).tolist()])
    return [list(row) for row in zip(*columns, strict=True)]


def model_input(estimator: object, X: pd.DataFrame) -> object:
    """What the estimator predicts from: the frame if it was fitted with names, else an array."""
    if hasattr(estimator, "feature_names_in_"):
        return X
    return X.to_numpy(dtype=float)


def _compare(
    name: str,
    model: Model,
    estimator: object,
    X: pd.DataFrame,
    rows: list[Row],
    task: Task,
    tolerance: float,
) -> dict[str, object]:
    try:
        given = model_input(estimator, X)
        expected = list(estimator.predict(given))  # type: ignore[attr-defined]
        proba = (
            np.asarray(estimator.predict_proba(given), dtype=np.float64)  # type: ignore[attr-defined]
            if task == "classification"
            else None
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise TrainingError(f"the estimator cannot predict the check data ({exc})"[:400]) from exc
    answers = model.predict(rows)
    largest = 0.0
    wrong = 0
    for index, (label, probabilities) in enumerate(answers):
        reference = expected[index]
        if task == "regression":
            value = float(label)  # type: ignore[arg-type]
            error = abs(value - float(reference)) / max(1.0, abs(float(reference)))
            largest = max(largest, error if math.isfinite(error) else math.inf)
            continue
        if label != _plain(reference):
            wrong += 1
        if proba is None or probabilities is None:
            raise TrainingError(f"{name}: gives no class probabilities for a classifier")
        for a, b in zip(probabilities, proba[index], strict=True):
            largest = max(largest, abs(a - float(b)))
    if wrong or not largest <= tolerance:
        what = "relative value difference" if task == "regression" else "probability difference"
        raise TrainingError(
            f"{name}: disagrees with scikit-learn on {len(rows)} check rows ({wrong} labels"
            f" differ, largest {what} {largest:.3g}, allowed {tolerance:g});"
            " the bundle was not written"
        )
    return {"artifact": name, "rows": len(rows), "max_difference": largest}


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def export_model(
    estimator: object,
    *,
    features: Sequence[Feature],
    task: Task,
    classes: Sequence[Label] | None,
    X_check: pd.DataFrame,
) -> Artifacts:
    """Export the serving artifact (the first format that fits) and model.skops, checked."""
    if len(X_check) == 0:
        raise TrainingError("no rows to check the exported model against; use more data")
    rows = frame_rows(X_check, features)
    for served in FORMATS:
        data = served.export(estimator, features, task, classes)
        if data is None:
            continue
        model = served.load(data, features=features, task=task, classes=classes)
        check = _compare(served.file_name, model, estimator, X_check, rows, task, served.tolerance)
        files = {served.file_name: data, SKOPS_FILE: dump_skops(estimator)}
        return Artifacts(serving=served.file_name, files=files, check=check)
    raise TrainingError(f"no serving format can express {type(estimator).__name__}")
