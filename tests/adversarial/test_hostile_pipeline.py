"""Hostile `pipeline.json` files: each refused at load, naming the file, in bounded time and memory.

The attacker writes the file (and the manifest's checksums, so it "verifies"). Trees with
cycles, backward or shared children, features or children out of range, sizes that would
allocate without bound, non-finite numbers, outputs that do not fit the classes, category
codes past their range: every one is a BundleError before anything is compiled. Text in the
file is data: a category or fill value holding Python code is bound by name, never compiled.
"""

from __future__ import annotations

import copy
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from modelapi.bundle import Bundle, artifact_entry
from modelapi.errors import BundleError
from modelapi.formats import pipeline
from modelapi.schema import Feature
from modelapi.source import ModelSource
from modelapi.store.local import LocalStore

FEATURES = (
    Feature(column="x", key="x", type="number"),
    Feature(column="c", key="c", type="category", categories=("a", "b")),
)
CLASSES = (0, 1)

# x <= 2 (missing: left) then c's code: 0 left, 1 right, anything else right; x > 2: a tie.
BASE: dict[str, Any] = {
    "format": "modelapi.pipeline",
    "version": 1,
    "inputs": ["number", "text"],
    "steps": [
        {"step": "impute", "at": 0, "fill": [1.5]},
        {
            "step": "lookup",
            "at": 1,
            "columns": [
                {"text": ["a", "b"], "values": [[0.0], [1.0]], "unknown": [None], "missing": [None]}
            ],
        },
    ],
    "model": {
        "model": "trees",
        "compare": "float64",
        "output": "proba",
        "init": [0.0, 0.0],
        "average": True,
        "trees": [
            {
                "feature": [0, 1, -1, -1, -1],
                "threshold": [2.0, 0.0, 0.0, 0.0, 0.0],
                "left": [1, 2, -1, -1, -1],
                "right": [4, 3, -1, -1, -1],
                "missing_left": [True, False, False, False, False],
                "values": [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]],
                "category_nodes": [1],
                "left_codes": [[0]],
                "right_codes": [[1]],
            }
        ],
    },
}


def _load(spec: dict[str, Any]) -> pipeline.PipelineModel:
    data = json.dumps(spec).encode()
    return pipeline.load(data, features=FEATURES, task="classification", classes=CLASSES)


def test_the_base_file_loads_and_answers() -> None:
    model = _load(BASE)
    answers = model.predict([[1.0, "a"], [1.0, "b"], [None, "zz"], [3.0, "a"], [None, None]])
    assert [label for label, _ in answers] == [0, 1, 1, 0, 1]
    assert answers[3][1] == (0.5, 0.5)


def _tree(spec: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = spec["model"]["trees"][0]
    return tree


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation setting spec[path] (dotted, with list indexes) to value."""

    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = spec
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return mutate


T = "model.trees.0."
HOSTILE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a cycle back to the root": (_set(T + "left.1", 0), "children must be later nodes"),
    "a node that is its own child": (_set(T + "right.1", 1), "children must be later nodes"),
    "a child past the last node": (_set(T + "right.0", 5), "children must be later nodes"),
    "a huge child index": (_set(T + "right.0", 2**62), "children must be later nodes"),
    "both children the same node": (_set(T + "right.1", 2), "children must be later nodes"),
    "a node with two parents": (
        _set(T + "right.0", 3),
        "every node but the root must have exactly one parent",
    ),
    "a feature past the columns": (_set(T + "feature.0", 2), "reads a feature outside"),
    "a negative feature at a split": (_set(T + "feature.0", -5), "reads a feature outside"),
    "half a leaf": (_set(T + "right.2", 4), "half a leaf"),
    "node lists of different lengths": (
        _set(T + "threshold", [2.0]),
        "node lists must be of one length",
    ),
    "an empty tree": (
        lambda s: _tree(s).update(
            feature=[], threshold=[], left=[], right=[], missing_left=[], values=[]
        ),
        "node lists must be of one length",
    ),
    "too few leaf values": (_set(T + "values", [[1.0, 0.0]]), "leaf values for 3 leaves"),
    "leaf values wider than the outputs": (
        _set(T + "values", [[1.0, 0.0, 0.0]] * 3),
        "leaf values must fit",
    ),
    "leaves writing past the outputs": (_set(T + "output", 1), "leaf values must fit"),
    "a huge threshold written as 1e999": (None, "Number out of range"),  # type: ignore[dict-item]
    "a NaN threshold": (None, "malformed"),  # type: ignore[dict-item]
    "three outputs for two classes": (
        lambda s: (s["model"].update(init=[0.0, 0.0, 0.0]), _set(T + "values", [[0.0] * 3] * 3)(s)),
        "cannot do classification with 2 classes",
    ),
    "a logistic model for two outputs": (
        _set("model.output", "logistic"),
        "cannot do classification",
    ),
    "a category code past 255": (_set(T + "left_codes.0", [256]), "category codes must be"),
    "a negative category code": (_set(T + "right_codes.0", [-1]), "category codes must be"),
    "category codes out of order": (_set(T + "right_codes.0", [3, 1]), "category codes must be"),
    "a code both ways": (_set(T + "right_codes.0", [0]), "goes both left and right"),
    "a categorical split on a leaf": (_set(T + "category_nodes.0", 2), "not a split"),
    "a categorical split past the nodes": (_set(T + "category_nodes.0", 10**9), "not a split"),
    "more category nodes than code lists": (
        _set(T + "category_nodes", [1, 0]),
        "differ in length",
    ),
    "a step reading past the columns": (_set("steps.0.at", 2), "reads columns outside"),
    "a huge select width": (
        _set("steps.0", {"step": "select", "at": 0, "width": 10**15, "columns": [0]}),
        "reads columns outside",
    ),
    "a select index past its width": (
        _set("steps.0", {"step": "select", "at": 0, "width": 1, "columns": [0, 7]}),
        "column index is outside",
    ),
    "a one-hot position far past its values": (
        _set(
            "steps.1",
            {"step": "onehot", "at": 1, "columns": [{"text": ["a", "b"], "codes": [0, 10**12]}]},
        ),
        "output position between 0 and the largest is unused",
    ),
    "a one-hot position below -1": (
        _set("steps.1", {"step": "onehot", "at": 1, "columns": [{"text": ["a"], "codes": [-7]}]}),
        "below -1",
    ),
    "a lookup with ragged values": (
        _set("steps.1.columns.0.values", [[0.0], [1.0, 2.0]]),
        "every value list must be of one length",
    ),
    "a category listed twice": (_set("steps.1.columns.0.text", ["a", "a"]), "listed twice"),
    "text and numbers both listed": (_set("steps.1.columns.0.numbers", [1.0, 2.0]), "exactly one"),
    "a number fill for a text column": (
        _set("steps.1", {"step": "impute", "at": 1, "fill": [0.0]}),
        "needs a text fill value",
    ),
    "a scaler dividing by zero": (
        _set("steps.0", {"step": "standardize", "at": 0, "subtract": [0.0], "divide": [0.0]}),
        "divide by zero",
    ),
    "a scaler given text": (
        _set("steps.1", {"step": "standardize", "at": 1, "subtract": [0.0], "divide": [1.0]}),
        "given text",
    ),
    "text reaching the model": (lambda s: s["steps"].pop(1), "numbers only"),
    "an unknown step": (_set("steps.0.step", "eval"), "Invalid value 'eval'"),
    "an unknown field": (_set("steps.0.code", "import os"), "unknown field"),
    "a future version": (_set("version", 2), "newer than this modelapi reads"),
    "another format": (_set("format", "pickle"), "Invalid enum value"),
    "inputs of another model": (_set("inputs", ["number"] * 3), "3 inputs, the manifest has 2"),
    "an input of the wrong kind": (_set("inputs", ["text", "text"]), "input for x must be"),
}


def _hostile_bytes(name: str) -> bytes:
    mutate, _ = HOSTILE[name]
    if name == "a huge threshold written as 1e999":
        return json.dumps(BASE).replace('"threshold": [2.0', '"threshold": [1e999').encode()
    if name == "a NaN threshold":
        return json.dumps(BASE).replace('"threshold": [2.0', '"threshold": [NaN').encode()
    spec = copy.deepcopy(BASE)
    mutate(spec)
    return json.dumps(spec).encode()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_refused_naming_it(name: str) -> None:
    data = _hostile_bytes(name)
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match=r"^pipeline\.json: ") as raised:
            pipeline.load(data, features=FEATURES, task="classification", classes=CLASSES)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert HOSTILE[name][1] in str(raised.value)
    assert peak < 5_000_000, f"refusing it took {peak} bytes"


@pytest.mark.timeout(60)
def test_a_very_deep_tree_loads_in_bounded_time_and_answers() -> None:
    """A 20,000-split chain: compiled to MAX_DEPTH levels, walked below; no recursion limit."""
    depth = 20_000
    # Node 2k is a split on x <= k whose left child is the leaf 2k + 1 and right the next split.
    n_nodes = 2 * depth + 1
    feature, threshold, left, right = [], [], [], []
    for node in range(n_nodes):
        if node % 2 == 0 and node < n_nodes - 1:
            feature.append(0)
            threshold.append(float(node // 2))
            left.append(node + 1)
            right.append(node + 2)
        else:
            feature.append(-1)
            threshold.append(0.0)
            left.append(-1)
            right.append(-1)
    values = [[1.0, 0.0] if i < depth else [0.0, 1.0] for i in range(depth + 1)]
    spec = copy.deepcopy(BASE)
    spec["model"]["trees"] = [
        {
            "feature": feature,
            "threshold": threshold,
            "left": left,
            "right": right,
            "missing_left": [False] * n_nodes,
            "values": values,
        }
    ]
    model = _load(spec)
    answers = model.predict([[0.5, "a"], [depth + 5.0, "a"], [depth - 1.5, "b"]])
    assert [label for label, _ in answers] == [0, 1, 0]


def test_text_in_the_file_is_never_compiled(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = f"'); __import__('os').system('touch {marker}'); ('"
    spec = copy.deepcopy(BASE)
    spec["inputs"] = ["number", "text"]
    spec["steps"] = [
        {"step": "impute", "at": 0, "fill": [1.5]},
        {"step": "impute", "at": 1, "fill": [code], "missing": code},
        {
            "step": "lookup",
            "at": 1,
            "columns": [
                {
                    "text": ["a", code],
                    "values": [[0.0], [1.0]],
                    "unknown": [None],
                    "missing": [None],
                }
            ],
        },
    ]
    features = (FEATURES[0], Feature(column="c", key="c", type="category", categories=(code,)))
    model = pipeline.load(
        json.dumps(spec).encode(), features=features, task="classification", classes=(code, "b")
    )
    answers = model.predict([[1.0, code], [1.0, None], [3.0, "a"]])
    assert [label for label, _ in answers] == ["b", "b", code]
    function = model._predict
    assert code not in function.__code__.co_consts
    assert code in function.__globals__.values()
    assert not marker.exists()


def test_a_hostile_file_in_a_store_is_refused_when_serving(
    builtin_bundle: Bundle, tmp_path: Path
) -> None:
    """With the checksums rewritten to match, the file still never loads; the reason names it."""
    spec = copy.deepcopy(BASE)
    spec["inputs"] = ["number"] * len(builtin_bundle.manifest.features)
    spec["steps"] = []
    _set(T + "left.1", 0)(spec)
    _set(T + "category_nodes", [])(spec)
    _set(T + "left_codes", [])(spec)
    _set(T + "right_codes", [])(spec)
    data = json.dumps(spec).encode()
    artifacts = {**builtin_bundle.manifest.artifacts, "pipeline.json": artifact_entry(data)}
    manifest = msgspec.structs.replace(
        builtin_bundle.manifest, artifacts=artifacts, serving="pipeline.json"
    )
    store = LocalStore(tmp_path / "models")
    stored = store.put(Bundle(manifest, {**builtin_bundle.files, "pipeline.json": data}))
    source = ModelSource(f"diabetes:{stored.version}", str(store.root))
    assert source.load() is False
    assert "pipeline.json" in source.reason
    assert "children must be later nodes" in source.reason
