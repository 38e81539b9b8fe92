"""Compile a checked `pipeline.json` into one Python function that predicts a list of rows.

Every step becomes a few statements per column, every tree a nest of `if x <= t:` blocks, and
the whole is one loop over the rows, compiled once when the model loads: a row then costs no
call per step or per tree. The text is built from the checked spec alone. What goes into it:
fixed names, integer indexes and counts, and the `repr` of numbers that the checks proved to
be finite floats (a float's repr is always a plain literal such as `-1.25e-05`). Text from the
file (categories, fill values, class labels) never enters the source: it is bound by name, as
are the tables and helper functions the code calls.

Trees deeper than `MAX_DEPTH` continue in a loop over the node lists (`walk`), and trees past
a budget of `MAX_COMPILED_NODES` are walked whole, so a large model loads in bounded time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from modelapi.formats.linear import expit
from modelapi.formats.pipeline.spec import (
    Affine,
    CellKind,
    Encoding,
    Impute,
    Linear,
    LookupColumn,
    PipelineSpec,
    Select,
    Standardize,
    Step,
    Tree,
    Trees,
)
from modelapi.formats.pipeline.thresholds import float32_boundary
from modelapi.formats.pipeline.validation import (
    column_width,
    encoder_columns,
    input_width,
    onehot_width,
)

__all__ = ["MAX_COMPILED_NODES", "MAX_DEPTH", "compile_spec", "sources", "tree_thresholds"]

MAX_DEPTH = 48
MAX_COMPILED_NODES = 150_000
_NAN = math.nan
_TERMS_PER_LINE = 32


def _number(value: float) -> str:
    """A checked finite float as source text: its repr, in parentheses when negative."""
    if type(value) is not float or not math.isfinite(value):  # the checks make this unreachable
        raise ValueError("only finite floats are written into generated code")
    text = repr(value)
    return f"({text})" if text.startswith("-") else text


def tree_thresholds(model: Trees, tree: Tree) -> list[float]:
    """The thresholds to compare float64 inputs with: float32 boundaries where that applies."""
    if model.compare == "float64":
        return list(tree.threshold)
    return [float32_boundary(t) for t in tree.threshold]


def sources(step: Step) -> list[int]:
    """For each output of a step, the index (within the columns it reads) it is made from."""
    if isinstance(step, Select):
        return list(step.columns)
    if isinstance(step, Impute):
        return [*range(len(step.fill)), *step.indicators]
    if isinstance(step, (Standardize, Affine)):
        return list(range(input_width(step)))
    out: list[int] = []
    for index, column in enumerate(encoder_columns(step)):
        out.extend([index] * column_width(column))
    return out


def _needed(spec: PipelineSpec, stages: list[list[CellKind]]) -> list[set[int]]:
    """Per stage, the columns something downstream reads; only those are computed."""
    model = spec.model
    last = (
        set(range(len(stages[-1])))
        if isinstance(model, Linear)
        else {f for tree in model.trees for f in tree.feature if f >= 0}
    )
    needed = [last]
    for step in reversed(spec.steps):
        after = needed[0]
        width = input_width(step)
        made = sources(step)
        before: set[int] = set()
        for position in after:
            if position < step.at:
                before.add(position)
            elif position >= step.at + len(made):
                before.add(position - len(made) + width)
            else:
                before.add(step.at + made[position - step.at])
        needed.insert(0, before)
    return needed


class _Source:
    """The lines of the generated function and the values its names are bound to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, object] = {"NAN": _NAN}
        self._count = 0

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def bind(self, prefix: str, value: object) -> str:
        name = self.fresh(prefix)
        self.names[name] = value
        return name

    def add(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def compile_spec(
    spec: PipelineSpec, stages: list[list[CellKind]], classes: Sequence[object]
) -> Callable[[Any], Any]:
    """The function `predict(rows) -> list[Prediction]` for a checked spec."""
    out = _Source()
    needed = _needed(spec, stages)
    body = 2
    cells: list[str | None] = [f"x{i}" for i in range(len(spec.inputs))]
    out.add(0, "def predict(rows):")
    out.add(1, "answers = []")
    out.add(1, "append = answers.append")
    out.add(1, "for row in rows:")
    out.add(body, "(" + "".join(f"{c}, " for c in cells) + ") = row")
    for index, kind in enumerate(spec.inputs):
        if kind == "number" and index in needed[0]:
            out.add(body, f"if x{index} is None: x{index} = NAN")
    for step, kinds, wanted in zip(spec.steps, stages, needed[1:], strict=False):
        cells = _step(out, body, step, kinds, cells, wanted)
    final = [c if c is not None else "0.0" for c in cells]
    model = spec.model
    results = (
        _linear(out, body, model, final)
        if isinstance(model, Linear)
        else _trees(out, body, model, final)
    )
    rule: str = model.output
    positive: str = model.positive
    out.add(body, f"append({_answer(out, rule, positive, results, classes)})")
    out.add(1, "return answers")
    scope: dict[str, object] = {"__builtins__": {}, **out.names}
    exec(compile("\n".join(out.lines), "<pipeline.json>", "exec"), scope)
    function: Callable[[Any], Any] = scope["predict"]  # type: ignore[assignment]
    return function


def _step(
    out: _Source,
    depth: int,
    step: Step,
    kinds: list[CellKind],
    cells: list[str | None],
    wanted: set[int],
) -> list[str | None]:
    """Emit one step; return the variable of each column after it (None: nothing reads it)."""
    width = input_width(step)
    group = cells[step.at : step.at + width]
    group_kinds = kinds[step.at : step.at + width]
    made = sources(step)
    result: list[str | None] = [None] * len(made)
    live = [step.at + i in wanted for i in range(len(made))]
    if isinstance(step, Select):
        result = [group[c] if live[i] else None for i, c in enumerate(step.columns)]
    elif isinstance(step, Impute):
        result = _impute(out, depth, step, group, group_kinds, live)
    elif isinstance(step, (Standardize, Affine)):
        for i, cell in enumerate(group):
            if live[i] and cell is not None:
                result[i] = _scale(out, depth, step, i, cell)
    else:
        at = 0
        for column, cell, kind in zip(encoder_columns(step), group, group_kinds, strict=True):
            n_out = column_width(column)
            if cell is not None and any(live[at : at + n_out]):
                result[at : at + n_out] = _encode(out, depth, column, cell, kind, live[at:])
            at += n_out
    return cells[: step.at] + result + cells[step.at + width :]


def _is_missing(out: _Source, kind: CellKind, marker: float | str | None, cell: str) -> str:
    if marker is None:
        return f"{cell} is None" if kind == "text" else f"{cell} != {cell}"
    value = out.bind("m", marker) if isinstance(marker, str) else _number(marker)
    return f"{cell} == {value}"


def _impute(
    out: _Source,
    depth: int,
    step: Impute,
    group: list[str | None],
    kinds: list[CellKind],
    live: list[bool],
) -> list[str | None]:
    result: list[str | None] = []
    for i, (cell, kind, fill) in enumerate(zip(group, kinds, step.fill, strict=True)):
        if not live[i] or cell is None:
            result.append(None)
            continue
        value = out.bind("s", fill) if isinstance(fill, str) else _number(fill)
        name = out.fresh("v")
        out.add(
            depth, f"{name} = {value} if {_is_missing(out, kind, step.missing, cell)} else {cell}"
        )
        result.append(name)
    for j, index in enumerate(step.indicators):
        cell = group[index]
        if not live[len(group) + j] or cell is None:
            result.append(None)
            continue
        name = out.fresh("v")
        missing = _is_missing(out, kinds[index], step.missing, cell)
        out.add(depth, f"{name} = 1.0 if {missing} else 0.0")
        result.append(name)
    return result


def _scale(out: _Source, depth: int, step: Standardize | Affine, i: int, cell: str) -> str:
    name = out.fresh("v")
    if isinstance(step, Standardize):
        subtract, divide = _number(step.subtract[i]), _number(step.divide[i])
        out.add(depth, f"{name} = ({cell} - {subtract}) / {divide}")
    else:
        multiply, add = _number(step.multiply[i]), _number(step.add[i])
        out.add(depth, f"{name} = {cell} * {multiply} + {add}")
    if step.clip is not None:
        low, high = _number(step.clip[0]), _number(step.clip[1])
        out.add(
            depth, f"{name} = {low} if {name} < {low} else {high} if {name} > {high} else {name}"
        )
    return name


def _encode(
    out: _Source,
    depth: int,
    column: Encoding | LookupColumn,
    cell: str,
    kind: CellKind,
    live: list[bool],
) -> list[str | None]:
    """Emit a one-hot or lookup column: one table lookup, then its live outputs."""
    keys: list[object] = list(column.text if column.text is not None else column.numbers or ())
    if isinstance(column, Encoding):
        table: dict[object, object] = dict(zip(keys, column.codes, strict=True))
        unknown: object = column.unknown
        missing: object = column.missing
        n_out = onehot_width(column)
    else:
        rows = [_values(v) for v in column.values]
        n_out = len(column.unknown)
        single = n_out == 1
        table = dict(zip(keys, (r[0] if single else r for r in rows), strict=True))
        unknown = _values(column.unknown)[0] if single else _values(column.unknown)
        missing = _values(column.missing)[0] if single else _values(column.missing)
    if kind == "text":
        table[None] = missing  # a missing text cell is None; no category is None
    name_table = out.bind("T", table)
    name_unknown = out.bind("u", unknown)
    looked = out.fresh("k")
    lookup = f"{name_table}.get({cell}, {name_unknown})"
    if kind == "number":
        lookup = f"{out.bind('n', missing)} if {cell} != {cell} else {lookup}"
    out.add(depth, f"{looked} = {lookup}")
    result: list[str | None] = []
    for j in range(n_out):
        if not live[j]:
            result.append(None)
            continue
        if isinstance(column, Encoding):
            name = out.fresh("v")
            out.add(depth, f"{name} = 1.0 if {looked} == {j} else 0.0")
            result.append(name)
        elif n_out == 1:
            result.append(looked)
        else:
            name = out.fresh("v")
            out.add(depth, f"{name} = {looked}[{j}]")
            result.append(name)
    return result


def _values(values: Sequence[float | None]) -> tuple[float, ...]:
    return tuple(_NAN if v is None else v for v in values)


def _linear(out: _Source, depth: int, model: Linear, cells: list[str]) -> list[str]:
    results = []
    for k, (weights, intercept) in enumerate(zip(model.coef, model.intercept, strict=True)):
        z = f"z{k}"
        terms = [f"{cell} * {_number(w)}" for cell, w in zip(cells, weights, strict=True)]
        # Left to right, as a dot product sums; a statement per few terms keeps lines short.
        first = True
        for start in range(0, len(terms), _TERMS_PER_LINE):
            chunk = " + ".join(terms[start : start + _TERMS_PER_LINE])
            out.add(depth, f"{z} = {chunk}" if first else f"{z} = {z} + {chunk}")
            first = False
        out.add(
            depth, f"{z} = {_number(intercept)}" if first else f"{z} = {z} + {_number(intercept)}"
        )
        results.append(z)
    return results


def _trees(out: _Source, depth: int, model: Trees, cells: list[str]) -> list[str]:
    sums = [f"a{k}" for k in range(len(model.init))]
    budget = MAX_COMPILED_NODES
    compiled: list[bool] = []
    for tree in model.trees:
        compiled.append(len(tree.feature) <= budget)
        budget -= len(tree.feature) if compiled[-1] else 0
    if not all(compiled) or any(_depth(tree) > MAX_DEPTH for tree in model.trees):
        # The walked trees read the model's columns from a tuple made once per row.
        out.add(depth, "X = (" + "".join(f"{c}, " for c in cells) + ")")
    for name, value in zip(sums, model.init, strict=True):
        out.add(depth, f"{name} = {_number(value)}")
    for tree, is_compiled in zip(model.trees, compiled, strict=True):
        leaves = _leaf_values(model, tree)
        targets = sums[tree.output : tree.output + len(tree.values[0])]
        thresholds = tree_thresholds(model, tree)
        categories = _category_sets(tree)
        walker = _walker(tree, thresholds, categories, leaves)
        if is_compiled:
            _TreeSource(out, tree, thresholds, categories, leaves, targets, cells).emit(
                0, depth, 0, walker
            )
        else:
            _walk_call(out, depth, out.bind("W", walker), 0, targets)
    if model.average:
        for name in sums:
            out.add(depth, f"{name} = {name} / {len(model.trees)}")
    return sums


def _depth(tree: Tree) -> int:
    """The number of splits on the longest path (nodes come after their parents)."""
    level = [0] * len(tree.feature)
    for node, (left, right) in enumerate(zip(tree.left, tree.right, strict=True)):
        if left != -1:
            level[left] = level[right] = level[node] + 1
    return max(level)


def _leaf_values(model: Trees, tree: Tree) -> list[tuple[float, ...]]:
    # GradientBoosting adds `scale * value`: the same product, made once here.
    scale = model.scale
    return [tuple(v if scale is None else scale * v for v in values) for values in tree.values]


def _category_sets(tree: Tree) -> dict[int, tuple[frozenset[int], frozenset[int]]]:
    return {
        node: (frozenset(left), frozenset(right))
        for node, left, right in zip(
            tree.category_nodes, tree.left_codes, tree.right_codes, strict=True
        )
    }


def _walk_call(out: _Source, depth: int, walker: str, node: int, targets: list[str]) -> None:
    leaf = out.fresh("l")
    out.add(depth, f"{leaf} = {walker}(X, {node})")
    for j, name in enumerate(targets):
        out.add(depth, f"{name} += {leaf}[{j}]")


class _TreeSource:
    """The nested `if` blocks of one tree."""

    def __init__(
        self,
        out: _Source,
        tree: Tree,
        thresholds: list[float],
        categories: dict[int, tuple[frozenset[int], frozenset[int]]],
        leaves: list[tuple[float, ...]],
        targets: list[str],
        cells: list[str],
    ) -> None:
        self.out, self.tree, self.thresholds = out, tree, thresholds
        self.categories, self.targets, self.cells = categories, targets, cells
        self.walker_name: str | None = None
        leaf_nodes = [n for n, left in enumerate(tree.left) if left == -1]
        self.leaf_of = dict(zip(leaf_nodes, leaves, strict=True))

    def emit(self, node: int, depth: int, level: int, walker: Callable[..., object]) -> None:
        """Emit the subtree at `node`, handing what lies below MAX_DEPTH to the walker."""
        out, tree = self.out, self.tree
        if tree.left[node] == -1:
            for name, value in zip(self.targets, self.leaf_of[node], strict=True):
                out.add(depth, f"{name} += {_number(value)}")
            return
        if level >= MAX_DEPTH:
            if self.walker_name is None:
                self.walker_name = out.bind("W", walker)
            _walk_call(out, depth, self.walker_name, node, self.targets)
            return
        cell = self.cells[tree.feature[node]]
        left, right = tree.left[node], tree.right[node]
        split = self.categories.get(node)
        if split is not None:
            goes_left, goes_right = split
            if tree.missing_left[node]:
                test, first, second = f"{cell} in {out.bind('R', goes_right)}", right, left
            else:
                test, first, second = f"{cell} in {out.bind('L', goes_left)}", left, right
        elif tree.missing_left[node]:
            # NaN fails every comparison: `x > t` sends it to the else branch, the left one.
            test, first, second = f"{cell} > {_number(self.thresholds[node])}", right, left
        else:
            test, first, second = f"{cell} <= {_number(self.thresholds[node])}", left, right
        out.add(depth, f"if {test}:")
        self.emit(first, depth + 1, level + 1, walker)
        out.add(depth, "else:")
        self.emit(second, depth + 1, level + 1, walker)


def _walker(
    tree: Tree,
    thresholds: list[float],
    categories: dict[int, tuple[frozenset[int], frozenset[int]]],
    leaves: list[tuple[float, ...]],
) -> Callable[[Sequence[float], int], tuple[float, ...]]:
    """A loop down the node lists from `node`: the leaf values the row reaches."""
    feature, left, right, missing_left = tree.feature, tree.left, tree.right, tree.missing_left
    leaf_values: dict[int, tuple[float, ...]] = {}
    leaf_nodes = [n for n, child in enumerate(left) if child == -1]
    leaf_values = dict(zip(leaf_nodes, leaves, strict=True))

    def walk(x: Sequence[float], node: int) -> tuple[float, ...]:
        # Children point forward (checked at load): this ends within the node count.
        while left[node] != -1:
            value = x[feature[node]]
            split = categories.get(node)
            if split is not None:
                if value in split[0]:
                    node = left[node]
                elif value in split[1]:
                    node = right[node]
                else:
                    node = left[node] if missing_left[node] else right[node]
            elif value <= thresholds[node]:
                node = left[node]
            elif value > thresholds[node]:
                node = right[node]
            else:
                node = left[node] if missing_left[node] else right[node]
        return leaf_values[node]

    return walk


def _answer(
    out: _Source, rule: str, positive: str, results: list[str], classes: Sequence[object]
) -> str:
    """The expression of one row's Prediction."""
    vector = "(" + "".join(f"{r}, " for r in results) + ")"
    if rule == "value":
        return f"({results[0]}, None)"
    if rule == "exp":
        return f"({out.bind('exp', _exp)}({results[0]}), None)"
    labels = [out.bind("c", label) for label in classes]
    if rule == "logistic":
        p = out.bind("expit", expit)
        compare = ">=" if positive == ">=" else ">"
        z = results[0]
        return f"({labels[1]} if {z} {compare} 0.0 else {labels[0]}, (1.0 - (p := {p}({z})), p))"
    if rule == "proba" and len(results) == 2:
        a, b = results
        return f"({labels[1]} if {b} > {a} else {labels[0]}, {vector})"
    helper = {"proba": _highest, "softmax": _softmax, "ovr": _one_vs_rest}[rule]
    return f"{out.bind('h', _bound(helper, tuple(classes)))}({vector})"


def _exp(z: float) -> float:
    try:
        return math.exp(z)
    except OverflowError:
        return math.inf


def _bound(
    helper: Callable[[tuple[object, ...], tuple[float, ...]], tuple[object, tuple[float, ...]]],
    classes: tuple[object, ...],
) -> Callable[[tuple[float, ...]], tuple[object, tuple[float, ...]]]:
    def answer(values: tuple[float, ...]) -> tuple[object, tuple[float, ...]]:
        return helper(classes, values)

    return answer


def _highest(classes: tuple[object, ...], p: tuple[float, ...]) -> tuple[object, tuple[float, ...]]:
    # max() and index() both take the first of equal values, as numpy's argmax does.
    return classes[p.index(max(p))], p


def _softmax(classes: tuple[object, ...], z: tuple[float, ...]) -> tuple[object, tuple[float, ...]]:
    top = max(z)
    exps = [math.exp(v - top) for v in z]
    total = math.fsum(exps)
    return classes[z.index(top)], tuple(e / total for e in exps)


def _one_vs_rest(
    classes: tuple[object, ...], z: tuple[float, ...]
) -> tuple[object, tuple[float, ...]]:
    # scikit-learn's OvR normalisation: each class's sigmoid over their sum, uniform if all 0.
    p = [expit(v) for v in z]
    total = sum(p)
    if total == 0.0:
        return classes[z.index(max(z))], tuple(1.0 / len(p) for _ in p)
    return classes[z.index(max(z))], tuple(v / total for v in p)
