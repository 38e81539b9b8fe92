"""Generated code for a sum of trees: nested `if` blocks per tree, a loop below MAX_DEPTH.

A numeric split whose missing values go left is written `if x > t: <right> else: <left>`,
and one whose missing values go right `if x <= t: <left> else: <right>`: NaN fails every
comparison, so it takes the else branch, the side it belongs to, at no cost. A categorical
split tests the code against the set of the other side. Trees past MAX_COMPILED_NODES, and
subtrees below MAX_DEPTH, are walked by a loop over the node lists (children point forward,
so it ends within the node count).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from modelapi.formats.pipeline.emitter import (
    GroupCompiler,
    Source,
    compile_group,
    number_text,
)
from modelapi.formats.pipeline.spec import Tree, Trees
from modelapi.formats.pipeline.thresholds import float32_boundary

__all__ = [
    "GROUP_NODES",
    "MAX_COMPILED_NODES",
    "MAX_DEPTH",
    "emit_trees",
    "leaf_values",
    "tree_thresholds",
]

MAX_DEPTH = 48
MAX_COMPILED_NODES = 150_000
GROUP_NODES = 2_000


def tree_thresholds(model: Trees, tree: Tree) -> list[float]:
    """The thresholds to compare float64 inputs with: float32 boundaries where that applies."""
    if model.compare == "float64":
        return list(tree.threshold)
    return [float32_boundary(t) for t in tree.threshold]


def emit_trees(
    out: Source,
    depth: int,
    model: Trees,
    cells: list[str],
    groups: GroupCompiler = compile_group,
) -> list[str]:
    """Emit the sums of a tree model for the row's `cells`; return the sums' names.

    A model of more than GROUP_NODES nodes is compiled in groups of trees, each a function
    of its own called from the row loop: compiling one huge function holds its whole syntax
    tree in memory at once (some 70 MB for 20,000 nodes, most of it never given back to the
    system), a group's is a tenth of that. `groups` makes each group's function (a Lambda
    package may hold them compiled already: `modelapi.formats.pipeline.code_cache`).
    """
    sums = [f"a{k}" for k in range(len(model.init))]
    budget = MAX_COMPILED_NODES
    compiled: list[bool] = []
    for tree in model.trees:
        compiled.append(len(tree.feature) <= budget)
        budget -= len(tree.feature) if compiled[-1] else 0
    walks = not all(compiled) or any(_depth(tree) > MAX_DEPTH for tree in model.trees)
    if walks:
        # The walked trees read the model's columns from a tuple made once per row.
        out.add(depth, "X = (" + "".join(f"{c}, " for c in cells) + ")")
    for name, value in zip(sums, model.init, strict=True):
        out.add(depth, f"{name} = {number_text(value)}")
    trees = list(zip(model.trees, compiled, strict=True))
    if sum(len(tree.feature) for tree in model.trees) <= GROUP_NODES:
        _emit_group(out, depth, model, trees, cells, sums)
    else:
        names = sorted({c for c in cells if c.isidentifier()}) + (["X"] if walks else [])
        parameters = (*names, *sums)
        arguments = ", ".join(parameters)
        for index, group in enumerate(_groups(trees)):

            def source(index: int = index, group: list[tuple[Tree, bool]] = group) -> Source:
                inner = Source(prefix=f"g{index}_")
                inner.add(0, f"def group({arguments}):")
                _emit_group(inner, 1, model, group, cells, sums)
                inner.add(1, "return (" + "".join(f"{name}, " for name in sums) + ")")
                return inner

            function = out.bind("G", groups(index, parameters, source))
            out.add(depth, "(" + "".join(f"{n}, " for n in sums) + f") = {function}({arguments})")
    if model.average:
        for name in sums:
            out.add(depth, f"{name} = {name} / {len(model.trees)}")
    return sums


def _groups(trees: list[tuple[Tree, bool]]) -> list[list[tuple[Tree, bool]]]:
    """Consecutive trees, about GROUP_NODES nodes a group (at least one tree each)."""
    groups: list[list[tuple[Tree, bool]]] = [[]]
    size = 0
    for item in trees:
        if groups[-1] and size + len(item[0].feature) > GROUP_NODES:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += len(item[0].feature)
    return groups


def _emit_group(
    out: Source,
    depth: int,
    model: Trees,
    trees: list[tuple[Tree, bool]],
    cells: list[str],
    sums: list[str],
) -> None:
    """Emit trees in order, each adding its leaf's values to its outputs."""
    for tree, is_compiled in trees:
        leaves = leaf_values(model, tree)
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


def _depth(tree: Tree) -> int:
    """The number of splits on the longest path (nodes come after their parents)."""
    level = [0] * len(tree.feature)
    for node, (left, right) in enumerate(zip(tree.left, tree.right, strict=True)):
        if left != -1:
            level[left] = level[right] = level[node] + 1
    return max(level)


def leaf_values(model: Trees, tree: Tree) -> list[tuple[float, ...]]:
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


def _walk_call(out: Source, depth: int, walker: str, node: int, targets: list[str]) -> None:
    leaf = out.fresh("l")
    out.add(depth, f"{leaf} = {walker}(X, {node})")
    for j, name in enumerate(targets):
        out.add(depth, f"{name} += {leaf}[{j}]")


class _TreeSource:
    """The nested `if` blocks of one tree."""

    def __init__(
        self,
        out: Source,
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
                out.add(depth, f"{name} += {number_text(value)}")
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
            test, first, second = f"{cell} > {number_text(self.thresholds[node])}", right, left
        else:
            test, first, second = f"{cell} <= {number_text(self.thresholds[node])}", left, right
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
    leaf_nodes = [n for n, child in enumerate(left) if child == -1]
    by_node = dict(zip(leaf_nodes, leaves, strict=True))

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
        return by_node[node]

    return walk
