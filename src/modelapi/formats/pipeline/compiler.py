"""Compile a checked `pipeline.json` into one Python function that predicts a list of rows.

Every step becomes a few statements per column, every tree a nest of `if x <= t:` blocks, and
the whole is one loop over the rows, compiled once when the model loads: a row then costs no
call per step or per tree. The text is built from the checked spec alone. What goes into it:
fixed names, integer indexes and counts, and the `repr` of numbers that the checks proved to
be finite floats (a float's repr is always a plain literal such as `-1.25e-05`). Text from the
file (categories, fill values, class labels) never enters the source: it is bound by name, as
are the tables and helper functions the code calls.

Trees are written by `modelapi.formats.pipeline.tree_code`; their deepest parts, and trees
past a node budget, are walked by a loop, so a large model loads in bounded time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from modelapi.formats.pipeline.emitter import (
    GroupCompiler,
    Source,
    compile_function,
    compile_group,
    number_text,
)
from modelapi.formats.pipeline.outputs import exp_or_inf, expit, helper_for
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
)
from modelapi.formats.pipeline.tree_code import emit_trees
from modelapi.formats.pipeline.validation import (
    column_width,
    encoder_columns,
    input_width,
    onehot_width,
)

__all__ = ["compile_spec", "sources"]

_NAN = math.nan
_TERMS_PER_LINE = 32


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


def compile_spec(
    spec: PipelineSpec,
    stages: list[list[CellKind]],
    classes: Sequence[object],
    groups: GroupCompiler = compile_group,
) -> Callable[[Any], Any]:
    """The function `predict(rows) -> list[Prediction]` for a checked spec; `groups` makes
    the functions of a large tree model's groups of trees."""
    out = Source()
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
        else emit_trees(out, body, model, final, groups)
    )
    rule: str = model.output
    positive: str = model.positive
    out.add(body, f"append({_answer(out, rule, positive, results, classes)})")
    out.add(1, "return answers")
    return compile_function(out, "predict")


def _step(
    out: Source,
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


def _is_missing(out: Source, kind: CellKind, marker: float | str | None, cell: str) -> str:
    if marker is None:
        return f"{cell} is None" if kind == "text" else f"{cell} != {cell}"
    value = out.bind("m", marker) if isinstance(marker, str) else number_text(marker)
    return f"{cell} == {value}"


def _impute(
    out: Source,
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
        value = out.bind("s", fill) if isinstance(fill, str) else number_text(fill)
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


def _scale(out: Source, depth: int, step: Standardize | Affine, i: int, cell: str) -> str:
    name = out.fresh("v")
    if isinstance(step, Standardize):
        subtract, divide = number_text(step.subtract[i]), number_text(step.divide[i])
        out.add(depth, f"{name} = ({cell} - {subtract}) / {divide}")
    else:
        multiply, add = number_text(step.multiply[i]), number_text(step.add[i])
        out.add(depth, f"{name} = {cell} * {multiply} + {add}")
    if step.clip is not None:
        low, high = number_text(step.clip[0]), number_text(step.clip[1])
        out.add(
            depth, f"{name} = {low} if {name} < {low} else {high} if {name} > {high} else {name}"
        )
    return name


def _encode(
    out: Source,
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


def _linear(out: Source, depth: int, model: Linear, cells: list[str]) -> list[str]:
    results = []
    for k, (weights, intercept) in enumerate(zip(model.coef, model.intercept, strict=True)):
        z = f"z{k}"
        terms = [f"{cell} * {number_text(w)}" for cell, w in zip(cells, weights, strict=True)]
        # Left to right, as a dot product sums; a statement per few terms keeps lines short.
        first = True
        for start in range(0, len(terms), _TERMS_PER_LINE):
            chunk = " + ".join(terms[start : start + _TERMS_PER_LINE])
            out.add(depth, f"{z} = {chunk}" if first else f"{z} = {z} + {chunk}")
            first = False
        out.add(
            depth,
            f"{z} = {number_text(intercept)}" if first else f"{z} = {z} + {number_text(intercept)}",
        )
        results.append(z)
    return results


def _answer(
    out: Source, rule: str, positive: str, results: list[str], classes: Sequence[object]
) -> str:
    """The expression of one row's Prediction."""
    vector = "(" + "".join(f"{r}, " for r in results) + ")"
    if rule == "value":
        return f"({results[0]}, None)"
    if rule == "exp":
        return f"({out.bind('exp', exp_or_inf)}({results[0]}), None)"
    labels = [out.bind("c", label) for label in classes]
    if rule == "logistic":
        p = out.bind("expit", expit)
        compare = ">=" if positive == ">=" else ">"
        z = results[0]
        return f"({labels[1]} if {z} {compare} 0.0 else {labels[0]}, (1.0 - (p := {p}({z})), p))"
    if rule == "proba" and len(results) == 2:
        a, b = results
        return f"({labels[1]} if {b} > {a} else {labels[0]}, {vector})"
    return f"{out.bind('h', helper_for(rule, tuple(classes)))}({vector})"
