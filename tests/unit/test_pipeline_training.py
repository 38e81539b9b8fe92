"""Training into pipeline.json: the new --model names, --param, awkward column names, save()."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest

import modelapi
from modelapi.bundle import read_bundle
from modelapi.cli.train import _MODELS, _params
from modelapi.errors import ConfigError
from modelapi.formats.skops import read_estimator
from modelapi.predictor import Predictor
from modelapi.training.check_rows import frame_rows
from modelapi.training.data import load_dataset
from modelapi.training.workflow import ESTIMATORS, train
from tests.unit.test_data import write_diabetes


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin on a busy machine: one is plenty here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


SMALL = {
    "random_forest": {"n_estimators": 5},
    "extra_trees": {"n_estimators": 5},
    "gradient_boosting": {"n_estimators": 5},
    "hist_gradient_boosting": {"max_iter": 5},
}
# Awkward names: what skl2onnx renames, and what the check then could not match.
IRIS_COLUMNS = ["sepal length (cm)", "sepal.width", "petal-length", "petal width (cm)"]


@pytest.fixture(scope="module")
def diabetes_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_diabetes(tmp_path_factory.mktemp("diabetes") / "diabetes.csv")


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame.columns = [*IRIS_COLUMNS, "species"]
    path = tmp_path_factory.mktemp("iris") / "iris.csv"
    frame.to_csv(path, index=False)
    return path


def test_the_command_lists_every_estimator() -> None:
    assert tuple(ESTIMATORS) == _MODELS


@pytest.mark.parametrize(
    ("model", "task", "serving"),
    [
        ("decision_tree", "classification", "pipeline.json"),
        ("decision_tree", "regression", "pipeline.json"),
        ("extra_trees", "classification", "pipeline.json"),
        ("extra_trees", "regression", "pipeline.json"),
        ("hist_gradient_boosting", "classification", "pipeline.json"),
        ("hist_gradient_boosting", "regression", "pipeline.json"),
        ("lasso", "regression", "linear.json"),
        ("elastic_net", "regression", "linear.json"),
    ],
)
def test_new_model_names_train_and_serve_as_scikit_learn_answers(
    model: str, task: str, serving: str, pima_csv: Path, diabetes_csv: Path
) -> None:
    dataset = load_dataset(pima_csv if task == "classification" else diabetes_csv)
    result = train(dataset, model=model, params=SMALL.get(model))
    assert (result.manifest.serving, result.manifest.estimator) == (serving, model)
    X = dataset.X
    answers = Predictor(result.bundle).predict(frame_rows(X, result.manifest.features))
    estimator = result.estimator
    expected = estimator.predict(X).tolist()  # type: ignore[attr-defined]
    if task == "classification":
        assert [label for label, _ in answers] == expected
    else:
        assert np.allclose([v for v, _ in answers], expected, rtol=1e-12, atol=0)


def test_a_fifty_tree_forest_on_pima_is_stored_with_its_ties(pima_csv: Path) -> None:
    """Probability ties at 0.5 are answered as scikit-learn answers them: the first class."""
    dataset = load_dataset(pima_csv)
    result = train(dataset, model="random_forest", params={"n_estimators": 50})
    assert result.manifest.serving == "pipeline.json"
    answers = Predictor(result.bundle).predict(frame_rows(dataset.X, result.manifest.features))
    proba = result.estimator.predict_proba(dataset.X)  # type: ignore[attr-defined]
    ties = [i for i, p in enumerate(proba) if p[0] == p[1]]
    assert ties, "no tie in this forest: the test needs another seed"
    assert all(answers[i][0] == 0 for i in ties)
    assert [p for _, p in answers] == [tuple(p) for p in proba.tolist()]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("50", 50),
        ("0.1", 0.1),
        ("true", True),
        ("null", None),
        ("entropy", "entropy"),
        ('"2"', "2"),
        ("[1, 2]", "[1, 2]"),
        ("", ""),
    ],
)
def test_param_values_are_json_scalars_or_text(text: str, value: object) -> None:
    assert _params(None, None, (f"key={text}",)) == {"key": value}  # type: ignore[arg-type]


def test_param_needs_key_and_value() -> None:
    with pytest.raises(click.BadParameter, match="KEY=VALUE"):
        _params(None, None, ("n_estimators",))  # type: ignore[arg-type]


def test_unknown_params_name_the_model(pima_csv: Path) -> None:
    with pytest.raises(ConfigError, match="params for random_forest"):
        train(load_dataset(pima_csv), model="random_forest", params={"no_such_param": 1})


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "MODELAPI_STORE"}
    return subprocess.run(
        [sys.executable, "-m", "modelapi", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
        env=environment,
    )


def test_train_a_forest_with_params_on_awkward_column_names(iris_csv: Path, tmp_path: Path) -> None:
    store = tmp_path / "models"
    result = _run(
        "train",
        str(iris_csv),
        "--model",
        "random_forest",
        "--param",
        "n_estimators=7",
        "--param",
        "max_depth=null",
        "--param",
        "criterion=entropy",
        "--store",
        str(store),
    )
    assert result.returncode == 0, result.stderr
    assert "serving: pipeline.json" in result.stdout
    bundle = read_bundle(store / "iris" / "1")
    assert [f.column for f in bundle.manifest.features] == IRIS_COLUMNS
    forest = read_estimator(bundle)[-1]  # type: ignore[index]
    assert (forest.n_estimators, forest.max_depth, forest.criterion) == (7, None, "entropy")
    refused = _run("train", str(iris_csv), "--param", "n_estimators", "--store", str(store))
    assert refused.returncode == 2
    assert "KEY=VALUE" in refused.stderr


def test_save_a_column_transformer_and_forest_with_awkward_names(tmp_path: Path) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    X, y = load_wine(return_X_y=True, as_frame=True)
    X = X.rename(columns=lambda c: c.replace("_", " ") + " (unit)")
    X.iloc[::11, 2] = np.nan
    columns = ColumnTransformer([("numbers", SimpleImputer(), list(X.columns))])
    model = make_pipeline(columns, RandomForestClassifier(n_estimators=10, random_state=0))
    model.fit(X, y)
    result = modelapi.save(model, X, name="wine", store=None, y_sample=y)
    assert result.manifest.serving == "pipeline.json"
    assert all(f.accepts_missing for f in result.manifest.features)
    rows = frame_rows(X, result.manifest.features)
    answers = Predictor(result.bundle).predict(rows)
    assert [p for _, p in answers] == [tuple(p) for p in model.predict_proba(X).tolist()]
    assert pd.Series([label for label, _ in answers]).tolist() == model.predict(X).tolist()


def test_save_native_categories_of_hist_gradient_boosting() -> None:
    """Its skops copy holds the preprocessor's check_array partial, which is trusted."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from modelapi.formats.skops import load_skops

    X, y = pd.DataFrame({"size": np.arange(120.0) % 17}), pd.Series(np.arange(120) % 2)
    X["colour"] = np.where(np.arange(120) % 3 == 0, "red", "blue")
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features=["colour"])
    model.fit(X, y)
    result = modelapi.save(model, X, name="colours", store=None)
    assert result.manifest.serving == "pipeline.json"
    colour = result.manifest.features[1]
    assert (colour.accepts_missing, colour.accepts_unknown) == (True, True)
    copy = load_skops(result.bundle.files["model.skops"])
    assert copy.predict_proba(X).tolist() == model.predict_proba(X).tolist()  # type: ignore[attr-defined]


def test_a_partial_of_an_untrusted_function_is_still_refused() -> None:
    import functools

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    from modelapi.errors import BundleError
    from modelapi.formats.skops import load_skops

    data = sio.dumps(FunctionTransformer(func=functools.partial(os.system, "true")))
    with pytest.raises(BundleError, match="system"):
        load_skops(data)


def test_unknown_categories_of_the_default_pipeline_are_answered_as_scikit_learn(
    tmp_path: Path,
) -> None:
    """The default one-hot encoder ignores unseen categories: linear.json adds nothing for
    them, the check proves it, and the manifest says the feature accepts them."""
    from tests.unit.test_data import write_penguins

    dataset = load_dataset(write_penguins(tmp_path / "penguins.csv"), drop_missing=True)
    result = train(dataset, model="logistic_regression")
    assert result.manifest.serving == "linear.json"
    island = next(f for f in result.manifest.features if f.key == "island")
    assert island.accepts_unknown
    X = dataset.X.iloc[:5].copy()
    X["island"] = "Atlantis"
    rows = frame_rows(X, result.manifest.features)
    answers = Predictor(result.bundle).predict(rows)
    estimator = result.estimator
    assert [label for label, _ in answers] == estimator.predict(X).tolist()  # type: ignore[attr-defined]
    proba = estimator.predict_proba(X)  # type: ignore[attr-defined]
    assert np.allclose([p for _, p in answers], proba, rtol=0, atol=1e-12)
