"""What a fitted model weighs: feature importances (trees) or coefficients (linear models).

Each transformed column is traced back to the feature it came from (a one-hot column to its
category feature, a missing-value indicator to `<feature> is missing`), so the report names
features and never a category value. Trees: importances summed per feature. Linear models:
the coefficient of a numeric feature; for a category (several columns) or a multiclass model
(one row per class), the coefficient largest in size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modelapi.schema import Feature

__all__ = ["Weights", "model_weights"]

_INDICATOR = "missingindicator_"


@dataclass(frozen=True, slots=True)
class Weights:
    """A table of what the model weighs per feature, largest first."""

    title: str
    kind: str
    note: str
    values: tuple[tuple[str, float], ...]


def model_weights(fitted: object, features: Sequence[Feature]) -> Weights | None:
    """The importances or coefficients of a fitted model per feature; None if it has neither."""
    from sklearn.pipeline import Pipeline

    final = fitted.steps[-1][1] if isinstance(fitted, Pipeline) else fitted
    importances = getattr(final, "feature_importances_", None)
    coef = getattr(final, "coef_", None)
    if importances is None and coef is None:
        return None
    owners = _owners(fitted, features)
    if importances is not None:
        values = np.asarray(importances, dtype=float).reshape(1, -1)
    else:
        values = np.atleast_2d(np.asarray(coef, dtype=float))
    if owners is None or len(owners) != values.shape[1]:
        return None
    by_owner: dict[str, list[float]] = {}
    for index, owner in enumerate(owners):
        by_owner.setdefault(owner, []).extend(values[:, index].tolist())
    if importances is not None:
        totals = {owner: float(sum(found)) for owner, found in by_owner.items()}
        title, kind = "Feature importances", "importance"
        note = "The model's feature_importances_, summed over each feature's columns."
    else:
        totals = {owner: max(found, key=abs) for owner, found in by_owner.items()}
        title, kind = "Coefficients", "coefficient"
        note = (
            "The model's coef_ per feature; for a category (one column per level) or a"
            " multiclass model (one row per class), the one largest in size."
        )
        if _is_scaled(fitted):
            note += " Numeric columns were scaled: a coefficient is per standard deviation."
    ordered = sorted(totals.items(), key=lambda item: -abs(item[1]))
    return Weights(title, kind, note, tuple(ordered))


def _owners(fitted: object, features: Sequence[Feature]) -> list[str] | None:
    """The feature each column the final step sees came from, or None if unknown."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = fitted.steps if isinstance(fitted, Pipeline) else []
    if len(steps) != 2 or not isinstance(steps[0][1], ColumnTransformer):
        return [f.column for f in features] if len(steps) <= 1 else None
    columns = steps[0][1]
    try:
        names = [str(n) for n in columns.get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        return None
    by_branch: dict[str, list[str]] = {}
    for branch, _, selected in columns.transformers_:
        if isinstance(selected, str):
            selected = [selected]
        by_branch[branch] = [
            features[int(c)].column if isinstance(c, (int, np.integer)) else str(c)
            for c in selected
        ]
    owners = []
    for name in names:
        branch, _, rest = name.partition("__")
        owner = _owner(rest, by_branch.get(branch, []))
        if owner is None:
            return None
        owners.append(owner)
    return owners


def _owner(name: str, columns: Sequence[str]) -> str | None:
    if name in columns:
        return name
    if name.startswith(_INDICATOR) and name[len(_INDICATOR) :] in columns:
        return f"{name[len(_INDICATOR) :]} is missing"
    # A one-hot column is `<column>_<category>`: the longest column name it starts with.
    found = [c for c in columns if name.startswith(c + "_")]
    return max(found, key=len) if found else None


def _is_scaled(fitted: object) -> bool:
    from sklearn.preprocessing import StandardScaler

    seen: list[object] = [fitted]
    while seen:
        step = seen.pop()
        if isinstance(step, StandardScaler):
            return True
        seen.extend(s for _, s in getattr(step, "steps", []))
        seen.extend(t for _, t, _ in getattr(step, "transformers_", []))
    return False
