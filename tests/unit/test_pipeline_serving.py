"""pipeline.json behind a live server: /predict (JSON, CSV, big batches) and V2 infer, exactly.

A HistGradientBoosting with a text feature and a forest are trained on Pima, stored, and
served by uvicorn on a real socket; every answer is scikit-learn's own.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelapi.app import create_app
from modelapi.config import Settings
from modelapi.training.data import load_dataset
from modelapi.training.workflow import TrainResult, train
from tests.servers import HttpSend, serve_app


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin on a busy machine: one is plenty here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def pima_with_text(pima_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = pd.read_csv(pima_csv)
    frame.insert(
        0, "Age band", pd.cut(frame["Age"], [0, 30, 50, 200], labels=["young", "mid", "old"])
    )
    frame["Age band"] = frame["Age band"].astype(str)
    path = tmp_path_factory.mktemp("pima-text") / "pima_text.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module", params=["hist_gradient_boosting", "random_forest"])
def stored(
    request: pytest.FixtureRequest, pima_with_text: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainResult, str, pd.DataFrame]:
    dataset = load_dataset(pima_with_text)
    params = {"max_iter": 20} if request.param == "hist_gradient_boosting" else {"n_estimators": 10}
    result = train(dataset, model=request.param, params=params, name="pima")
    assert result.manifest.serving == "pipeline.json"
    store = tmp_path_factory.mktemp("store")
    result.store(str(store))
    X = dataset.X.astype({"Age band": str})
    return result, str(store), X


def test_predict_json_csv_and_v2_answer_as_scikit_learn(
    stored: tuple[TrainResult, str, pd.DataFrame],
) -> None:
    result, store, X = stored
    features = result.manifest.features
    estimator = result.estimator
    rows = X.iloc[:600]
    labels = estimator.predict(rows).tolist()  # type: ignore[attr-defined]
    proba = estimator.predict_proba(rows).tolist()  # type: ignore[attr-defined]
    body = [
        {f.key: (row[f.column] if f.type == "category" else float(row[f.column])) for f in features}
        for _, row in rows.iterrows()
    ]
    app = create_app(Settings(model="pima:1", store=store))
    with serve_app(app) as url, HttpSend(url) as send:
        status, _, single = send(
            "POST", "/predict", {"content-type": "application/json"}, json.dumps(body[0]).encode()
        )
        assert status == 200, single
        answer = json.loads(single)
        assert answer["outcome"] == labels[0]
        assert np.allclose(list(answer["probabilities"].values()), proba[0], rtol=0, atol=1e-12)
        # 600 rows: the numpy evaluator answers; the same numbers.
        status, _, batch = send(
            "POST", "/predict", {"content-type": "application/json"}, json.dumps(body).encode()
        )
        assert status == 200, batch
        answers = json.loads(batch)
        assert [a["outcome"] for a in answers] == labels
        got = [list(a["probabilities"].values()) for a in answers]
        # Trees sum exactly; probabilities through exp are equal within 1e-12.
        assert np.allclose(got, proba, rtol=0, atol=1e-12)
        assert got == proba or result.manifest.estimator != "random_forest"
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow([f.column for f in features])
        writer.writerows(rows[[f.column for f in features]].values.tolist()[:50])
        status, _, scored = send(
            "POST",
            "/predict",
            {"content-type": "text/csv", "accept": "text/csv"},
            text.getvalue().encode(),
        )
        assert status == 200, scored
        lines = list(csv.reader(io.StringIO(scored.decode())))
        assert [int(line[0]) for line in lines[1:]] == labels[:50]
        tensors = [
            {
                "name": f.key,
                "shape": [20],
                "datatype": "BYTES" if f.type == "category" else "FP64",
                "data": [b[f.key] for b in body[:20]],
            }
            for f in features
        ]
        status, _, inferred = send(
            "POST",
            "/v2/models/pima/infer",
            {"content-type": "application/json"},
            json.dumps({"inputs": tensors}).encode(),
        )
        assert status == 200, inferred
        outcome, probabilities = json.loads(inferred)["outputs"]
        assert outcome["data"] == labels[:20]
        assert np.allclose(
            np.reshape(probabilities["data"], (20, 2)), proba[:20], rtol=0, atol=1e-12
        )
