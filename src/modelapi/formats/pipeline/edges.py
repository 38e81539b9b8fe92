"""Input values on and beside a model's tree thresholds, for the check at training time.

A tree's threshold is on the column it reads, which may be an input feature scaled by
affine steps; those are undone to find the input value that lands on it. For float32 trees
the values are the float32 boundary and the float64 on each side of it, so the check sees
the rounding rule at work. Columns made by an encoder or an indicator have no single input
value behind them and give none.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from modelapi.formats.pipeline.compiler import sources
from modelapi.formats.pipeline.model import PipelineModel
from modelapi.formats.pipeline.spec import Affine, Impute, Select, Standardize, Trees
from modelapi.formats.pipeline.tree_code import tree_thresholds
from modelapi.formats.pipeline.validation import input_width

__all__ = ["edge_values"]

# (input feature, the function from the column's value back to the feature's)
_Origin = tuple[int, Callable[[float], float]] | None


def _identity(value: float) -> float:
    return value


def _origins(model: PipelineModel) -> list[_Origin]:
    spec = model.spec
    origins: list[_Origin] = [
        (i, _identity) if kind == "number" else None for i, kind in enumerate(spec.inputs)
    ]
    for step in spec.steps:
        width = input_width(step)
        group = origins[step.at : step.at + width]
        made: list[_Origin] = []
        for out, source in enumerate(sources(step)):
            origin = group[source]
            if isinstance(step, Select) or (isinstance(step, Impute) and out < width):
                made.append(origin)
            elif isinstance(step, (Standardize, Affine)) and origin is not None:
                made.append(_undone(step, source, origin))
            else:
                made.append(None)
        origins = origins[: step.at] + made + origins[step.at + width :]
    return origins


def _undone(
    step: Standardize | Affine, column: int, origin: tuple[int, Callable[[float], float]]
) -> _Origin:
    feature, back = origin
    if isinstance(step, Standardize):
        a, b = step.subtract[column], step.divide[column]
        return feature, lambda y: back(y * b + a)
    m, c = step.multiply[column], step.add[column]
    if m == 0.0:
        return None
    return feature, lambda y: back((y - c) / m)


def edge_values(model: PipelineModel, per_feature: int = 48) -> dict[int, list[float]]:
    """For each input feature, values at and just above up to `per_feature` thresholds."""
    trees = model.spec.model
    if not isinstance(trees, Trees):
        return {}
    origins = _origins(model)
    found: dict[int, set[float]] = {}
    for tree in trees.trees:
        effective = tree_thresholds(trees, tree)
        categorical = set(tree.category_nodes)
        for node, column in enumerate(tree.feature):
            origin = origins[column] if column >= 0 and node not in categorical else None
            if origin is None:
                continue
            feature, back = origin
            values = found.setdefault(feature, set())
            values.update(back(t) for t in (tree.threshold[node], effective[node]))
    picked: dict[int, list[float]] = {}
    for feature, anchors in found.items():
        ordered = sorted(v for v in anchors if math.isfinite(v))
        step = max(1, len(ordered) // per_feature)
        # Each value and the next float above it: one goes left, the other right.
        picked[feature] = [
            value
            for anchor in ordered[::step][:per_feature]
            for value in (anchor, math.nextafter(anchor, math.inf))
            if math.isfinite(value)
        ]
    return picked
