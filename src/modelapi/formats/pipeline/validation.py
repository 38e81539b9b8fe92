"""Check a decoded `pipeline.json` against everything its types cannot say.

Every index is in range, every size is derived from lists the file holds (never from a number
it declares), every number is finite, every tree is a tree (children point forward and each
node but the root has exactly one parent, so evaluation ends within the node count and the
generated code is as long as the tree), and the outputs fit the manifest's task and classes.
A file that fails any check is refused with a BundleError naming it; nothing of it runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelapi.bundle import Label, Task
from modelapi.errors import BundleError
from modelapi.formats.pipeline.spec import (
    FORMAT_VERSION,
    Affine,
    CellKind,
    Encoding,
    Impute,
    Linear,
    Lookup,
    LookupColumn,
    OneHot,
    PipelineSpec,
    Select,
    Standardize,
    Step,
    Tree,
    Trees,
)
from modelapi.schema import Feature

__all__ = [
    "FILE_NAME",
    "MAX_CATEGORY_CODE",
    "check_spec",
    "column_width",
    "encoder_columns",
    "input_width",
    "onehot_width",
]

FILE_NAME = "pipeline.json"
# HistGradientBoosting has at most 255 bins, so category codes in its splits are below 256.
MAX_CATEGORY_CODE = 255


def _refuse(reason: str) -> BundleError:
    return BundleError(f"{FILE_NAME}: {reason}")


def _finite(values: Sequence[float], what: str) -> None:
    for value in values:
        if not math.isfinite(value):
            raise _refuse(f"{what} must be finite numbers")


def input_width(step: Step) -> int:
    """How many columns, from `step.at`, the step reads and replaces."""
    if isinstance(step, Select):
        return step.width
    if isinstance(step, Impute):
        return len(step.fill)
    if isinstance(step, Standardize):
        return len(step.subtract)
    if isinstance(step, Affine):
        return len(step.multiply)
    return len(step.columns)


def onehot_width(column: Encoding) -> int:
    """The number of outputs of one one-hot column: its largest position plus one."""
    return 1 + max([*column.codes, column.unknown, column.missing])


def encoder_columns(step: OneHot | Lookup) -> list[Encoding | LookupColumn]:
    """The columns of a one-hot or lookup step."""
    return list(step.columns)


def column_width(column: Encoding | LookupColumn) -> int:
    """The number of outputs of one encoder column."""
    return onehot_width(column) if isinstance(column, Encoding) else len(column.unknown)


def check_spec(
    spec: PipelineSpec, features: Sequence[Feature], task: Task, classes: Sequence[Label] | None
) -> list[list[CellKind]]:
    """Check the spec for these manifest features; return the cell kinds before each step.

    The last entry is the kinds of the vector the model reads. Raise BundleError naming the
    file for anything out of bounds or inconsistent.
    """
    if spec.version > FORMAT_VERSION:
        raise _refuse(
            f"version {spec.version} is newer than this modelapi reads ({FORMAT_VERSION}):"
            " upgrade modelapi"
        )
    if spec.version < 1:
        raise _refuse("version must be a positive integer")
    if len(spec.inputs) != len(features):
        raise _refuse(f"{len(spec.inputs)} inputs, the manifest has {len(features)} features")
    for kind, feature in zip(spec.inputs, features, strict=True):
        if (kind == "text") != (feature.type == "category"):
            raise _refuse(f"input for {feature.key} must be {_kind_of(feature)}, not {kind}")
    kinds: list[CellKind] = list(spec.inputs)
    stages = [kinds]
    for index, step in enumerate(spec.steps):
        width = input_width(step)
        if not 0 <= step.at <= len(kinds) - width or width < 0:
            raise _refuse(f"step {index} reads columns outside the {len(kinds)} it is given")
        group = kinds[step.at : step.at + width]
        kinds = kinds[: step.at] + _step_kinds(step, group, index) + kinds[step.at + width :]
        stages.append(kinds)
    if any(kind != "number" for kind in kinds):
        raise _refuse("the model must be given numbers only; encode every text column")
    n_classes = len(classes or ())
    if isinstance(spec.model, Linear):
        _check_linear(spec.model, len(kinds), task, n_classes)
    else:
        _check_trees(spec.model, len(kinds), task, n_classes)
    return stages


def _kind_of(feature: Feature) -> CellKind:
    return "text" if feature.type == "category" else "number"


def _step_kinds(step: Step, group: list[CellKind], index: int) -> list[CellKind]:
    """The kinds of a step's outputs, given the kinds of the columns it reads."""
    where = f"step {index} ({type(step).__name__.lower()})"
    if isinstance(step, Select):
        if any(not 0 <= c < step.width for c in step.columns):
            raise _refuse(f"{where}: a column index is outside its {step.width} columns")
        return [group[c] for c in step.columns]
    if isinstance(step, Impute):
        return _impute_kinds(step, group, where)
    if isinstance(step, (Standardize, Affine)):
        first, second = (
            (step.subtract, step.divide)
            if isinstance(step, Standardize)
            else (step.multiply, step.add)
        )
        if len(first) != len(second) or not first:
            raise _refuse(f"{where}: its two lists must be of one length, at least 1")
        clip = step.clip or ()
        _finite([*first, *second, *clip], where)
        if isinstance(step, Standardize) and 0.0 in step.divide:
            raise _refuse(f"{where}: cannot divide by zero")
        if clip and clip[0] > clip[1]:
            raise _refuse(f"{where}: clip's low end is above its high end")
        if "text" in group:
            raise _refuse(f"{where}: scales numbers, but is given text")
        return group
    if not step.columns:
        raise _refuse(f"{where}: needs at least one column")
    out: list[CellKind] = []
    for kind, column in zip(group, encoder_columns(step), strict=True):
        keys = _keys(column, kind, where)
        if isinstance(column, Encoding):
            out.extend(["number"] * _onehot_outputs(column, len(keys), where))
        else:
            out.extend(["number"] * _lookup_outputs(column, len(keys), where))
    return out


def _impute_kinds(step: Impute, group: list[CellKind], where: str) -> list[CellKind]:
    if not step.fill:
        raise _refuse(f"{where}: needs at least one column")
    for kind, fill in zip(group, step.fill, strict=True):
        if (kind == "text") != isinstance(fill, str):
            raise _refuse(f"{where}: a {kind} column needs a {kind} fill value")
        if isinstance(fill, float) and not math.isfinite(fill):
            raise _refuse(f"{where}: fill values must be finite numbers")
    marker = step.missing
    if marker is not None:
        if isinstance(marker, float) and not math.isfinite(marker):
            raise _refuse(f"{where}: the missing marker must be a finite number, text or null")
        wanted: CellKind = "text" if isinstance(marker, str) else "number"
        if any(kind != wanted for kind in group):
            raise _refuse(f"{where}: a {wanted} missing marker needs {wanted} columns")
    if any(not 0 <= i < len(group) for i in step.indicators) or step.indicators != sorted(
        set(step.indicators)
    ):
        raise _refuse(f"{where}: indicators must be increasing column indexes")
    return group + ["number"] * len(step.indicators)


def _keys(column: Encoding | LookupColumn, kind: CellKind, where: str) -> list[object]:
    """The known values of an encoder column, checked against the kind of its input."""
    if (column.text is None) == (column.numbers is None):
        raise _refuse(f"{where}: a column lists either text or numbers, exactly one")
    keys: list[object]
    if column.text is not None:
        if kind != "text":
            raise _refuse(f"{where}: text values for a number column")
        keys = list(column.text)
    else:
        if kind != "number":
            raise _refuse(f"{where}: number values for a text column")
        _finite(column.numbers or (), where)
        keys = list(column.numbers or ())
    if len(set(keys)) != len(keys):
        raise _refuse(f"{where}: a value is listed twice")
    return keys


def _onehot_outputs(column: Encoding, n_keys: int, where: str) -> int:
    if len(column.codes) != n_keys:
        raise _refuse(f"{where}: {len(column.codes)} codes for {n_keys} values")
    positions = [*column.codes, column.unknown, column.missing]
    if any(code < -1 for code in positions):
        raise _refuse(f"{where}: an output position is below -1")
    width = onehot_width(column)
    # Every output is some value's position: the width is bounded by the list's own length.
    if len({code for code in positions if code >= 0}) != width:
        raise _refuse(f"{where}: some output position between 0 and the largest is unused")
    return width


def _lookup_outputs(column: LookupColumn, n_keys: int, where: str) -> int:
    if len(column.values) != n_keys:
        raise _refuse(f"{where}: {len(column.values)} value lists for {n_keys} values")
    width = len(column.unknown)
    rows = [*column.values, column.unknown, column.missing]
    if width == 0 or any(len(row) != width for row in rows):
        raise _refuse(f"{where}: every value list must be of one length, at least 1")
    _finite([v for row in rows for v in row if v is not None], where)
    return width


def _check_linear(model: Linear, width: int, task: Task, n_classes: int) -> None:
    n_outputs = len(model.intercept)
    _check_outputs(model.output, n_outputs, task, n_classes)
    if len(model.coef) != n_outputs or any(len(row) != width for row in model.coef):
        raise _refuse(f"coef must be {n_outputs} lists of {width} numbers")
    _finite([*model.intercept, *(w for row in model.coef for w in row)], "coef and intercept")


def _check_outputs(output: str, n_outputs: int, task: Task, n_classes: int) -> None:
    if task == "regression":
        ok = output in ("value", "exp") and n_outputs == 1
    elif output == "logistic":
        ok = n_outputs == 1 and n_classes == 2
    else:
        ok = output in ("proba", "softmax", "ovr") and n_outputs == n_classes >= 2
    if not ok:
        raise _refuse(
            f"a {output} model with {n_outputs} outputs cannot do {task}"
            + (f" with {n_classes} classes" if task == "classification" else "")
        )


def _check_trees(model: Trees, width: int, task: Task, n_classes: int) -> None:
    n_outputs = len(model.init)
    _check_outputs(model.output, n_outputs, task, n_classes)
    _finite(model.init, "init")
    if model.scale is not None:
        _finite([model.scale], "scale")
    if not model.trees:
        raise _refuse("a tree model needs at least one tree")
    for index, tree in enumerate(model.trees):
        _check_tree(tree, f"tree {index}", width, n_outputs)


def _check_tree(tree: Tree, where: str, width: int, n_outputs: int) -> None:
    n_nodes = len(tree.feature)
    lists = (tree.threshold, tree.left, tree.right, tree.missing_left)
    if n_nodes == 0 or any(len(values) != n_nodes for values in lists):
        raise _refuse(f"{where}: its node lists must be of one length, at least 1")
    _finite(tree.threshold, f"{where}: thresholds")
    parents = [0] * n_nodes
    n_leaves = 0
    for node in range(n_nodes):
        feature, left, right = tree.feature[node], tree.left[node], tree.right[node]
        if left == -1:
            if right != -1 or feature != -1:
                raise _refuse(f"{where}: node {node} is half a leaf")
            n_leaves += 1
            continue
        # Children after their parent: a walk down the tree ends within n_nodes steps.
        if not (node < left < n_nodes and node < right < n_nodes and left != right):
            raise _refuse(f"{where}: node {node}'s children must be later nodes of the tree")
        if not 0 <= feature < width:
            raise _refuse(f"{where}: node {node} reads a feature outside the {width} given")
        parents[left] += 1
        parents[right] += 1
    if parents[0] != 0 or any(count != 1 for count in parents[1:]):
        raise _refuse(f"{where}: every node but the root must have exactly one parent")
    if len(tree.values) != n_leaves:
        raise _refuse(f"{where}: {len(tree.values)} leaf values for {n_leaves} leaves")
    leaf_width = len(tree.values[0])
    if (
        leaf_width == 0
        or any(len(values) != leaf_width for values in tree.values)
        or not 0 <= tree.output <= n_outputs - leaf_width
    ):
        raise _refuse(f"{where}: leaf values must fit the model's {n_outputs} outputs")
    _finite([v for values in tree.values for v in values], f"{where}: leaf values")
    _check_categories(tree, where)


def _check_categories(tree: Tree, where: str) -> None:
    nodes = tree.category_nodes
    if not len(nodes) == len(tree.left_codes) == len(tree.right_codes):
        raise _refuse(f"{where}: category_nodes, left_codes and right_codes differ in length")
    if len(set(nodes)) != len(nodes):
        raise _refuse(f"{where}: a categorical node is listed twice")
    for node, left, right in zip(nodes, tree.left_codes, tree.right_codes, strict=True):
        if not 0 <= node < len(tree.feature) or tree.left[node] == -1:
            raise _refuse(f"{where}: a categorical split names a node that is not a split")
        for codes in (left, right):
            if codes != sorted(set(codes)) or any(not 0 <= c <= MAX_CATEGORY_CODE for c in codes):
                raise _refuse(
                    f"{where}: category codes must be increasing, from 0 to {MAX_CATEGORY_CODE}"
                )
        if set(left) & set(right):
            raise _refuse(f"{where}: a category code goes both left and right")
