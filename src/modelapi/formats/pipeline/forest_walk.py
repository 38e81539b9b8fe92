"""The numpy walk of a sum of trees: every (row, tree) pair one level down per step.

Each node is one int64 record: `first << S | key << C | column`, where `key` is the node's
threshold as an unsigned 32-bit integer in the same order as the numbers it stands for, and
`column` the input column it reads. A row's value in that column is turned into a key the same
way and stored shifted left by C, so one subtraction and one shift give the next node:
`(record - value) >> S` is `first` when `value <= key`, and `first - 1` when `value > key`.
The node a split sends its "greater" side to therefore sits just below `first`. A step is two
gathers (the record, then the value) and four integer operations on whole arrays, with no
boolean taken back into an index (that cast cost more than a gather).

The keys keep the exact rules of the compiled code. A float32 model compares float32 values
with the largest float32 not above each threshold: its key is the float32's bits made
monotonic (-0.0 counted as +0.0). A float64 model's key is a rank: a threshold's index among
the sorted thresholds of its column, a value's the number of those thresholds below it, so
`value > threshold` holds exactly when the value's rank is past the threshold's. A node whose
missing values go right reads the negated column against the negated threshold made strict;
NaN gets key 0, which is past no threshold, so it goes to `first` either way. A leaf points at
itself with the largest key. A categorical split gets the largest key too; after each step the
pairs at such a split are sent by their category code instead.

Leaf values are added tree by tree, init first, as scikit-learn adds them, so the sums are
the same floats as the compiled code's.
"""

from __future__ import annotations

import math
from typing import Any

from modelapi.formats.pipeline.spec import Tree, Trees
from modelapi.formats.pipeline.thresholds import float32_floor
from modelapi.formats.pipeline.tree_code import leaf_values, tree_thresholds

__all__ = ["MAX_WALKED_NODES", "ForestWalk"]

# A record's `first` has 30 bits at most (with the columns in a table of their own).
MAX_WALKED_NODES = 1 << 30

# Rows per pass and trees per numpy call: each call's arrays (trees x rows int64) stay in the
# core's cache, and are long enough that the call's own overhead does not count.
_ROWS_PER_PASS = 2_048
_TREES_PER_CALL = 16
_MISSING_CODE = 256  # category codes are 0..255; anything else goes the missing way
_KEY_BITS = 32
_LEAF_KEY = (1 << _KEY_BITS) - 1  # no value's key is past it
_FIRST_BITS = 63 - _KEY_BITS - 1  # for `first` and the column, in a non-negative int64


class ForestWalk:
    """All the trees of a model laid out for the level-by-level walk."""

    def __init__(self, np: Any, model: Trees) -> None:
        self._np = np
        self._model = model
        self._float32 = model.compare == "float32"
        # At least one column, so that a forest of leaves alone has one to read (and ignore).
        width = max(1, 1 + max(f for tree in model.trees for f in tree.feature))
        self._width = width
        n_columns = 2 * width
        self._column_bits = (n_columns - 1).bit_length()
        nodes = _Layout(np, model, width)
        for tree in model.trees:
            nodes.add(tree)
        self._n_slots = len(nodes.first)
        # A record must hold first, the key and the column: when the slots are too many for
        # that, the columns go in a table of their own (one more gather per step).
        self._wide = self._n_slots >= 1 << max(0, _FIRST_BITS - self._column_bits)
        if self._wide:
            self._column_bits = 0
        self._shift = _KEY_BITS + 1 + self._column_bits
        self._ranks: list[Any] = []
        keys = self._threshold_keys(nodes)
        first = np.asarray(nodes.first, dtype=np.int64)
        columns = np.asarray(nodes.column, dtype=np.int64)
        self._records = (first << self._shift) | (keys << self._column_bits)
        if self._wide:
            self._columns = columns.astype(np.intp)
        else:
            self._records |= columns
        self._roots = np.asarray(nodes.roots, dtype=np.intp)
        self._root_columns = columns[self._roots].astype(np.intp)
        self._depths = nodes.depths
        self._outputs = [(tree.output, len(tree.values[0])) for tree in model.trees]
        self._n_outputs = len(model.init)
        table = np.zeros((self._n_slots, max(w for _, w in self._outputs)))
        for slot, leaf in nodes.leaves:
            table[slot, : len(leaf)] = leaf
        self._leaf_values = table
        categories = nodes.categories
        self._is_category = np.zeros(self._n_slots, dtype=bool)
        self._category_row = np.zeros(self._n_slots, dtype=np.intp)
        slots = np.asarray([slot for slot, _ in categories], dtype=np.intp)
        self._is_category[slots] = True
        self._category_row[slots] = np.arange(len(categories))
        self._goes_greater = np.asarray([row for _, row in categories], dtype=bool).reshape(
            len(categories), _MISSING_CODE + 1
        )

    def _threshold_keys(self, nodes: _Layout) -> Any:
        np = self._np
        keys = np.full(self._n_slots, _LEAF_KEY, dtype=np.int64)
        split = np.asarray(nodes.is_split, dtype=bool)
        thresholds = np.asarray(nodes.threshold, dtype=np.float64)
        if self._float32:
            keys[split] = _float32_keys(np, thresholds[split].astype(np.float32))
            return keys
        # float64: ranks among the column's sorted thresholds.
        columns = np.asarray(nodes.column, dtype=np.int64)
        for column in range(2 * self._width):
            here = split & (columns == column)
            ordered = np.unique(thresholds[here] + 0.0)
            self._ranks.append(ordered)
            keys[here] = np.searchsorted(ordered, thresholds[here] + 0.0)
        return keys

    def sums(self, values: Any) -> Any:
        """Each row's sums over the trees (rows x outputs), init first, in tree order."""
        np = self._np
        out = np.empty((values.shape[0], self._n_outputs))
        for start in range(0, values.shape[0], _ROWS_PER_PASS):
            out[start : start + _ROWS_PER_PASS] = self._block(
                values[start : start + _ROWS_PER_PASS]
            )
        return out

    def _value_keys(self, both: Any) -> Any:
        """The key of every value of a pass (rows x columns), shifted into place."""
        np = self._np
        if self._float32:
            keys = _float32_keys(np, both)
        else:
            keys = np.empty(both.shape, dtype=np.int64)
            clean = np.where(np.isnan(both), -math.inf, both)  # NaN: past no threshold
            for column, ordered in enumerate(self._ranks):
                keys[:, column] = np.searchsorted(ordered, clean[:, column])
        if self._column_bits:
            keys <<= self._column_bits
        return keys

    def _block(self, values: Any) -> Any:
        """The sums for a pass of rows: a few trees at a time, each walked level by level."""
        np = self._np
        n_rows, width = values.shape[0], self._width
        if values.shape[1] < width:  # leaves alone: no column is read
            values = np.zeros((n_rows, width))
        both = np.empty((n_rows, 2 * width), dtype=np.float32 if self._float32 else np.float64)
        both[:, :width] = values[:, :width]
        np.negative(both[:, :width], out=both[:, width:])
        keys = self._value_keys(both)
        has_categories = bool(self._goes_greater.size)
        flat, by_column = keys.ravel(), np.ascontiguousarray(keys.T)
        raw = both.ravel()
        if has_categories and self._float32:
            # Category codes are read as given: float32 rounding is for the thresholds.
            raw = np.empty(both.shape)
            raw[:, :width] = values[:, :width]
            raw = raw.ravel()
        shape = (_TREES_PER_CALL, n_rows)
        base = np.empty(shape, dtype=np.intp)
        base[:] = np.arange(n_rows, dtype=np.intp) * (2 * width)
        at, after = np.empty(shape, dtype=np.intp), np.empty(shape, dtype=np.intp)
        record, column, value = (np.empty(shape, dtype=np.int64) for _ in range(3))
        sums = np.empty((n_rows, self._n_outputs))
        sums[:] = self._model.init
        take_record = self._records.take
        take_value = flat.take
        take_column = self._columns.take if self._wide else None
        subtract, right_shift, add, bitwise_and = (
            np.subtract,
            np.right_shift,
            np.add,
            np.bitwise_and,
        )
        shift, mask = self._shift, (1 << self._column_bits) - 1
        roots = self._roots
        for first in range(0, len(roots), _TREES_PER_CALL):
            group = slice(first, first + _TREES_PER_CALL)
            n_trees = len(roots[group])
            a, b = at[:n_trees], after[:n_trees]
            rec, col, val, row = record[:n_trees], column[:n_trees], value[:n_trees], base[:n_trees]
            # The first level reads one column per tree: whole rows of the transposed keys.
            root_records = self._records[roots[group], None]
            if has_categories:
                a[:] = roots[group, None]
                rec[:] = root_records
                col[:] = self._root_columns[group, None]
                col += row
                subtract(rec, by_column.take(self._root_columns[group], axis=0), out=b)
                right_shift(b, shift, out=b)
                self._categories(a, b, rec, col, raw)
                a, b = b, a
            else:
                subtract(root_records, by_column.take(self._root_columns[group], axis=0), out=a)
                right_shift(a, shift, out=a)
            for _ in range(max(self._depths[group], default=0) - 1):
                take_record(a, out=rec, mode="clip")
                if take_column is None:
                    bitwise_and(rec, mask, out=col)
                else:
                    take_column(a, out=col, mode="clip")
                add(col, row, out=col)
                take_value(col, out=val, mode="clip")
                subtract(rec, val, out=b)
                right_shift(b, shift, out=b)
                if has_categories:
                    self._categories(a, b, rec, col, raw)
                a, b = b, a
            # Tree by tree, as scikit-learn adds them up.
            leaves = self._leaf_values.take(a, axis=0, mode="clip")
            for tree in range(n_trees):
                output, leaf_width = self._outputs[first + tree]
                sums[:, output : output + leaf_width] += leaves[tree, :, :leaf_width]
        if self._model.average:
            sums /= len(self._depths)
        return sums

    def _categories(self, at: Any, after: Any, record: Any, column: Any, raw: Any) -> None:
        """Where a pair is at a categorical split, its category code decides the side."""
        np = self._np
        state, flat_after = at.ravel(), after.reshape(-1)
        where = np.flatnonzero(self._is_category.take(state))
        if not where.size:
            return
        codes = raw.take(column.ravel()[where])
        whole = (codes >= 0) & (codes < _MISSING_CODE) & (codes == np.floor(codes))
        index = np.where(whole, np.nan_to_num(codes), _MISSING_CODE).astype(np.intp)
        greater = self._goes_greater[self._category_row.take(state[where]), index]
        flat_after[where] = (record.ravel()[where] >> self._shift) - greater


def _float32_keys(np: Any, values: Any) -> Any:
    """float32 values as int64 keys in [0, 2**32) in the same order; NaN -> 0, -0.0 as +0.0."""
    bits = (values + np.float32(0.0)).view(np.uint32).astype(np.int64)
    negative = bits >> 31 == 1
    keys = np.where(negative, bits ^ 0xFFFFFFFF, bits | 0x80000000)
    keys[np.isnan(values)] = 0
    return keys


class _Layout:
    """Slots of every tree, breadth first; a split's two children side by side, its
    "greater" side first, `first` (the side a value not past the threshold takes) second."""

    def __init__(self, np: Any, model: Trees, width: int) -> None:
        self._np = np
        self._model = model
        self._width = width
        self.first: list[int] = []
        self.column: list[int] = []
        self.threshold: list[float] = []
        self.is_split: list[bool] = []
        self.leaves: list[tuple[int, tuple[float, ...]]] = []
        self.categories: list[tuple[int, list[bool]]] = []
        self.roots: list[int] = []
        self.depths: list[int] = []

    def _slot(self) -> int:
        self.first.append(0)
        self.column.append(0)
        self.threshold.append(0.0)
        self.is_split.append(False)
        return len(self.first) - 1

    def add(self, tree: Tree) -> None:
        """Append one tree."""
        model, width = self._model, self._width
        is_float32 = model.compare == "float32"
        effective = [] if is_float32 else tree_thresholds(model, tree)
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
        root = self._slot()
        self.roots.append(root)
        queue = [(0, root, 0)]
        depth = 0
        for node, slot, level in queue:
            depth = max(depth, level)
            if tree.left[node] == -1:
                self.first[slot] = slot
                self.leaves.append((slot, leaves[node]))
                continue
            greater, first = self._slot(), self._slot()
            self.first[slot] = first
            feature, left, right = tree.feature[node], tree.left[node], tree.right[node]
            goes_left = tree.missing_left[node]
            if node in splits:
                # The category decides (after the step); the key sends no value past it.
                to_left, to_right = splits[node]
                row = [
                    c not in to_left if goes_left is False else c in to_right
                    for c in range(_MISSING_CODE)
                ]
                row.append(not goes_left)
                self.categories.append((slot, row))
                self.column[slot] = feature
                queue += [(left, first, level + 1), (right, greater, level + 1)]
                continue
            self.is_split[slot] = True
            threshold = float32_floor(tree.threshold[node]) if is_float32 else effective[node]
            if goes_left:
                self.column[slot] = feature
                self.threshold[slot] = threshold
                queue += [(left, first, level + 1), (right, greater, level + 1)]
            else:
                # Right is `first`; left is taken when -x >= -t, that is -x > (-t just below).
                self.column[slot] = feature + width
                self.threshold[slot] = _below(self._np, -threshold, is_float32)
                queue += [(right, first, level + 1), (left, greater, level + 1)]
        self.depths.append(depth)


def _below(np: Any, value: float, is_float32: bool) -> float:
    """The number just below `value`: a float32 for a float32 model (-inf below its range)."""
    if not is_float32:
        return math.nextafter(value, -math.inf)
    with np.errstate(over="ignore"):  # below the largest float32 is -inf: still exact
        return float(np.nextafter(np.float32(value), np.float32(-np.inf)))
