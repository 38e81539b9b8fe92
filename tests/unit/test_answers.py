"""The one answer path: every JSON body is decoded, predicted and encoded the same way.

The oracles are computed here, independently of modelapi's code: the decision summed left to
right, the logistic function, and the answer as a plain dict encoded by msgspec.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from modelapi.config import Settings
from modelapi.metrics import Metrics
from modelapi.predictor import Predictor
from modelapi.schema import Feature, Target
from modelapi.service import Request, Service
from modelapi.source import ModelSource
from tests.http.toy_models import HOSTILE_CATEGORY, toy_predictor
from tests.linear_models import linear_predictor

_FEATURES = (
    Feature(column="Width", key="width", type="number"),
    Feature(column="Legs", key="legs", type="integer"),
    Feature(column='Odd "key" \\ é', key="odd key é", type="number"),
)
# Labels whose JSON needs escaping, so the answer text is not just digits and quotes.
_CLASSES = ('no "x"', "yes\\é")
_TARGET = Target(column="Answer", key='answer "a"')
_JSON = {"content-type": "application/json"}


def _predictor(
    kind: str, intercept: float, weights: list[float], features: tuple[Feature, ...] = _FEATURES
) -> Predictor:
    spec = {"kind": kind, "intercept": [intercept], "weights": [[w] for w in weights]}
    classes = _CLASSES if kind == "logistic" else None
    return linear_predictor(spec, features, classes, target=_TARGET, name="numeric")


def _expected(kind: str, intercept: float, weights: list[float], row: dict[str, float]) -> object:
    """The answer to one row, from the formula (None when it is not a finite number).

    An infinite decision still has a probability (0 or 1); only NaN (inf - inf) has none.
    """
    z = intercept
    for feature, weight in zip(_FEATURES, weights, strict=True):
        z += weight * float(row[feature.key])
    if math.isnan(z) or (kind == "regression" and not math.isfinite(z)):
        return None
    if kind == "regression":
        return {_TARGET.key: z}
    p1 = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return {
        _TARGET.key: _CLASSES[z > 0],
        "probabilities": dict(zip(_CLASSES, (1 - p1, p1), strict=True)),
    }


def _answer(predictor: Predictor, body: object) -> tuple[int, bytes]:
    service = Service(ModelSource.of(predictor), Settings())
    response = service.handle(Request("POST", "/predict", _JSON, msgspec.json.encode(body)))
    return response.status, response.body


_weights = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
_numbers = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-300, 0.5, 1e308, -1e308]),
)


def _objects(data: st.DataObject) -> dict[str, float]:
    return {
        f.key: float(data.draw(st.integers(-(2**60), 2**60)))
        if f.type == "integer"
        else data.draw(_numbers)
        for f in _FEATURES
    }


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["logistic", "regression"]),
    intercept=st.one_of(_weights, st.sampled_from([0.0, -0.0, 1e-30, -1e-30])),
    weights=st.lists(st.one_of(_weights, st.just(0.0)), min_size=3, max_size=3),
    n_rows=st.integers(0, 6),
)
def test_answers_are_the_formula_encoded_as_plain_objects(
    data: st.DataObject, kind: str, intercept: float, weights: list[float], n_rows: int
) -> None:
    predictor = _predictor(kind, intercept, weights)
    rows = [_objects(data) for _ in range(n_rows)]
    expected = [_expected(kind, intercept, weights, row) for row in rows]
    status, body = _answer(predictor, rows)
    if None in expected:
        assert status == 422
    else:
        assert (status, body) == (200, msgspec.json.encode(expected))
    if rows:
        status, body = _answer(predictor, rows[0])
        if expected[0] is None:
            assert status == 422
        else:
            assert (status, body) == (200, msgspec.json.encode(expected[0]))


@pytest.mark.parametrize(("intercept", "label"), [(0.0, 0), (-0.0, 0), (1e-30, 1), (-1e-30, 0)])
def test_the_decision_boundary_is_scikit_learns(intercept: float, label: int) -> None:
    """A decision of exactly 0 is the first class; 1e-30 is the second at probability 0.5."""
    features = (Feature(column="x", key="x", type="number"),)
    estimator = LogisticRegression()
    estimator.classes_ = np.array([0, 1])
    estimator.coef_ = np.array([[0.0]])
    estimator.intercept_ = np.array([intercept])
    assert estimator.predict([[1.0]]).tolist() == [label]
    expected_probabilities = estimator.predict_proba([[1.0]]).tolist()[0]
    spec = {"kind": "logistic", "intercept": [intercept], "weights": [[0.0]]}
    predictor = linear_predictor(spec, features, (0, 1))
    for body in ({"x": 1.0}, [{"x": 1.0}, {"x": 2.0}]):
        status, answer = _answer(predictor, body)
        assert status == 200
        for item in answer_list(answer):
            assert item["y"] == label
            assert list(item["probabilities"].values()) == expected_probabilities


def answer_list(body: bytes) -> list[dict[str, object]]:
    decoded = msgspec.json.decode(body)
    return decoded if isinstance(decoded, list) else [decoded]


def test_the_contract_row_predicts_1(pima_predictor: Predictor) -> None:
    row = dict(zip(pima_predictor.features.keys, [6, 148, 72, 35, 0, 33.6, 0.627, 50], strict=True))
    status, body = _answer(pima_predictor, row)
    assert status == 200
    assert msgspec.json.decode(body)["outcome"] == 1


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_models_with_categories_or_several_outputs_answer_as_plain_objects(task: str) -> None:
    predictor = toy_predictor(task)
    rows = [
        {"colour": "red", "size_cm": 2.5, "count": 3},
        {"colour": HOSTILE_CATEGORY, "size_cm": 1, "count": 0},
    ]
    status, body = _answer(predictor, rows)
    assert status == 200
    predictions = predictor.predict(predictor.features.parse_rows(rows)[0])
    key = predictor.manifest.target.key
    classes = predictor.manifest.classes
    if classes is None:
        expected = [{key: value} for value, _ in predictions]
    else:
        expected = [
            {key: label, "probabilities": dict(zip(map(str, classes), probs or (), strict=True))}
            for label, probs in predictions
        ]
    assert body == msgspec.json.encode(expected)


def test_metrics_count_the_answered_labels() -> None:
    predictor = _predictor("logistic", 0.0, [1.0, 0.0, 0.0])
    metrics = Metrics()
    service = Service(ModelSource.of(predictor), Settings(), metrics=metrics)
    rows = [{"width": w, "legs": 0.0, "odd key é": 0.0} for w in (1.0, 2.0, -1.0)]
    assert (
        service.handle(Request("POST", "/predict", _JSON, msgspec.json.encode(rows))).status == 200
    )
    assert metrics.predictions == {_CLASSES[1]: 2, _CLASSES[0]: 1}


def test_a_reloaded_model_answers_with_its_own_encoder(pima_predictor: Predictor) -> None:
    source = ModelSource.of(pima_predictor)
    service = Service(source, Settings())
    body = msgspec.json.encode({"width": 2.0, "legs": 4.0, "odd key é": 0.0})
    assert service.handle(Request("POST", "/predict", {}, body)).status == 422
    source.predictor = _predictor("regression", 1.0, [2.0, 3.0, 4.0])
    answer = service.handle(Request("POST", "/predict", {}, body))
    assert answer.status == 200
    assert msgspec.json.decode(answer.body) == {'answer "a"': 1.0 + 2.0 * 2.0 + 3.0 * 4.0}


def test_keys_msgspec_cannot_rename_are_read_by_parse_rows() -> None:
    features = (*_FEATURES[:2], Feature(column="Q", key='q"\\\x01', type="number"))
    predictor = _predictor("regression", 1.0, [1.0, 2.0, 3.0], features)
    assert predictor.features.decode_valid(b"{}") is None
    status, body = _answer(predictor, {"width": 1.0, "legs": 2.0, 'q"\\\x01': 3.0})
    assert status == 200
    assert msgspec.json.decode(body) == {'answer "a"': 1.0 + 1.0 + 4.0 + 9.0}


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["logistic", "regression"]),
    intercept=st.one_of(_weights, st.sampled_from([0.0, -0.0, 1e-30, -1e-30])),
    weights=st.lists(st.one_of(_weights, st.just(0.0)), min_size=3, max_size=3),
    n_rows=st.integers(0, 30),
)
def test_batches_answered_from_a_column_are_the_answers_of_predict(
    data: st.DataObject, kind: str, intercept: float, weights: list[float], n_rows: int
) -> None:
    predictor = _predictor(kind, intercept, weights)
    objects = [_objects(data) for _ in range(n_rows)]
    rows = [tuple(row[f.key] for f in _FEATURES) for row in objects]
    answered = predictor.answer_many(rows)
    expected = [_expected(kind, intercept, weights, row) for row in objects]
    if answered is None:
        # Only a number that is not finite, or a probability of exactly 0.5, is left to predict.
        if None in expected:
            return
        if kind == "regression":
            assert not math.isfinite(sum(e[_TARGET.key] for e in expected))  # type: ignore[index]
        else:
            assert 0.5 in [e["probabilities"][_CLASSES[1]] for e in expected]  # type: ignore[index]
        return
    assert None not in expected
    predictions = predictor.predict(rows)
    assert answered[0] == predictor.answers.many(predictions) == msgspec.json.encode(expected)
    metrics = Metrics()
    metrics.count_predictions(predictions)
    assert answered[1] == metrics.predictions


def test_ordinary_batches_are_answered_from_a_column() -> None:
    for kind in ("logistic", "regression"):
        predictor = _predictor(kind, 0.25, [0.5, -1.0, 2.0])
        rows = [(float(i), float(i % 3), i / 7) for i in range(100)]
        answered = predictor.answer_many(rows)
        assert answered is not None, kind
        assert answered[0] == predictor.answers.many(predictor.predict(rows))
