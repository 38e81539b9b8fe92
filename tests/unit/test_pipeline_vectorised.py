"""The numpy evaluator of pipeline.json gives the compiled code's answers, block by block.

Batch bodies (`PipelineModel.predict` on many rows) and `modelapi predict`'s block path use
it; without numpy, or with text inputs, the compiled code answers everything.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelapi.answers import answer_columns
from modelapi.bundle import Task
from modelapi.formats.pipeline import PipelineModel
from modelapi.formats.pipeline.model import VECTORISED_ROWS
from modelapi.formats.pipeline.vectorised import evaluator_for
from modelapi.predictor import Predictor
from modelapi.scoring.scorers import LocalScorer
from modelapi.scoring.stream import score_csv
from modelapi.training.check_rows import frame_rows
from modelapi.training.data import load_dataset
from modelapi.training.workflow import train
from tests.unit.test_pipeline_exactness import (
    _preprocessing,
    _split,
    probes,
    served,
    table,
)


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin on a busy machine: one is plenty here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _numeric(name: str) -> tuple[pd.DataFrame, pd.Series]:
    """A bundled table with missing cells and the text column as number codes."""
    X, y = table(name)
    codes = {"red": 0, "green": 1, "blue": 2, "amber": 3, "violet": 4}
    X["tone"] = X["tone"].map(codes).astype(float)
    return X, y


def _models() -> list[tuple[str, Task, str]]:
    return [
        ("cancer", "classification", "forest"),
        ("wine", "classification", "forest"),
        ("diabetes", "regression", "forest"),
        ("cancer", "classification", "boosting"),
        ("wine", "classification", "hist"),
        ("diabetes", "regression", "poisson"),
        ("cancer", "classification", "linear"),
        ("iris", "classification", "sgd"),
        ("diabetes", "regression", "linear"),
    ]


def _fitted(name: str, task: Task, kind: str) -> tuple[object, pd.DataFrame]:
    from sklearn import ensemble, linear_model
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    X, y = _numeric(name)
    if kind == "poisson":
        y = y - y.min() + 1.0
    X_train, y_train, X_test = _split(X, y)
    suffix = "Classifier" if task == "classification" else "Regressor"
    numbers = [c for c in X.columns if c != "tone"]
    model: object
    if kind == "forest":
        model = getattr(ensemble, "RandomForest" + suffix)(n_estimators=8, random_state=0)
    elif kind == "boosting":
        model = make_pipeline(
            SimpleImputer(), getattr(ensemble, "GradientBoosting" + suffix)(n_estimators=10)
        )
    elif kind in ("hist", "poisson"):
        loss = {"hist": "log_loss", "poisson": "poisson"}[kind]
        model = getattr(ensemble, "HistGradientBoosting" + suffix)(
            loss=loss, max_iter=15, categorical_features=["tone"], random_state=0
        )
    else:
        codes = make_pipeline(
            SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
        )
        columns = ColumnTransformer(
            [
                ("n", _preprocessing("standard", X[numbers]), numbers),
                ("c", codes, ["tone"]),
                (
                    "o",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=-1,
                        encoded_missing_value=-2,
                    ),
                    ["tone"],
                ),
            ]
        )
        final = (
            linear_model.SGDClassifier(loss="log_loss", random_state=0)
            if kind == "sgd"
            else linear_model.LogisticRegression(max_iter=5000)
            if task == "classification"
            else linear_model.Ridge()
        )
        model = make_pipeline(columns, final)
    return model.fit(X_train, y_train), X_test  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "task", "kind"), _models())
def test_the_evaluator_answers_as_the_compiled_code(name: str, task: Task, kind: str) -> None:
    estimator, X_test = _fitted(name, task, kind)
    model, features = served(estimator, X_test, task)
    evaluator = model.block_evaluator()
    assert evaluator is not None
    compared = 0
    for frame in probes(model, X_test, features):
        rows = frame_rows(frame, features)
        assert evaluator.predict_rows(rows) == model.predict_compiled(rows)
        compared += len(rows)
    assert compared > len(X_test)


def test_big_batches_take_the_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    estimator, X_test = _fitted("cancer", "classification", "forest")
    model, features = served(estimator, X_test, "classification")
    rows = frame_rows(pd.concat([X_test] * 4, ignore_index=True), features)
    assert len(rows) >= VECTORISED_ROWS
    expected = model.predict_compiled(rows)
    calls: list[int] = []
    evaluator = model.block_evaluator()
    original = evaluator.predict_rows

    def spy(batch: list[object]) -> object:
        calls.append(len(batch))
        return original(batch)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluator, "predict_rows", spy)
    assert model.predict(rows) == expected
    assert model.predict(rows[:10]) == expected[:10]
    assert calls == [len(rows)]


def test_without_numpy_the_compiled_code_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    estimator, X_test = _fitted("diabetes", "regression", "forest")
    model, features = served(estimator, X_test, "regression")
    rows = frame_rows(pd.concat([X_test] * 5, ignore_index=True), features)
    expected = model.predict_compiled(rows)
    monkeypatch.setitem(sys.modules, "numpy", None)
    fresh = PipelineModel(model.spec, task="regression", classes=None, stages=model.stages)
    assert evaluator_for(fresh) is None
    assert fresh.predict(rows) == expected


def test_text_inputs_have_no_evaluator() -> None:
    from sklearn.ensemble import RandomForestClassifier

    from tests.unit.test_pipeline_exactness import _encoded

    X, y = table("iris")
    estimator = _encoded(X, RandomForestClassifier(n_estimators=3, random_state=0)).fit(X, y)
    model, _ = served(estimator, X, "classification")
    assert model.block_evaluator() is None


def _score(predictor: Predictor, data: bytes, *, columnar: bool) -> bytes:
    out = io.BytesIO()

    def scorer_for(header: list[str]) -> tuple[LocalScorer, list[str]]:
        scorer = LocalScorer(predictor, header, columnar=columnar)
        return scorer, answer_columns(predictor.manifest)

    score_csv(io.BytesIO(data), out, scorer_for, chunk_rows=300)
    return out.getvalue()


@pytest.mark.parametrize("model", ["random_forest", "hist_gradient_boosting"])
def test_csv_blocks_answer_as_the_record_path(pima_csv: Path, model: str) -> None:
    dataset = load_dataset(pima_csv)
    params = {"n_estimators": 10} if model == "random_forest" else {"max_iter": 10}
    result = train(dataset, model=model, params=params)
    predictor = Predictor(result.bundle)
    scorer = LocalScorer(predictor, [f.column for f in result.manifest.features])
    assert scorer._columnar is not None
    X = pd.concat([dataset.X] * 2, ignore_index=True)
    data = X.to_csv(index=False).encode()
    blocks = _score(predictor, data, columnar=True)
    records = _score(predictor, data, columnar=False)
    assert blocks == records
    lines = blocks.decode().splitlines()
    assert len(lines) == len(X) + 1
    expected = result.estimator.predict(X)  # type: ignore[attr-defined]
    assert [int(line.split(",")[8]) for line in lines[1:]] == expected.tolist()
    assert np.isclose(float(lines[1].split(",")[9]), result.estimator.predict_proba(X)[0][0])  # type: ignore[attr-defined]
