"""Turn a fitted scikit-learn estimator into bundle artifacts, each checked against scikit-learn.

- `linear.json` for linear models whose preprocessing can be folded into the weights (a
  ColumnTransformer of passthrough numeric columns and plain one-hot encoders, or no
  preprocessing): labels equal and probabilities within 1e-12 on the check rows; regression
  values within 1e-12 relative to max(1, |value|), because pure-Python sums differ from BLAS
  in the last bits and a value of 300 carries rounding near 1e-13.
- `model.onnx` (skl2onnx) for everything else: labels equal, probabilities within 1e-5,
  regression values within 1e-5 relative (onnxruntime computes in float32).
- `model.skops` always, the full-fidelity copy; only types on the trust list are written.

Any disagreement raises TrainingError: a bundle that would answer differently from the
estimator it claims to be is never written. Never writes a pickle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from modelapi.errors import TrainingError
from modelapi.formats import Model
from modelapi.formats.linear import FILE_NAME as LINEAR_FILE
from modelapi.formats.linear import LinearModel, LinearSpec
from modelapi.formats.onnx import FILE_NAME as ONNX_FILE
from modelapi.formats.onnx import OnnxModel
from modelapi.formats.skops import FILE_NAME as SKOPS_FILE
from modelapi.formats.skops import TRUSTED_TYPES
from modelapi.schema import Feature, Row

__all__ = [
    "LINEAR_TOLERANCE",
    "ONNX_OPSET",
    "ONNX_TOLERANCE",
    "Artifacts",
    "export_model",
    "frame_rows",
    "linear_spec",
    "model_input",
    "onnx_bytes",
    "skops_bytes",
]

Task = Literal["classification", "regression"]
LINEAR_TOLERANCE = 1e-12
ONNX_TOLERANCE = 1e-5
# Pinned so a bundle made here also loads in an older onnxruntime on a server.
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}


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


def _linear_final(estimator: object) -> tuple[object | None, object]:
    """Split a pipeline into (preprocessor or None, final step)."""
    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline):
        return None, estimator
    steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
    if len(steps) == 1:
        return None, steps[0]
    if len(steps) == 2:
        return steps[0], steps[1]
    return None, None


def _slots(
    preprocessor: object | None, features: Sequence[Feature]
) -> list[tuple[int, str | None]] | None:
    """Map each transformed column to (feature index, category or None); None if not foldable."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

    index = {f.column: i for i, f in enumerate(features)}
    if preprocessor is None:
        if any(f.type == "category" for f in features):
            return None
        return [(i, None) for i in range(len(features))]
    if not isinstance(preprocessor, ColumnTransformer):
        return None
    slots: list[tuple[int, str | None]] = []
    for _, transformer, columns in preprocessor.transformers_:
        if transformer == "drop":
            continue
        names = _column_names(columns, features)
        if names is None or any(n not in index for n in names):
            return None
        # A fitted ColumnTransformer holds "passthrough" as an identity FunctionTransformer.
        if transformer == "passthrough" or (
            isinstance(transformer, FunctionTransformer) and transformer.func is None
        ):
            if any(features[index[n]].type == "category" for n in names):
                return None
            slots.extend((index[n], None) for n in names)
        elif isinstance(transformer, OneHotEncoder):
            if transformer.drop_idx_ is not None or transformer.min_frequency is not None:
                return None
            if transformer.max_categories is not None:
                return None
            for name, categories in zip(names, transformer.categories_, strict=True):
                if features[index[name]].type != "category":
                    return None
                slots.extend((index[name], str(c)) for c in categories)
        else:
            return None
    return slots


def _column_names(columns: object, features: Sequence[Feature]) -> list[str] | None:
    if isinstance(columns, str):
        return [columns]
    try:
        items = list(columns)  # type: ignore[call-overload]
    except TypeError:
        return None
    names: list[str] = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not 0 <= int(item) < len(features):
                return None
            names.append(features[int(item)].column)
        else:
            return None
    return names


def linear_spec(estimator: object, features: Sequence[Feature], task: Task) -> LinearSpec | None:
    """Fold a linear estimator and its preprocessing into a `linear.json` spec, if it can be."""
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge

    preprocessor, final = _linear_final(estimator)
    if task == "classification":
        if not isinstance(final, LogisticRegression):
            return None
        # One-vs-rest probabilities are normalised sigmoids, not the softmax linear.json uses.
        if getattr(final, "multi_class", "auto") == "ovr" and len(final.classes_) > 2:
            return None
    elif not isinstance(final, (LinearRegression, Ridge, Lasso, ElasticNet)):
        return None
    slots = _slots(preprocessor, features)
    coef = np.atleast_2d(np.asarray(final.coef_, dtype=np.float64))
    if slots is None or coef.shape[1] != len(slots) or coef.ndim != 2:
        return None
    intercept = np.atleast_1d(np.asarray(final.intercept_, dtype=np.float64))
    n_outputs = coef.shape[0]
    if intercept.shape[0] != n_outputs:
        intercept = np.broadcast_to(intercept, (n_outputs,))
    numeric: dict[int, list[float]] = {}
    categorical: dict[int, dict[str, list[float]]] = {}
    for slot, (position, category) in enumerate(slots):
        column = [float(w) for w in coef[:, slot]]
        if category is None:
            before = numeric.get(position, [0.0] * n_outputs)
            numeric[position] = [a + b for a, b in zip(before, column, strict=True)]
        else:
            categorical.setdefault(position, {})[category] = column
    weights: list[list[float] | dict[str, list[float]]] = []
    for position, feature in enumerate(features):
        if feature.type != "category":
            weights.append(numeric.get(position, [0.0] * n_outputs))
            continue
        known = categorical.get(position, {})
        table: dict[str, list[float]] = {}
        for category in feature.categories or ():
            if category not in known and position in categorical:
                raise TrainingError(
                    f"feature {feature.column}: category {category[:40]!r} is not known to the"
                    " model's one-hot encoder; give data whose categories it was trained on"
                )
            table[category] = known.get(category, [0.0] * n_outputs)
        weights.append(table)
    kind: Literal["logistic", "regression"] = (
        "logistic" if task == "classification" else "regression"
    )
    return LinearSpec(kind=kind, intercept=[float(v) for v in intercept], weights=weights)


def onnx_bytes(estimator: object, features: Sequence[Feature], task: Task) -> bytes:
    """Convert an estimator to ONNX with one input per feature (or one numeric tensor)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = estimator.steps[0][1] if isinstance(estimator, Pipeline) else None
    if isinstance(first, ColumnTransformer):
        inputs = [
            (
                f.column,
                StringTensorType([None, 1]) if f.type == "category" else FloatTensorType([None, 1]),
            )
            for f in features
        ]
    elif any(f.type == "category" for f in features):
        raise TrainingError(
            "cannot convert to ONNX: text features need a pipeline that starts with a"
            " ColumnTransformer selecting columns by name"
        )
    else:
        inputs = [("input", FloatTensorType([None, len(features)]))]
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    options = {id(final): {"zipmap": False}} if task == "classification" else None
    try:
        graph = convert_sklearn(
            estimator, initial_types=inputs, options=options, target_opset=ONNX_OPSET
        )
    except Exception as exc:  # skl2onnx raises many untyped errors for unsupported models
        raise TrainingError(
            f"cannot convert {type(final).__name__} to ONNX ({type(exc).__name__}: {exc})"[:400]
        ) from exc
    data: bytes = graph.SerializeToString()
    return data


def skops_bytes(estimator: object) -> bytes:
    """Serialize an estimator with skops; refuse one that needs types outside the trust list."""
    import skops.io as sio

    data: bytes = sio.dumps(estimator)
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        raise TrainingError(
            f"{SKOPS_FILE}: the estimator holds types outside the trusted list"
            f" ({', '.join(sorted(untrusted))[:300]}); modelapi cannot store it safely"
        )
    return data


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
    classes: Sequence[object] | None,
    X_check: pd.DataFrame,
) -> Artifacts:
    """Export the serving artifact and model.skops, each checked against X_check."""
    if len(X_check) == 0:
        raise TrainingError("no rows to check the exported model against; use more data")
    rows = frame_rows(X_check, features)
    spec = linear_spec(estimator, features, task)
    files: dict[str, bytes] = {}
    if spec is not None:
        import msgspec

        data = msgspec.json.encode(spec)
        model: Model = LinearModel.from_bytes(data, classes)
        check = _compare(LINEAR_FILE, model, estimator, X_check, rows, task, LINEAR_TOLERANCE)
        serving = LINEAR_FILE
    else:
        data = onnx_bytes(estimator, features, task)
        model = OnnxModel(data, features=features, task=task, classes=classes)
        check = _compare(ONNX_FILE, model, estimator, X_check, rows, task, ONNX_TOLERANCE)
        serving = ONNX_FILE
    files[serving] = data
    files[SKOPS_FILE] = skops_bytes(estimator)
    return Artifacts(serving=serving, files=files, check=check)
