"""The numpy walk of tree sums answers as the compiled code, on the numbers where it could not.

Random trees whose thresholds and inputs are the values where an integer key could go wrong:
both zeros, subnormals, the float32 range's ends and past it, infinities, NaN, each threshold
and its float64 and float32 neighbours; missing values sent either way, categorical splits,
float32 and float64 comparisons; records holding their column or the wide layout that keeps
columns apart. Every answer must be the compiled code's, to the bit.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import numpy as np
import pytest

from modelapi.formats import pipeline
from modelapi.formats.pipeline import forest_walk
from modelapi.schema import Feature

_F32_MAX = float(np.finfo(np.float32).max)
_SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 1e-45, -1e-45, 1.4e-45, 1.5, -2.75, 1e300, -1e300]
_SPECIAL += [_F32_MAX, -_F32_MAX, 3.5e38, -3.5e38, 35.899999618530273, 0.1, -0.1]


def _thresholds(rng: random.Random) -> list[float]:
    values = list(_SPECIAL)
    for _ in range(12):
        a = np.float32(rng.uniform(-50, 50))
        values.append((float(a) + float(np.nextafter(a, np.float32(np.inf)))) / 2)
        values.append(float(a))
    return values


def _neighbours(t: float) -> list[float]:
    found = [t, math.nextafter(t, math.inf), math.nextafter(t, -math.inf)]
    with np.errstate(over="ignore"):
        f = np.float32(t)
        found += [float(f), float(np.nextafter(f, np.float32(np.inf)))]
        found += [float(np.nextafter(f, np.float32(-np.inf)))]
    return found


def _tree(
    rng: random.Random,
    thresholds: list[float],
    n_features: int,
    depth: int,
    width: int,
    categories: bool,
) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []

    def grow(level: int) -> int:
        index = len(nodes)
        nodes.append({})
        if level == depth or (level > 0 and rng.random() < 0.25):
            nodes[index] = {"leaf": [rng.uniform(0, 1) for _ in range(width)]}
            return index
        node: dict[str, Any] = {
            "feature": rng.randrange(n_features),
            "threshold": rng.choice(thresholds),
            "missing_left": rng.random() < 0.5,
        }
        if categories and rng.random() < 0.3:
            codes = rng.sample(range(6), 4)
            node["left_codes"], node["right_codes"] = sorted(codes[:2]), sorted(codes[2:])
        nodes[index] = node
        node["left"] = grow(level + 1)
        node["right"] = grow(level + 1)
        return index

    grow(0)
    tree: dict[str, Any] = {
        "feature": [],
        "threshold": [],
        "left": [],
        "right": [],
        "missing_left": [],
        "values": [],
        "category_nodes": [],
        "left_codes": [],
        "right_codes": [],
    }
    for index, node in enumerate(nodes):
        leaf = "leaf" in node
        tree["feature"].append(-1 if leaf else node["feature"])
        tree["threshold"].append(0.0 if leaf else node["threshold"])
        tree["left"].append(-1 if leaf else node["left"])
        tree["right"].append(-1 if leaf else node["right"])
        tree["missing_left"].append(False if leaf else node["missing_left"])
        if leaf:
            tree["values"].append(node["leaf"])
        if "left_codes" in node:
            tree["category_nodes"].append(index)
            tree["left_codes"].append(node["left_codes"])
            tree["right_codes"].append(node["right_codes"])
    return tree


def _model(
    seed: int, compare: str, task: str, categories: bool
) -> tuple[pipeline.PipelineModel, list[float]]:
    rng = random.Random(seed)
    thresholds = _thresholds(rng)
    n_features = 3
    width = 2 if task == "classification" else 1
    trees = [
        _tree(rng, thresholds, n_features, rng.randint(0, 7), width, categories)
        for _ in range(rng.randint(1, 40))
    ]
    spec = {
        "format": "modelapi.pipeline",
        "version": 1,
        "inputs": ["number"] * n_features,
        "steps": [],
        "model": {
            "model": "trees",
            "compare": compare,
            "output": "proba" if task == "classification" else "value",
            "init": [0.0] * width,
            "average": task == "classification",
            "trees": trees,
        },
    }
    features = tuple(Feature(column=f"x{i}", key=f"x{i}", type="number") for i in range(3))
    classes = (0, 1) if task == "classification" else None
    model = pipeline.load(
        json.dumps(spec).encode(),
        features=features,
        task=task,  # type: ignore[arg-type]
        classes=classes,
    )
    return model, thresholds


def _rows(rng: random.Random, thresholds: list[float], n_rows: int) -> list[list[float | None]]:
    cells: list[float | None] = [None, math.inf, -math.inf, 0.0, -0.0, 2.5, 256.0, -1.0]
    cells += [float(code) for code in range(6)]
    for t in thresholds:
        cells += _neighbours(t)
        cells += _neighbours(-t)
    return [[rng.choice(cells) for _ in range(3)] for _ in range(n_rows)]


CASES = [
    (seed, compare, task, categories)
    for seed, (compare, task, categories) in enumerate(
        [
            (compare, task, categories)
            for compare in ("float32", "float64")
            for task in ("classification", "regression")
            for categories in (False, True)
        ]
    )
]


@pytest.mark.parametrize("wide", [False, True], ids=["columns in records", "wide"])
@pytest.mark.parametrize(("seed", "compare", "task", "categories"), CASES)
def test_the_walk_answers_as_the_compiled_code(
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    compare: str,
    task: str,
    categories: bool,
    wide: bool,
) -> None:
    if wide:  # as for a model of too many nodes for a record to hold the column
        monkeypatch.setattr(forest_walk, "_FIRST_BITS", 0)
    model, thresholds = _model(seed, compare, task, categories)
    evaluator = model.block_evaluator()
    assert evaluator is not None
    assert evaluator._trees._wide is wide
    rows = _rows(random.Random(seed), thresholds, 3_000)
    with np.errstate(all="ignore"):
        got = evaluator.predict_rows(rows)
    assert got == model.predict_compiled(rows)  # type: ignore[arg-type]


def test_a_forest_of_leaves_alone() -> None:
    spec = {
        "format": "modelapi.pipeline",
        "version": 1,
        "inputs": ["number"],
        "steps": [],
        "model": {
            "model": "trees",
            "compare": "float32",
            "output": "value",
            "init": [0.5],
            "trees": [
                {
                    "feature": [-1],
                    "threshold": [0.0],
                    "left": [-1],
                    "right": [-1],
                    "missing_left": [False],
                    "values": [[0.25]],
                }
            ]
            * 3,
        },
    }
    features = (Feature(column="x", key="x", type="number"),)
    model = pipeline.load(
        json.dumps(spec).encode(), features=features, task="regression", classes=None
    )
    evaluator = model.block_evaluator()
    rows: list[list[float | None]] = [[1.0], [None], [-3.0]] * 10
    assert evaluator.predict_rows(rows) == model.predict_compiled(rows) == [(1.25, None)] * 30
