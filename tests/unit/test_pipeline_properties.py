"""Property: any pipeline of covered steps, fitted on any data, is served exactly by pipeline.json.

Hypothesis draws the data (numbers with ties and missing cells, text columns with rare
values) and the pipeline (an imputer or scaler for the numbers, an encoder for the text, a
final estimator); the exported model must answer as scikit-learn does on held-out rows, each
feature missing, an unseen category and every threshold, and so must the numpy evaluator.
Bounded: a fixed number of small examples, no deadline (fitting times vary on a busy machine).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelapi.bundle import Task
from tests.unit.test_pipeline_exactness import assert_exact


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin on a busy machine: one is plenty here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


CLASSIFIERS = (
    "DecisionTreeClassifier",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "LogisticRegression",
    "SGDClassifier",
)
REGRESSORS = (
    "DecisionTreeRegressor",
    "RandomForestRegressor",
    "ExtraTreesRegressor",
    "GradientBoostingRegressor",
    "HistGradientBoostingRegressor",
    "LinearRegression",
    "Ridge",
    "Lasso",
    "ElasticNet",
    "SGDRegressor",
)
# Estimators that refuse missing values: the numbers get an imputer in front of them.
_NO_MISSING = ("GradientBoosting", "Linear", "Logistic", "Ridge", "Lasso", "Elastic", "SGD")
NUMERIC_STEPS = (
    "passthrough",
    "mean",
    "median+standard",
    "minmax",
    "robust",
    "maxabs",
    "indicator",
)
TEXT_STEPS = ("onehot", "onehot-infrequent", "onehot-drop", "ordinal", "target")


def _data(
    seed: int, n_rows: int, n_numbers: int, n_text: int, missing: float, task: Task, n_classes: int
) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    for j in range(n_numbers):
        values = rng.normal(0, 10.0 ** rng.integers(-2, 3), n_rows)
        if j % 2:  # whole numbers: many ties, thresholds at .5
            values = np.round(values)
        columns[f"x {j} (u)"] = values
    for j in range(n_text):
        weights = np.array([0.5, 0.3, 0.15, 0.05])
        columns[f"t.{j}"] = rng.choice(["aa", "bb", "cc", "rare"], n_rows, p=weights)
    X = pd.DataFrame(columns)
    score = sum(np.nan_to_num(X[c].to_numpy()) for c in X.columns[:n_numbers])
    if n_text:
        score = score + (X["t.0"] == "bb") * 3.0
    score = score + rng.normal(0, 1, n_rows)
    if task == "classification":
        ranks = np.argsort(np.argsort(score))
        y = pd.Series((ranks * n_classes // n_rows).astype(int))
    else:
        y = pd.Series(score)
    if missing:
        for column in X.columns:
            X.loc[rng.random(n_rows) < missing, column] = np.nan
    return X, y


def _numeric_step(kind: str) -> object:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

    return {
        "passthrough": lambda: "passthrough",
        "mean": lambda: SimpleImputer(),
        "median+standard": lambda: make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler()
        ),
        "minmax": lambda: make_pipeline(SimpleImputer(strategy="most_frequent"), MinMaxScaler()),
        "robust": lambda: make_pipeline(SimpleImputer(), RobustScaler()),
        "maxabs": lambda: make_pipeline(SimpleImputer(strategy="constant"), MaxAbsScaler()),
        "indicator": lambda: SimpleImputer(add_indicator=True),
    }[kind]()


def _text_step(kind: str, task: Task) -> object:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

    return {
        "onehot": lambda: OneHotEncoder(handle_unknown="ignore"),
        "onehot-infrequent": lambda: OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=0.1
        ),
        "onehot-drop": lambda: make_pipeline(
            SimpleImputer(strategy="most_frequent"),
            OneHotEncoder(drop="if_binary", handle_unknown="ignore"),
        ),
        "ordinal": lambda: OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
        ),
        "target": lambda: TargetEncoder(
            target_type="continuous" if task == "regression" else "auto", cv=2
        ),
    }[kind]()


def _final(name: str) -> object:
    from sklearn import ensemble, linear_model, tree

    for module in (tree, ensemble, linear_model):
        if hasattr(module, name):
            estimator = getattr(module, name)
            break
    options: dict[str, object] = {}
    if "Forest" in name or "ExtraTrees" in name or name.startswith("GradientBoosting"):
        options["n_estimators"] = 5
    if name.startswith("HistGradientBoosting"):
        options["max_iter"] = 8
    if name.startswith("SGDClassifier"):
        options["loss"] = "log_loss"
    if "random_state" in estimator().get_params():
        options["random_state"] = 0
    return estimator(**options)


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """A drawn configuration: the data's shape and seed, the steps and the final estimator."""
    task: Task = draw(st.sampled_from(["classification", "regression"]))
    return {
        "task": task,
        "name": draw(st.sampled_from(CLASSIFIERS if task == "classification" else REGRESSORS)),
        "n_numbers": draw(st.integers(1, 3)),
        "n_text": draw(st.integers(0, 2)),
        "missing": draw(st.sampled_from([0.0, 0.1, 0.3])),
        "seed": draw(st.integers(0, 2**16)),
        "n_rows": draw(st.integers(40, 100)),
        "n_classes": draw(st.integers(2, 3)),
        "numeric": draw(st.sampled_from(NUMERIC_STEPS)),
        "text": draw(st.sampled_from(TEXT_STEPS)),
        "native": draw(st.booleans()),
    }


def _fitted(case: dict[str, Any]) -> tuple[object, pd.DataFrame, pd.DataFrame]:
    """The data and the fitted model of a drawn configuration, and the held-out rows."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    task, name, n_numbers = case["task"], case["name"], case["n_numbers"]
    X, y = _data(
        case["seed"],
        case["n_rows"],
        n_numbers,
        case["n_text"],
        case["missing"],
        task,
        case["n_classes"],
    )
    numeric = case["numeric"]
    if numeric == "passthrough" and case["missing"] and name.startswith(_NO_MISSING):
        numeric = "mean"
    final = _final(name)
    numbers = list(X.columns[:n_numbers])
    texts = list(X.columns[n_numbers:])
    model: Any
    if name.startswith("HistGradientBoosting") and texts and case["native"]:
        final.set_params(categorical_features=texts)  # type: ignore[attr-defined]
        model = final
    else:
        branches = [("n", _numeric_step(numeric), numbers)]
        if texts:
            branches.append(("t", _text_step(case["text"], task), texts))
        # scikit-learn's trees take missing values only in dense input: a one-hot branch
        # can make the joined output sparse, which no user could have fitted with NaN.
        dense = case["missing"] and numeric == "passthrough"
        model = make_pipeline(
            ColumnTransformer(branches, sparse_threshold=0 if dense else 0.3), final
        )
    split = len(X) * 2 // 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and small-class warnings of tiny fits
        model.fit(X.iloc[:split], y.iloc[:split])
    return model, X.iloc[split:].reset_index(drop=True), X


@pytest.mark.timeout(300)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_random_pipelines_answer_as_scikit_learn(case: dict[str, Any]) -> None:
    model, X_test, X = _fitted(case)
    task, name = case["task"], case["name"]
    exact = name.startswith(("DecisionTree", "RandomForest", "ExtraTrees"))
    tolerance = 0.0 if exact else 1e-12
    assert assert_exact(model, X_test, task, tolerance) >= len(X_test)
    if all(pd.api.types.is_numeric_dtype(X[c]) for c in X.columns):
        assert_exact(
            model, X_test, task, tolerance, predict=lambda m: m.block_evaluator().predict_rows
        )
