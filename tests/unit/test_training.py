"""Training: the contract numbers, the built-in bundle, every estimator, and round trips."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest

import modelapi
from modelapi.bundle import Bundle, read_bundle
from modelapi.errors import ConfigError, DataError
from modelapi.formats.linear import LinearSpec
from modelapi.formats.skops import read_estimator
from modelapi.predictor import Predictor
from modelapi.training.data import load_dataset
from modelapi.training.export import frame_rows
from modelapi.training.workflow import TrainResult, default_name, make_estimator, train
from tests.conftest import PIMA_COLUMNS
from tests.unit.test_data import write_diabetes, write_penguins

SAMPLE_ROW: list[float | str] = [6, 148, 72, 35, 0, 33.6, 0.627, 50]
SMALL_FOREST = {"n_estimators": 15}
COLUMNS = list(PIMA_COLUMNS)


@pytest.fixture(scope="session")
def pima_result(pima_csv: Path) -> TrainResult:
    return train(load_dataset(pima_csv), name="diabetes")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    write_penguins(folder / "penguins.csv")
    write_diabetes(folder / "diabetes.csv")
    return folder


def _split(result: TrainResult, csv: Path, **options: object) -> tuple[pd.DataFrame, pd.Series]:
    """The test split the result was evaluated on, rebuilt independently."""
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(csv)
    if options.get("drop_missing"):
        frame = frame.dropna().reset_index(drop=True)
    target = result.manifest.target.column
    y = frame.pop(target)
    _, X_test, _, y_test = train_test_split(frame, y, test_size=0.3, random_state=1)
    return X_test, y_test


def test_pima_accuracy_is_the_contract_number(pima_result: TrainResult) -> None:
    assert pima_result.metrics["accuracy"] == 0.7835497835497836


def test_sample_row_predicts_one(pima_result: TrainResult) -> None:
    [(label, probabilities)] = Predictor(pima_result.bundle).predict([SAMPLE_ROW])
    assert label == 1
    assert probabilities is not None
    sklearn_row = pd.DataFrame(
        [SAMPLE_ROW], columns=[f.column for f in pima_result.manifest.features]
    )
    assert pima_result.estimator.predict(sklearn_row)[0] == 1  # type: ignore[attr-defined]


def test_pipeline_fits_exactly_the_classic_notebook_model(
    pima_result: TrainResult, pima_csv: Path
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    array = pd.read_csv(pima_csv).values
    X, Y = array[:, 0:8], array[:, 8]
    X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.3, random_state=1)
    classic = LogisticRegression(solver="lbfgs", max_iter=1000).fit(X_train, Y_train)
    final = pima_result.estimator[-1]  # type: ignore[index]
    assert np.array_equal(final.coef_, classic.coef_)
    assert np.array_equal(final.intercept_, classic.intercept_)
    assert classic.score(X_test, Y_test) == pima_result.metrics["accuracy"]


def test_builtin_bundle_is_what_train_makes(
    pima_result: TrainResult, builtin_bundle: Bundle, pima_csv: Path
) -> None:
    """The shipped model is what `train` makes here, to what the contract promises.

    lbfgs runs on BLAS, whose kernels differ between CPUs (AMD and Intel) in the last digits:
    coefficients agree to a few digits, not bit for bit, and so do probabilities.
    """
    shipped, fresh = builtin_bundle.manifest, pima_result.manifest
    assert (shipped.features, shipped.target, shipped.classes) == (
        fresh.features,
        fresh.target,
        fresh.classes,
    )
    assert (shipped.serving, shipped.estimator, shipped.task, shipped.data) == (
        fresh.serving,
        fresh.estimator,
        fresh.task,
        fresh.data,
    )
    assert shipped.metrics["accuracy"] == fresh.metrics["accuracy"] == 0.7835497835497836
    assert set(shipped.artifacts) == {"linear.json", "model.skops", "report.html"}
    frame = pd.read_csv(pima_csv)
    rows = frame_rows(frame, shipped.features)
    old = Predictor(builtin_bundle).predict(rows)
    new = Predictor(pima_result.bundle).predict(rows)
    # lbfgs stops at its tolerance, so another BLAS stops elsewhere: 3e-5 apart measured.
    assert np.allclose([p for _, p in old], [p for _, p in new], atol=1e-3)
    # Labels agree wherever the probability is not within the tolerance of the boundary.
    assert all(a == b for (a, pa), (b, _) in zip(old, new, strict=True) if abs(pa[1] - 0.5) > 1e-5)
    expected = pima_result.estimator.predict(frame.drop(columns="Outcome"))  # type: ignore[attr-defined]
    assert [label for label, _ in new] == expected.tolist()
    [(label, _)] = Predictor(builtin_bundle).predict([[6, 148, 72, 35, 0, 33.6, 0.627, 50]])
    assert label == 1
    shipped_estimator = read_estimator(builtin_bundle)
    X = frame.drop(columns="Outcome")
    assert np.allclose(shipped_estimator.predict_proba(X), [p for _, p in old], atol=1e-12)  # type: ignore[attr-defined]


def test_manifest_is_complete(pima_result: TrainResult, pima_csv: Path) -> None:
    from sklearn import metrics as sk

    manifest = pima_result.manifest
    assert manifest.serving == "linear.json"
    assert set(manifest.artifacts) == {"linear.json", "model.skops", "report.html"}
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in manifest.artifacts)
    created = datetime.fromisoformat(manifest.created_at)
    assert created.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 3600
    versions = manifest.library_versions
    for name in ("python", "scikit-learn", "numpy", "skl2onnx", "onnx", "skops", "modelapi"):
        assert versions.get(name), name
    X_test, y_test = _split(pima_result, pima_csv)
    predicted = pima_result.estimator.predict(X_test)  # type: ignore[attr-defined]
    proba = pima_result.estimator.predict_proba(X_test)[:, 1]  # type: ignore[attr-defined]
    metrics = manifest.metrics
    assert metrics["precision"] == sk.precision_score(y_test, predicted)
    assert metrics["recall"] == sk.recall_score(y_test, predicted)
    assert metrics["f1"] == sk.f1_score(y_test, predicted)
    assert metrics["roc_auc"] == sk.roc_auc_score(y_test, proba)
    assert metrics["confusion_matrix"] == sk.confusion_matrix(y_test, predicted).tolist()
    assert (metrics["n_train"], metrics["n_test"]) == (
        len(pd.read_csv(pima_csv)) - len(X_test),
        len(X_test),
    )
    # The manifest as written is plain JSON that decodes to the same metrics.
    assert msgspec.json.decode(msgspec.json.encode(metrics)) == metrics


def test_report_is_self_contained(pima_result: TrainResult) -> None:
    page = pima_result.bundle.files["report.html"].decode()
    assert page.startswith("<!doctype html>")
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?(?!data:)[a-z]+:""", page)
    assert "<script" not in page
    assert page.count("data:image/png;base64,") == 2  # confusion matrix and ROC curve
    for text in ("Glucose", "0.7835497835497836", "Confusion matrix", "ROC curve", "class balance"):
        assert text.lower() in page.lower(), text


def test_skops_copy_predicts_like_the_estimator(pima_result: TrainResult, pima_csv: Path) -> None:
    X = pd.read_csv(pima_csv).drop(columns="Outcome")
    copy = read_estimator(pima_result.bundle)
    assert np.array_equal(copy.predict_proba(X), pima_result.estimator.predict_proba(X))  # type: ignore[attr-defined]


def _round_trip(result: TrainResult, store: Path, csv: Path, **options: object) -> None:
    """Store, read back, and compare the served answers with scikit-learn's on the test split."""
    stored = result.store(str(store))
    bundle = read_bundle(store / stored.manifest.name / str(stored.manifest.version))
    assert bundle.files == result.bundle.files
    predictor = Predictor(bundle)
    X_test, _ = _split(result, csv, **options)
    answers = predictor.predict(frame_rows(X_test, bundle.manifest.features))
    estimator = result.estimator
    tolerance = 1e-5 if bundle.manifest.serving == "model.onnx" else 1e-12
    if bundle.manifest.task == "regression":
        expected = estimator.predict(X_test)  # type: ignore[attr-defined]
        for (value, none), reference in zip(answers, expected, strict=True):
            assert none is None
            assert math.isclose(value, reference, rel_tol=tolerance, abs_tol=tolerance)  # type: ignore[arg-type]
        return
    labels = estimator.predict(X_test).tolist()  # type: ignore[attr-defined]
    proba = estimator.predict_proba(X_test)  # type: ignore[attr-defined]
    assert [label for label, _ in answers] == labels
    for (_, probabilities), reference in zip(answers, proba, strict=True):
        assert probabilities is not None
        assert np.allclose(probabilities, reference, rtol=0, atol=tolerance)


@pytest.mark.parametrize(
    ("model", "serving"),
    [
        ("logistic_regression", "linear.json"),
        ("random_forest", "pipeline.json"),
        ("gradient_boosting", "pipeline.json"),
    ],
)
def test_penguins_multiclass_with_text_columns(
    data_dir: Path, tmp_path: Path, model: str, serving: str
) -> None:
    csv = data_dir / "penguins.csv"
    dataset = load_dataset(csv, drop_missing=True)
    params = None if model == "logistic_regression" else SMALL_FOREST
    result = train(dataset, model=model, params=params)
    assert result.manifest.serving == serving
    assert result.manifest.classes == ("Adelie", "Chinstrap", "Gentoo")
    assert "roc_auc" not in result.metrics
    assert result.metrics["average"] == "macro"
    if serving == "linear.json":
        spec = msgspec.json.decode(result.bundle.files["linear.json"], type=LinearSpec)
        assert len(spec.intercept) == 3
        island = [f.key for f in result.manifest.features].index("island")
        assert set(spec.weights[island]) == {"Biscoe", "Dream", "Torgersen"}  # type: ignore[arg-type]
    _round_trip(result, tmp_path / "store", csv, drop_missing=True)


@pytest.mark.parametrize(
    ("model", "serving"),
    [
        ("linear_regression", "linear.json"),
        ("ridge", "linear.json"),
        ("random_forest", "pipeline.json"),
    ],
)
def test_regression_target(data_dir: Path, tmp_path: Path, model: str, serving: str) -> None:
    from sklearn import metrics as sk

    csv = data_dir / "diabetes.csv"
    dataset = load_dataset(csv)
    assert dataset.task == "regression"
    result = train(dataset, model=model, params=SMALL_FOREST if model == "random_forest" else None)
    assert result.manifest.serving == serving
    assert result.manifest.classes is None
    X_test, y_test = _split(result, csv)
    predicted = result.estimator.predict(X_test)  # type: ignore[attr-defined]
    assert result.metrics["mae"] == sk.mean_absolute_error(y_test, predicted)
    assert result.metrics["rmse"] == pytest.approx(
        math.sqrt(sk.mean_squared_error(y_test, predicted))
    )
    assert result.metrics["r2"] == sk.r2_score(y_test, predicted)
    page = result.bundle.files["report.html"].decode()
    assert 'alt="residual plot"' in page
    _round_trip(result, tmp_path / "store", csv)


def test_default_estimators_and_random_forest_on_pima(pima_csv: Path, tmp_path: Path) -> None:
    result = train(
        load_dataset(pima_csv), model="random_forest", params=SMALL_FOREST, random_state=7
    )
    assert result.manifest.serving == "pipeline.json"
    assert result.estimator[-1].random_state == 7  # type: ignore[index]
    [(label, _)] = Predictor(result.bundle).predict([SAMPLE_ROW])
    expected = result.estimator.predict(pd.DataFrame([SAMPLE_ROW], columns=COLUMNS))  # type: ignore[attr-defined]
    assert label == expected.tolist()[0]


def test_store_assigns_new_versions(pima_result: TrainResult, tmp_path: Path) -> None:
    first = pima_result.store(str(tmp_path))
    second = pima_result.store(str(tmp_path))
    assert (first.model_id, second.model_id) == ("diabetes:1", "diabetes:2")
    assert pima_result.manifest.version == 0


@pytest.mark.parametrize(
    ("model", "task", "words"),
    [
        ("linear_regression", "classification", "does not do classification"),
        ("logistic_regression", "regression", "does not do regression"),
        ("svm", "classification", "not known"),
    ],
)
def test_model_must_fit_the_task(model: str, task: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        make_estimator(model, task, ())  # type: ignore[arg-type]


def test_bad_options_are_config_errors(pima_csv: Path) -> None:
    dataset = load_dataset(pima_csv)
    with pytest.raises(ConfigError, match="test size"):
        train(dataset, test_size=1.5)
    with pytest.raises(ConfigError, match="model name"):
        train(dataset, name="../evil")
    with pytest.raises(ConfigError, match="params"):
        train(dataset, params={"no_such_param": 1})


def test_default_name_comes_from_the_source() -> None:
    assert default_name("data/Pima Indians.csv") == "pima_indians"
    assert default_name("https://example.org/x/diabetes.csv") == "diabetes"


def test_python_api_trains_a_dataframe_and_stores_it(pima_csv: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(pima_csv)
    result = modelapi.train(frame, name="notebook", store=str(tmp_path))
    assert result.model_id == "notebook:1"
    assert result.metrics["accuracy"] == 0.7835497835497836
    assert read_bundle(tmp_path / "notebook" / "1").manifest.data == result.manifest.data
    unstored = modelapi.train(frame, name="notebook", store=None)
    assert unstored.manifest.version == 0
    with pytest.raises(DataError):
        modelapi.train(frame, target="absent", store=None)


def test_a_result_shows_in_one_line_and_a_short_table(pima_result: TrainResult) -> None:
    shown = repr(pima_result)
    assert shown == (
        "<TrainResult diabetes (not stored): logistic_regression, served from linear.json;"
        f" accuracy 0.7835, f1 {pima_result.metrics['f1']:.4g},"
        f" roc_auc {pima_result.metrics['roc_auc']:.4g}>"
    )
    page = pima_result._repr_html_()
    assert len(page) < 2000
    assert "<th style='text-align:left'>accuracy</th><td>0.7835</td>" in page
    assert "linear.json" in page
