"""Importing a pickle (only with trust) and saving a notebook estimator, both into safe bundles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelapi
from modelapi.bundle import read_bundle
from modelapi.errors import BundleError, DataError, TrainingError
from modelapi.predictor import Predictor
from modelapi.training.export import frame_rows
from modelapi.training.pickle_import import import_pickle, load_pickle, save_estimator
from tests.unit.test_data import write_penguins

SAMPLE_ROW: list[float | str] = [6, 148, 72, 35, 0, 33.6, 0.627, 50]


@pytest.fixture(scope="session")
def classic_pickle(pima_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The classic notebook's finalized_model.pkl: a LogisticRegression fitted on an array."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    array = pd.read_csv(pima_csv).values
    X, Y = array[:, 0:8], array[:, 8]
    X_train, _, Y_train, _ = train_test_split(X, Y, test_size=0.3, random_state=1)
    model = LogisticRegression(solver="lbfgs", max_iter=1000).fit(X_train, Y_train)
    path = tmp_path_factory.mktemp("pickles") / "finalized_model.pkl"
    with open(path, "wb") as handle:
        pickle.dump(model, handle)
    return path


def test_pickle_is_refused_without_trust(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    # Unpickling this would create the marker file; refusing must not unpickle at all.
    path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    with pytest.raises(BundleError, match="--trust-pickle"):
        load_pickle(path, trust_pickle=False)
    with pytest.raises(BundleError, match="--trust-pickle"):
        import_pickle(path, trust_pickle=False)
    assert not marker.exists()


def test_classic_pickle_becomes_the_contract_bundle(classic_pickle: Path, pima_csv: Path) -> None:
    result = import_pickle(classic_pickle, trust_pickle=True, data=pima_csv, name="classic")
    assert result.metrics["accuracy"] == 0.7835497835497836
    manifest = result.manifest
    assert manifest.serving == "linear.json"
    assert manifest.estimator == "logistic_regression"
    assert manifest.classes == (0, 1)
    assert (manifest.target.key, manifest.features[6].key) == (
        "outcome",
        "diabetes_pedigree_function",
    )
    assert set(result.bundle.files) == {"linear.json", "model.skops", "report.html"}
    [(label, _)] = Predictor(result.bundle).predict([SAMPLE_ROW])
    assert label == 1


def test_import_needs_data_when_the_estimator_has_no_feature_names(classic_pickle: Path) -> None:
    with pytest.raises(DataError, match="--data CSV"):
        import_pickle(classic_pickle, trust_pickle=True)


def test_import_without_data_uses_feature_names(pima_csv: Path, tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    frame = pd.read_csv(pima_csv)
    X, y = frame.drop(columns="Outcome"), frame["Outcome"]
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    path = tmp_path / "forest.pkl"
    path.write_bytes(pickle.dumps(model))
    result = import_pickle(path, trust_pickle=True, target="Outcome")
    assert result.manifest.serving == "pipeline.json"
    assert [f.column for f in result.manifest.features] == list(X.columns)
    assert {f.type for f in result.manifest.features} == {"number"}
    assert result.manifest.data is None
    answers = Predictor(result.bundle).predict(frame_rows(X, result.manifest.features))
    assert [label for label, _ in answers] == model.predict(X).tolist()


@pytest.mark.parametrize(
    ("payload", "error", "words"),
    [
        (pickle.dumps({"not": "a model"}), TrainingError, "not a scikit-learn estimator"),
        (b"\x80\x04garbage", BundleError, "cannot be unpickled"),
    ],
)
def test_import_refuses_what_is_not_a_model(
    tmp_path: Path, payload: bytes, error: type[Exception], words: str
) -> None:
    path = tmp_path / "thing.pkl"
    path.write_bytes(payload)
    with pytest.raises(error, match=words):
        import_pickle(path, trust_pickle=True)


def test_import_refuses_an_unfitted_estimator(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "unfitted.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression()))
    with pytest.raises(TrainingError, match="not fitted"):
        import_pickle(path, trust_pickle=True)


def test_import_checks_the_feature_count(
    classic_pickle: Path, tmp_path: Path, pima_csv: Path
) -> None:
    frame = pd.read_csv(pima_csv).drop(columns="Age")
    frame.to_csv(tmp_path / "fewer.csv", index=False)
    with pytest.raises(DataError, match="expects 8 features but the data has 7"):
        import_pickle(classic_pickle, trust_pickle=True, data=tmp_path / "fewer.csv")


def test_missing_pickle_file(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such file"):
        load_pickle(tmp_path / "absent.pkl", trust_pickle=True)


@pytest.fixture(scope="session")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = write_penguins(tmp_path_factory.mktemp("penguins") / "penguins.csv")
    return pd.read_csv(path).dropna().reset_index(drop=True)


def test_save_a_notebook_pipeline_with_text_columns(penguins: pd.DataFrame, tmp_path: Path) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = penguins.drop(columns="species"), penguins["species"]
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["island", "sex"]), remainder="passthrough"),
        GradientBoostingClassifier(n_estimators=10, random_state=0),
    ).fit(X, y)
    result = modelapi.save(model, X, name="penguins", store=str(tmp_path), y_sample=y)
    assert result.model_id == "penguins:1"
    bundle = read_bundle(tmp_path / "penguins" / "1")
    assert bundle.manifest.serving == "pipeline.json"
    assert bundle.manifest.target.column == "species"
    assert bundle.manifest.metrics["accuracy"] == model.score(X, y)
    answers = Predictor(bundle).predict(frame_rows(X, bundle.manifest.features))
    assert [label for label, _ in answers] == model.predict(X).tolist()
    assert np.allclose([p for _, p in answers], model.predict_proba(X), rtol=0, atol=1e-5)


def test_save_a_linear_pipeline_folds_it(penguins: pd.DataFrame) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = penguins.drop(columns="species"), penguins["species"]
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["island", "sex"]), remainder="passthrough"),
        LogisticRegression(max_iter=5000),
    ).fit(X, y)
    result = save_estimator(model, X, name="penguins")
    assert result.manifest.serving == "linear.json"
    assert result.metrics["format_check"]["max_difference"] <= 1e-12  # type: ignore[index]
    assert "accuracy" not in result.metrics


def test_save_needs_column_names(pima_csv: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.read_csv(pima_csv)
    X = frame.drop(columns="Outcome").to_numpy()
    model = LogisticRegression(max_iter=1000).fit(X, frame["Outcome"].to_numpy())
    with pytest.raises(DataError, match="DataFrame"):
        save_estimator(model, X, name="classic")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="y_sample has 3 values"):
        save_estimator(model, frame.drop(columns="Outcome"), name="classic", y_sample=[0, 1, 0])
