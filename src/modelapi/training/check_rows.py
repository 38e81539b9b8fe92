"""The rows an exported model is checked on: the held-out rows and rows made to hit edge rules.

Beside the held-out rows: each category of the feature table; each feature missing in turn;
an unseen category for each text feature; numbers far outside the training range; and, from
the exported model itself, values on and just beside its tree thresholds. scikit-learn
answers each group or refuses it (a model without an imputer refuses missing values): a
refused group is left out, and a feature accepts missing values or unknown categories in
the manifest exactly when scikit-learn answered its group and the model agreed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelapi.bundle import Task
from modelapi.schema import Feature, Row

__all__ = [
    "CATEGORY",
    "EDGE",
    "HELD_OUT",
    "MISSING",
    "RANGE",
    "UNKNOWN",
    "Answers",
    "Group",
    "ask",
    "category_groups",
    "edge_groups",
    "frame_rows",
    "missing_groups",
    "model_input",
    "range_groups",
    "unknown_groups",
]

HELD_OUT = "held-out"
CATEGORY = "category"
MISSING = "missing value"
UNKNOWN = "unseen category"
RANGE = "out of range"
EDGE = "threshold"
_BASE_ROWS = 16
_UNSEEN = "modelapi-unseen-category"


@dataclass(frozen=True)
class Answers:
    """scikit-learn's answers for a group: labels or values, and class probabilities."""

    predicted: list[object]
    proba: np.ndarray | None


@dataclass(frozen=True)
class Group:
    """Check rows of one kind (about one feature, or None), as sklearn and the model see them."""

    kind: str
    feature: int | None
    frame: pd.DataFrame

    def rows(self, features: Sequence[Feature]) -> list[Row]:
        """The rows as the feature table passes them to a model."""
        return frame_rows(self.frame, features)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def frame_rows(X: pd.DataFrame, features: Sequence[Feature]) -> list[Row]:
    """Rows as the service passes them to a model: floats, category strings, None if missing."""
    columns: list[list[float | str | None]] = []
    for feature in features:
        values = X[feature.column].tolist()
        if feature.type == "category":
            columns.append([None if _is_missing(v) else str(v) for v in values])
        else:
            numbers = X[feature.column].to_numpy(dtype=float, na_value=np.nan).tolist()
            columns.append([None if math.isnan(v) else v for v in numbers])
    return [list(row) for row in zip(*columns, strict=True)]


def model_input(estimator: object, X: pd.DataFrame) -> object:
    """What the estimator predicts from: the frame if it was fitted with names, else an array."""
    if hasattr(estimator, "feature_names_in_"):
        return X
    return X.to_numpy(dtype=float, na_value=np.nan)


def ask(estimator: object, frame: pd.DataFrame, task: Task) -> Answers | None:
    """scikit-learn's answers for these rows, or None when it refuses them or answers NaN."""
    given = model_input(estimator, frame)
    try:
        # Unseen categories make some encoders warn; the answer is what is compared.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predicted = list(estimator.predict(given))  # type: ignore[attr-defined]
            proba = (
                np.asarray(estimator.predict_proba(given), dtype=np.float64)  # type: ignore[attr-defined]
                if task == "classification"
                else None
            )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    if proba is not None and not np.isfinite(proba).all():
        return None
    if task == "regression" and not np.isfinite(np.asarray(predicted, dtype=np.float64)).all():
        return None
    return Answers(predicted, proba)


def _base(X: pd.DataFrame) -> pd.DataFrame:
    return X.iloc[: min(len(X), _BASE_ROWS)].reset_index(drop=True)


def _with(base: pd.DataFrame, feature: Feature, values: Sequence[object]) -> pd.DataFrame:
    """Rows of `base` (cycled) with the feature's column set to each of `values`."""
    rows = base.iloc[[i % len(base) for i in range(len(values))]].reset_index(drop=True)
    if feature.type == "category":
        # A missing text cell is NaN, as pandas reads an empty CSV cell: scikit-learn's
        # imputers take NaN as missing in a text column, but not None.
        cells = [np.nan if v is None else v for v in values]
        rows[feature.column] = pd.Series(cells, dtype=object)
    else:
        rows[feature.column] = pd.Series(
            [np.nan if v is None else v for v in values], dtype=np.float64
        )
    return rows


def category_groups(X: pd.DataFrame, features: Sequence[Feature]) -> list[Group]:
    """Each category of each text feature, at least once."""
    base = _base(X)
    return [
        Group(CATEGORY, i, _with(base, f, list(f.categories)))
        for i, f in enumerate(features)
        if f.type == "category" and f.categories
    ]


def missing_groups(X: pd.DataFrame, features: Sequence[Feature]) -> list[Group]:
    """The base rows with one feature missing, for each feature."""
    base = _base(X)
    return [Group(MISSING, i, _with(base, f, [None] * len(base))) for i, f in enumerate(features)]


def all_missing_group(X: pd.DataFrame, features: Sequence[Feature], which: set[int]) -> Group:
    """The base rows with every feature in `which` missing at once."""
    rows = _base(X)
    for index in sorted(which):
        rows = _with(rows, features[index], [None] * len(rows))
    return Group(MISSING, None, rows)


def unknown_groups(X: pd.DataFrame, features: Sequence[Feature]) -> list[Group]:
    """The base rows with a category the feature table does not list, for each text feature."""
    base = _base(X)
    groups = []
    for index, feature in enumerate(features):
        if feature.type != "category":
            continue
        unseen = _UNSEEN
        while unseen in (feature.categories or ()):
            unseen += "-"
        groups.append(Group(UNKNOWN, index, _with(base, feature, [unseen] * len(base))))
    return groups


def _whole(feature: Feature) -> bool:
    return feature.type in ("integer", "boolean")


def range_groups(X: pd.DataFrame, features: Sequence[Feature]) -> list[Group]:
    """Numbers well below and above each numeric feature's training range."""
    base = _base(X)
    groups = []
    for index, feature in enumerate(features):
        if feature.type in ("category", "boolean") or feature.min is None or feature.max is None:
            continue
        span = feature.max - feature.min + 1.0
        values = [feature.min - span, feature.max + span, feature.min - 1e3 * span]
        values.append(feature.max + 1e3 * span)
        if _whole(feature):
            values = [float(math.floor(v)) for v in values]
        groups.append(Group(RANGE, index, _with(base, feature, values)))
    return groups


def edge_groups(
    X: pd.DataFrame, features: Sequence[Feature], edges: dict[int, list[float]]
) -> list[Group]:
    """Rows with a feature on, or next to, each of the model's thresholds."""
    base = _base(X)
    groups = []
    for index, values in sorted(edges.items()):
        feature = features[index]
        if feature.type == "category":
            continue
        if _whole(feature):
            values = sorted({float(f(v)) for v in values for f in (math.floor, math.ceil)})
        if feature.type == "boolean":
            values = [v for v in values if v in (0.0, 1.0)]
        if values:
            groups.append(Group(EDGE, index, _with(base, feature, values)))
    return groups
