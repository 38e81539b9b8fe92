"""numpy evaluation of a `pipeline.json` model, a block of rows at a time (numeric inputs).

Used where numpy is installed: batch bodies (`PipelineModel.predict` on many rows) and
`modelapi predict`'s block path. The steps are the same float64 operations, column by column,
as the compiled code's; the linear sums go left to right as they do there; so the model's
outputs are the same floats. Trees are walked level by level for a pass of rows, one tree after
another: each node is one record (its first child, whose sibling follows it, and the column it
reads) and a threshold, and a row moves to the first child plus `value > threshold`. A node
whose missing values go right reads the negated column against the negated threshold (made
strict), so NaN, which fails every comparison, goes to the first child either way. A leaf
points at itself with threshold +inf. Float32 trees compare the input rounded to float32 with
the largest float32 not above each threshold, which is the same test.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelapi.formats.base import Prediction
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
from modelapi.formats.pipeline.thresholds import float32_floor
from modelapi.formats.pipeline.tree_code import leaf_values, tree_thresholds
from modelapi.formats.pipeline.validation import column_width, encoder_columns, input_width
from modelapi.schema import Row

if TYPE_CHECKING:
    from modelapi.formats.pipeline.model import PipelineModel

__all__ = ["BlockEvaluator", "evaluator_for"]

# Rows per pass and trees per numpy call: the walk stays in cache, and each call does enough
# work that its overhead (and the GIL it hands back and takes again) does not count.
_ROWS_PER_PASS = 8_192
_TREES_PER_CALL = 8
_MISSING_CODE = 256  # category codes are 0..255; anything else goes the missing way


def evaluator_for(model: PipelineModel) -> BlockEvaluator | None:
    """The numpy evaluator of a model, or None without numpy or with text inputs."""
    if "text" in model.spec.inputs:
        return None
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:
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
        self._trees = _Forest(numpy, final) if isinstance(final, Trees) else None

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


class _Forest:
    """All the trees of a model laid out for the level-by-level walk."""

    def __init__(self, np: Any, model: Trees) -> None:
        self._np = np
        self._model = model
        self._float32 = model.compare == "float32"
        width = 1 + max(f for tree in model.trees for f in tree.feature)
        self._width = width
        self._shift = (2 * width).bit_length()
        records: list[int] = []
        thresholds: list[float] = []
        values: list[tuple[int, tuple[float, ...]]] = []
        roots: list[int] = []
        categories: list[tuple[int, list[bool]]] = []
        depths: list[int] = []
        self._outputs: list[tuple[int, int]] = []
        for tree in model.trees:
            roots.append(len(records))
            self._outputs.append((tree.output, len(tree.values[0])))
            depths.append(self._lay_out(tree, records, thresholds, values, categories))
        kind = np.float32 if self._float32 else np.float64
        self._records = np.asarray(records, dtype=np.intp)
        self._thresholds = np.asarray(thresholds, dtype=kind)
        width_out = max(w for _, w in self._outputs)
        table = np.zeros((width_out, len(records)))
        for slot, leaf in values:
            table[: len(leaf), slot] = leaf
        # One contiguous column per leaf value: a plain take per tree and output.
        self._values = [np.ascontiguousarray(row) for row in table]
        self._roots = np.asarray(roots, dtype=np.intp)
        self._depths = np.asarray(depths, dtype=np.intp)
        self._category_slots = np.asarray([slot for slot, _ in categories], dtype=np.intp)
        self._is_category = np.zeros(len(records), dtype=bool)
        self._is_category[self._category_slots] = True
        self._category_row = np.zeros(len(records), dtype=np.intp)
        self._category_row[self._category_slots] = np.arange(len(categories))
        self._goes_second = np.asarray([row for _, row in categories], dtype=bool).reshape(
            len(categories), _MISSING_CODE + 1
        )

    def _lay_out(
        self,
        tree: Any,
        records: list[int],
        thresholds: list[float],
        values: list[tuple[int, tuple[float, ...]]],
        categories: list[tuple[int, list[bool]]],
    ) -> int:
        """Append one tree, breadth first, each node's two children side by side."""
        model, shift, width = self._model, self._shift, self._width
        effective = tree_thresholds(model, tree)
        leaves = dict(
            zip(
                [n for n, c in enumerate(tree.left) if c == -1],
                leaf_values(model, tree),
                strict=True,
            )
        )
        splits = {
            node: (set(left), set(right))
            for node, left, right in zip(
                tree.category_nodes, tree.left_codes, tree.right_codes, strict=True
            )
        }
        root = len(records)
        queue = [(0, root, 0)]
        records.append(0)
        thresholds.append(0.0)
        depth = 0
        for node, slot, level in queue:
            depth = max(depth, level)
            if tree.left[node] == -1:
                records[slot] = slot << shift
                thresholds[slot] = math.inf
                values.append((slot, leaves[node]))
                continue
            first = len(records)
            records.extend((0, 0))
            thresholds.extend((0.0, 0.0))
            feature, left, right = tree.feature[node], tree.left[node], tree.right[node]
            goes_left = tree.missing_left[node]
            if node in splits:
                # The numeric test fails (NaN threshold); the table decides, by category code.
                to_left, to_right = splits[node]
                row = [
                    c not in to_left if goes_left is False else c in to_right
                    for c in range(_MISSING_CODE)
                ]
                row.append(not goes_left)
                categories.append((slot, row))
                records[slot] = first << shift | feature
                thresholds[slot] = math.nan
                queue += [(left, first, level + 1), (right, first + 1, level + 1)]
                continue
            threshold = float32_floor(tree.threshold[node]) if self._float32 else effective[node]
            if goes_left:
                records[slot] = first << shift | feature
                thresholds[slot] = threshold
                queue += [(left, first, level + 1), (right, first + 1, level + 1)]
            else:
                # Right is first; left is taken when -x >= -t, that is -x > (-t just below).
                records[slot] = first << shift | (feature + width)
                thresholds[slot] = self._below(-threshold)
                queue += [(right, first, level + 1), (left, first + 1, level + 1)]
        return depth

    def _below(self, value: float) -> float:
        np = self._np
        if self._float32:
            with np.errstate(over="ignore"):  # below the largest float32 is -inf: still exact
                return float(np.nextafter(np.float32(value), np.float32(-np.inf)))
        return math.nextafter(value, -math.inf)

    def sums(self, values: Any) -> Any:
        """Each row's sums over the trees (rows x outputs), init first, in tree order."""
        np = self._np
        out = np.empty((values.shape[0], len(self._model.init)))
        for start in range(0, values.shape[0], _ROWS_PER_PASS):
            out[start : start + _ROWS_PER_PASS] = self._block(
                values[start : start + _ROWS_PER_PASS]
            )
        return out

    def _block(self, values: Any) -> Any:
        """The sums for a pass of rows: a few trees at a time, each walked level by level."""
        np = self._np
        n_rows, width = values.shape[0], self._width
        kind = np.float32 if self._float32 else np.float64
        both = np.empty((n_rows, 2 * width), dtype=kind)
        both[:, :width] = values[:, :width]
        np.negative(both[:, :width], out=both[:, width:])
        flat = both.ravel()
        shape = (_TREES_PER_CALL, n_rows)
        base = np.broadcast_to(np.arange(n_rows, dtype=np.intp) * (2 * width), shape)
        state = np.empty(shape, dtype=np.intp)
        record = np.empty_like(state)
        column = np.empty_like(state)
        value = np.empty(shape, dtype=kind)
        threshold = np.empty(shape, dtype=kind)
        second = np.empty(shape, dtype=bool)
        leaf_value = np.empty(n_rows)
        mask = (1 << self._shift) - 1
        sums = np.empty((n_rows, len(self._model.init)))
        sums[:] = self._model.init
        records, thresholds = self._records, self._thresholds
        has_categories = bool(self._category_slots.size)
        roots = self._roots
        for first in range(0, len(roots), _TREES_PER_CALL):
            group = slice(first, first + _TREES_PER_CALL)
            n_trees = len(roots[group])
            # Views of the trees' rows: a few trees per numpy call, fewer calls per row.
            at, rec, col = state[:n_trees], record[:n_trees], column[:n_trees]
            val, thr, sec = value[:n_trees], threshold[:n_trees], second[:n_trees]
            at[:] = roots[group, None]
            for _ in range(max(self._depths[group])):
                np.take(records, at, out=rec, mode="clip")
                np.take(thresholds, at, out=thr, mode="clip")
                np.bitwise_and(rec, mask, out=col)
                col += base[:n_trees]
                np.take(flat, col, out=val, mode="clip")
                np.greater(val, thr, out=sec)
                if has_categories:
                    self._categories(at, val, sec)
                np.right_shift(rec, self._shift, out=at)
                at += sec
            # Tree by tree, as scikit-learn adds them up.
            for tree in range(n_trees):
                output, leaf_width = self._outputs[first + tree]
                for j in range(leaf_width):
                    np.take(self._values[j], at[tree], out=leaf_value, mode="clip")
                    sums[:, output + j] += leaf_value
        if self._model.average:
            sums /= len(self._depths)
        return sums

    def _categories(self, state: Any, value: Any, second: Any) -> None:
        """Where a row is at a categorical split, its category code decides the side."""
        np = self._np
        state, value, flat_second = state.ravel(), value.ravel(), second.reshape(-1)
        at = np.flatnonzero(self._is_category.take(state))
        if not at.size:
            return
        codes = value[at]
        whole = (codes >= 0) & (codes < _MISSING_CODE) & (codes == np.floor(codes))
        index = np.where(whole, np.nan_to_num(codes), _MISSING_CODE).astype(np.intp)
        flat_second[at] = self._goes_second[self._category_row.take(state[at]), index]
