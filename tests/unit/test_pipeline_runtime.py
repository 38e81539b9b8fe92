"""The pipeline.json runtime's own rules: float32 boundaries, walked trees, step arithmetic."""

from __future__ import annotations

import json
import math
import random
import warnings

import numpy as np
import pytest

from modelapi.formats import pipeline
from modelapi.formats.pipeline import tree_code
from modelapi.formats.pipeline.thresholds import float32_boundary, float32_floor
from modelapi.schema import Feature
from modelapi.training.data import describe_features


def _thresholds() -> list[float]:
    rng = random.Random(0)
    values = [0.0, -0.0, 1e-45, -1e-45, 1.5, 35.899999618530273, 3.4028234663852886e38]
    values += [-3.4028234663852886e38, 3.5e38, -3.5e38, 1e300, -1e300, 5e-324, -5e-324]
    values += [rng.uniform(-1e3, 1e3) for _ in range(400)]
    values += [float(np.float32(rng.uniform(-100, 100))) for _ in range(200)]
    # Midpoints of neighbouring float32 values: how scikit-learn's thresholds are made.
    for _ in range(200):
        a = np.float32(rng.uniform(-50, 50))
        values.append((float(a) + float(np.nextafter(a, np.float32(np.inf)))) / 2)
    values += [rng.uniform(-1e-40, 1e-40) for _ in range(100)]
    return values


def test_float32_boundary_is_scikit_learns_rounded_comparison() -> None:
    compared = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # casting numbers past the float32 range overflows
        for t in _thresholds():
            boundary = float32_boundary(t)
            xs = [t, math.nextafter(t, math.inf), math.nextafter(t, -math.inf)]
            x_up = x_down = boundary
            for _ in range(3):
                xs += [x_up, x_down]
                x_up, x_down = math.nextafter(x_up, math.inf), math.nextafter(x_down, -math.inf)
            for x in xs:
                assert (float(np.float32(x)) <= t) == (x <= boundary), (t, x)
                assert (np.float32(x) <= np.float32(float32_floor(t))) == (x <= boundary)
                compared += 1
    assert compared > 8_000


def _forest_spec(n_estimators: int = 10) -> tuple[bytes, tuple[Feature, ...], object, object]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6].copy()
    X.iloc[::7, 2] = np.nan
    model = RandomForestClassifier(n_estimators=n_estimators, random_state=0).fit(X, y)
    features = describe_features(X)
    data = pipeline.export(model, features, "classification", (0, 1))
    assert data is not None
    return data, features, model, X


def test_walked_and_compiled_trees_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the node budget, or below the depth limit, a tree is walked; compiled in groups of
    trees or in one function: the answers stay."""
    from modelapi.training.check_rows import frame_rows

    data, features, model, X = _forest_spec()
    rows = frame_rows(X, features)
    compiled = pipeline.load(data, features=features, task="classification", classes=(0, 1))
    expected = [tuple(p) for p in model.predict_proba(X).tolist()]  # type: ignore[attr-defined]
    assert [p for _, p in compiled.predict_compiled(rows)] == expected
    settings = ((0, tree_code.MAX_DEPTH, 10**9), (10**9, 3, 10**9), (2000, 1, 1), (10**9, 48, 50))
    for budget, depth, group in settings:
        monkeypatch.setattr(tree_code, "MAX_COMPILED_NODES", budget)
        monkeypatch.setattr(tree_code, "MAX_DEPTH", depth)
        monkeypatch.setattr(tree_code, "GROUP_NODES", group)
        walked = pipeline.load(data, features=features, task="classification", classes=(0, 1))
        assert [p for _, p in walked.predict_compiled(rows)] == expected


FEATURES = (
    Feature(column="x", key="x", type="number"),
    Feature(column="y", key="y", type="number"),
)


def _linear(steps: list[dict[str, object]], coef: list[float]) -> pipeline.PipelineModel:
    spec = {
        "format": "modelapi.pipeline",
        "version": 1,
        "inputs": ["number", "number"],
        "steps": steps,
        "model": {"model": "linear", "coef": [coef], "intercept": [0.0], "output": "value"},
    }
    data = json.dumps(spec).encode()
    return pipeline.load(data, features=FEATURES, task="regression", classes=None)


@pytest.mark.parametrize(
    ("steps", "coef", "row", "value"),
    [
        ([{"step": "impute", "at": 0, "fill": [2.5, 4.0]}], [1.0, 1.0], [None, 1.0], 3.5),
        (
            [{"step": "impute", "at": 0, "fill": [9.0], "missing": -1.0}],
            [1.0, 0.0],
            [-1.0, 0.0],
            9.0,
        ),
        (
            [{"step": "impute", "at": 0, "fill": [0.0, 0.0], "indicators": [1]}],
            [0.0, 0.0, 1.0],
            [1.0, None],
            1.0,
        ),
        (
            [{"step": "standardize", "at": 0, "subtract": [1.0, 2.0], "divide": [4.0, 8.0]}],
            [1.0, 1.0],
            [3.0, 10.0],
            (3.0 - 1.0) / 4.0 + (10.0 - 2.0) / 8.0,
        ),
        (
            [
                {
                    "step": "affine",
                    "at": 0,
                    "multiply": [0.5, 2.0],
                    "add": [0.25, -1.0],
                    "clip": [0.0, 1.0],
                }
            ],
            [1.0, 10.0],
            [10.0, 0.1],
            1.0 + 10.0 * 0.0,
        ),
        (
            [{"step": "select", "at": 0, "width": 2, "columns": [1, 1, 0]}],
            [1.0, 10.0, 100.0],
            [1.0, 2.0],
            122.0,
        ),
        (
            [
                {
                    "step": "onehot",
                    "at": 1,
                    "columns": [
                        {"numbers": [3.0, 5.0], "codes": [0, 1], "unknown": 2, "missing": -1}
                    ],
                }
            ],
            [1.0, 10.0, 100.0, 1000.0],
            [1.0, 7.0],
            1001.0,
        ),
        (
            [
                {
                    "step": "lookup",
                    "at": 0,
                    "columns": [
                        {"numbers": [1.0], "values": [[0.5]], "unknown": [-3.0], "missing": [8.0]}
                    ],
                }
            ],
            [1.0, 1.0],
            [None, 1.0],
            9.0,
        ),
    ],
)
def test_step_arithmetic(
    steps: list[dict[str, object]], coef: list[float], row: list[float | None], value: float
) -> None:
    model = _linear(steps, coef)
    [(answer, none)] = model.predict([row])
    assert none is None
    assert answer == value
    evaluator = model.block_evaluator()
    assert evaluator is not None
    assert evaluator.predict_rows([row]) == [(answer, None)]


def test_exp_of_a_huge_sum_is_infinite_not_an_exception() -> None:
    tree = {
        "feature": [0, -1, -1],
        "threshold": [0.5, 0.0, 0.0],
        "left": [1, -1, -1],
        "right": [2, -1, -1],
        "missing_left": [False, False, False],
        "values": [[1e6], [0.0]],
    }
    spec = {
        "format": "modelapi.pipeline",
        "version": 1,
        "inputs": ["number", "number"],
        "steps": [],
        "model": {
            "model": "trees",
            "compare": "float64",
            "trees": [tree],
            "init": [0.0],
            "output": "exp",
        },
    }
    model = pipeline.load(
        json.dumps(spec).encode(), features=FEATURES, task="regression", classes=None
    )
    assert model.predict([[0.0, 0.0], [1.0, 0.0]]) == [(math.inf, None), (1.0, None)]
