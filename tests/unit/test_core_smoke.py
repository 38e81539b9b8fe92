"""The built-in model answers the contract through the framework-free service."""

from __future__ import annotations

import msgspec
import pytest

from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.service import Request, Service
from modelapi.source import ModelSource
from tests.conftest import PIMA_EXAMPLE


def test_builtin_model_answers_the_pima_example(
    pima_predictor: Predictor, pima_example_answer: dict[str, object]
) -> None:
    service = Service(ModelSource.of(pima_predictor), Settings())
    response = service.handle(Request("POST", "/predict", {}, PIMA_EXAMPLE))
    assert response.status == 200
    body = msgspec.json.decode(response.body)
    assert body["outcome"] == pima_example_answer["outcome"]
    assert body["probabilities"] == pytest.approx(pima_example_answer["probabilities"], abs=1e-12)
    assert response.headers["x-model-version"] == "diabetes:1"


def test_sample_row_predicts_one(pima_predictor: Predictor) -> None:
    [(label, _)] = pima_predictor.predict([[6, 148, 72, 35, 0, 33.6, 0.627, 50]])
    assert label == 1
