"""numpy evaluation of a `pipeline.json` model, a block of rows at a time (numeric inputs).

Used where numpy is installed: batch bodies (`PipelineModel.predict` on many rows) and
`modelapi predict`'s block path. The steps are the same float64 operations, column by column,
as the compiled code's; the linear sums go left to right as they do there; so the model's
outputs are the same floats. Trees are walked level by level for a pass of rows
(`modelapi.formats.pipeline.forest_walk`).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelapi.formats.base import Prediction
from modelapi.formats.pipeline.forest_walk import MAX_WALKED_NODES, ForestWalk
from modelapi.formats.pipeline.outputs import answer_function
from modelapi.formats.pipeline.spec import (
    Affine,
    Encoding,
    Impute,
    Linear,
    LookupColumn,
    Select,
    Standardize,
    Trees,
)
from modelapi.formats.pipeline.validation import column_width, encoder_columns, input_width
from modelapi.schema import Row

if TYPE_CHECKING:
    from modelapi.formats.pipeline.model import PipelineModel

__all__ = ["BlockEvaluator", "evaluator_for"]


def evaluator_for(model: PipelineModel) -> BlockEvaluator | None:
    """The numpy evaluator of a model, or None without numpy, with text inputs, or for a
    forest past what the walk lays out (the compiled code answers those)."""
    final = model.spec.model
    if "text" in model.spec.inputs:
        return None
    if isinstance(final, Trees) and sum(len(t.feature) for t in final.trees) >= MAX_WALKED_NODES:
        return None
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:
        return None
    if numpy.dtype(numpy.intp).itemsize != 8:  # the walk's records are 64-bit indexes
        return None
    return BlockEvaluator(numpy, model)


class BlockEvaluator:
    """A model's outputs for a block of rows (a float64 matrix, NaN for a missing value)."""

    def __init__(self, numpy: Any, model: PipelineModel) -> None:
        self._np = numpy
        self._spec = model.spec
        self._classes = model.classes
        final = self._spec.model
        self._answer = answer_function(final.output, final.positive, model.classes)
        self._trees = ForestWalk(numpy, final) if isinstance(final, Trees) else None

    @property
    def classes(self) -> tuple[object, ...]:
        """The class labels in manifest order (empty for a regressor)."""
        return self._classes

    def outputs(self, values: Any) -> Any:
        """The model's outputs (rows x outputs) before its output rule: sums, or z."""
        np = self._np
        columns = [values[:, j] for j in range(values.shape[1])]
        with np.errstate(all="ignore"):  # overflow is an answer here; the caller checks it
            for step in self._spec.steps:
                columns = self._step(step, columns)
            model = self._spec.model
            if isinstance(model, Linear):
                return self._linear(model, columns)
            assert self._trees is not None
            return self._trees.sums(np.column_stack(columns) if columns else values[:, :0])

    def predict_rows(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict rows as `PipelineModel.predict` does, the numbers computed a block at a time."""
        values = self._np.array(rows, dtype=self._np.float64).reshape(len(rows), -1)
        answer = self._answer
        return [answer(tuple(z)) for z in self.outputs(values).tolist()]

    def columns(self, values: Any) -> tuple[Any | None, list[Any]] | None:
        """(class index per row or None, then the answer columns), or None if not finite.

        Sums and averages come from numpy as they are; an output rule through exp is applied
        row by row with the compiled code's own functions, so the digits written are the
        same whichever path a row takes.
        """
        np = self._np
        z = self.outputs(values)
        if not np.isfinite(z).all():
            return None
        rule = self._spec.model.output
        if rule == "value":
            return None, [z[:, 0]]
        if rule == "proba":
            return np.argmax(z, axis=1), list(z.T)
        answers = [self._answer(tuple(row)) for row in z.tolist()]
        if rule == "exp":
            value = np.asarray([v for v, _ in answers], dtype=np.float64)
            return (None, [value]) if np.isfinite(value).all() else None
        index: dict[object, int] = {label: i for i, label in enumerate(self._classes)}
        labels = np.asarray([index[label] for label, _ in answers], dtype=np.int64)
        probabilities = np.asarray([p for _, p in answers], dtype=np.float64)
        return labels, list(probabilities.T)

    def _step(self, step: Any, columns: list[Any]) -> list[Any]:
        np = self._np
        width = input_width(step)
        group = columns[step.at : step.at + width]
        made: list[Any]
        if isinstance(step, Select):
            made = [group[c] for c in step.columns]
        elif isinstance(step, Impute):
            marker = step.missing
            missing = [np.isnan(c) if marker is None else c == marker for c in group]
            made = [
                np.where(m, fill, c) for m, fill, c in zip(missing, step.fill, group, strict=True)
            ]
            made += [missing[i].astype(np.float64) for i in step.indicators]
        elif isinstance(step, (Standardize, Affine)):
            if isinstance(step, Standardize):
                made = [
                    (c - a) / b for c, a, b in zip(group, step.subtract, step.divide, strict=True)
                ]
            else:
                made = [c * m + a for c, m, a in zip(group, step.multiply, step.add, strict=True)]
            if step.clip is not None:
                low, high = step.clip
                made = [np.where(c < low, low, np.where(c > high, high, c)) for c in made]
        else:
            made = []
            for column, cell in zip(encoder_columns(step), group, strict=True):
                made.extend(self._encode(column, cell))
        return columns[: step.at] + made + columns[step.at + width :]

    def _encode(self, column: Encoding | LookupColumn, cell: Any) -> list[Any]:
        """A one-hot or lookup column over number keys: a sorted search, then the table."""
        np = self._np
        keys = np.asarray(column.numbers or (), dtype=np.float64)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        width = column_width(column)
        if isinstance(column, Encoding):
            table = np.asarray(column.codes, dtype=np.int64)[order].reshape(-1, 1)
            unknown = np.asarray([column.unknown])
            missing = np.asarray([column.missing])
        else:
            table = _nan_array(np, column.values, width)[order]
            unknown = _nan_array(np, [column.unknown], width)[0]
            missing = _nan_array(np, [column.missing], width)[0]
        at = np.minimum(np.searchsorted(keys, cell), max(len(keys) - 1, 0))
        found = keys[at] == cell if len(keys) else np.zeros(cell.shape, dtype=bool)
        rows = table[at] if len(keys) else np.zeros((cell.size, table.shape[1]))
        picked = np.where(found[:, None], rows, unknown)
        picked = np.where(np.isnan(cell)[:, None], missing, picked)
        if isinstance(column, Encoding):
            return [(picked[:, 0] == j).astype(np.float64) for j in range(width)]
        return [picked[:, j] for j in range(width)]

    def _linear(self, model: Linear, columns: list[Any]) -> Any:
        np = self._np
        n_rows = columns[0].shape[0] if columns else 0
        out = np.empty((n_rows, len(model.intercept)))
        for k, (weights, intercept) in enumerate(zip(model.coef, model.intercept, strict=True)):
            z = np.zeros(n_rows)
            for index, (column, w) in enumerate(zip(columns, weights, strict=True)):
                # Left to right from the first product, as the compiled sum goes.
                z = column * w if index == 0 else z + column * w
            out[:, k] = z + intercept
        return out


def _nan_array(np: Any, rows: Sequence[Sequence[float | None]], width: int) -> Any:
    return np.asarray(
        [[math.nan if v is None else v for v in row] for row in rows], dtype=np.float64
    ).reshape(-1, width)
