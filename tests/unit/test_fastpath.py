"""The fast path of /predict answers exactly as the general path does, or steps aside."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelapi import batch
from modelapi.config import Settings
from modelapi.errors import InvalidInput
from modelapi.fastpath import LinearFastPath
from modelapi.metrics import Metrics
from modelapi.predictor import Predictor
from modelapi.schema import Feature, Target
from modelapi.service import Request, Response, Service
from modelapi.source import ModelSource
from tests.http.toy_models import toy_predictor
from tests.linear_models import linear_predictor

_FEATURES = (
    Feature(column="Width", key="width", type="number"),
    Feature(column="Legs", key="legs", type="integer"),
    Feature(column='Odd "key" \\ é', key="odd key é", type="number"),
)
# Labels whose JSON needs escaping, so the answer text is not just digits and quotes.
_CLASSES = ('no "x"', "yes\\é")


def _predictor(
    kind: str, intercept: float, weights: list[float], features: tuple[Feature, ...] = _FEATURES
) -> Predictor:
    spec = {"kind": kind, "intercept": [intercept], "weights": [[w] for w in weights]}
    classes = _CLASSES if kind == "logistic" else None
    return linear_predictor(
        spec, features, classes, target=Target(column="Answer", key='answer "a"'), name="numeric"
    )


def _general(predictor: Predictor, body: bytes) -> tuple[bytes, dict[str, int]] | type:
    """The answer and label counts of the general path, or the error type it raises."""
    decoded = predictor.features.decode_valid(body)
    assert decoded is not None
    rows, is_batch = predictor.features.rows_of(decoded)
    try:
        predictions = predictor.predict(rows)
    except InvalidInput as exc:
        return type(exc)
    metrics = Metrics()
    metrics.count_predictions(predictions)
    if is_batch:
        return msgspec.json.encode(batch.answers(predictor, predictions)), metrics.predictions
    return msgspec.json.encode(batch.answer(predictor, predictions[0])), metrics.predictions


def _check(predictor: Predictor, body: bytes) -> bool:
    """Assert the fast path agrees with the general one; return whether it answered."""
    fast_path = LinearFastPath.of(predictor)
    assert fast_path is not None
    decoded = predictor.features.decode_valid(body)
    assert decoded is not None
    answered = fast_path.answer(decoded)
    if answered is None:
        return False
    assert (answered.body, answered.counts) == _general(predictor, body)
    return True


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
    intercept=_weights,
    weights=st.lists(_weights, min_size=3, max_size=3),
    n_rows=st.integers(0, 6),
)
def test_fast_path_agrees_with_the_general_path(
    data: st.DataObject, kind: str, intercept: float, weights: list[float], n_rows: int
) -> None:
    predictor = _predictor(kind, intercept, weights)
    rows = [_objects(data) for _ in range(n_rows)]
    _check(predictor, msgspec.json.encode(rows))
    if rows:
        _check(predictor, msgspec.json.encode(rows[0]))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_pima_batches_take_the_fast_path_with_the_same_answers(
    seed: int, pima_predictor: Predictor
) -> None:
    import random

    rng = random.Random(seed)
    rows = [
        {
            f.key: float(rng.randint(0, 200)) if f.type == "integer" else rng.uniform(0, 70)
            for f in pima_predictor.features.features
        }
        for _ in range(rng.randint(1, 300))
    ]
    assert _check(pima_predictor, msgspec.json.encode(rows))


def test_the_contract_row_predicts_1_on_the_fast_path(pima_predictor: Predictor) -> None:
    row = dict(zip(pima_predictor.features.keys, [6, 148, 72, 35, 0, 33.6, 0.627, 50], strict=True))
    fast_path = LinearFastPath.of(pima_predictor)
    assert fast_path is not None
    answered = fast_path.answer(pima_predictor.features.decode_valid(msgspec.json.encode(row)))
    assert answered is not None
    assert msgspec.json.decode(answered.body)["outcome"] == 1
    assert answered.counts == {"1": 1}


@pytest.mark.parametrize("kind", ["logistic", "regression"])
def test_a_decision_past_a_float_steps_aside(kind: str) -> None:
    predictor = _predictor(kind, 0.0, [1e300, 1e300, -1e300])
    fast_path = LinearFastPath.of(predictor)
    assert fast_path is not None
    for row in ({"width": 1e300, "legs": 0.0, "odd key é": 1e300},):
        for body in (row, [row]):
            decoded = predictor.features.decode_valid(msgspec.json.encode(body))
            assert fast_path.answer(decoded) is None


def test_a_probability_of_one_half_steps_aside() -> None:
    # A decision of 1e-30 is class 1, yet its probability rounds to exactly 0.5.
    predictor = _predictor("logistic", 1e-30, [0.0, 0.0, 0.0])
    fast_path = LinearFastPath.of(predictor)
    assert fast_path is not None
    row = {"width": 1.0, "legs": 1.0, "odd key é": 1.0}
    assert fast_path.answer(predictor.features.decode_valid(msgspec.json.encode([row]))) is None
    single = fast_path.answer(predictor.features.decode_valid(msgspec.json.encode(row)))
    assert single is not None
    assert single.counts == {_CLASSES[1]: 1}
    assert _check(predictor, msgspec.json.encode(row))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_models_with_categories_or_several_outputs_take_the_general_path(task: str) -> None:
    assert LinearFastPath.of(toy_predictor(task)) is None


def _services(predictor: Predictor) -> tuple[Service, Service]:
    fast = Service(ModelSource.of(predictor), Settings(max_batch_rows=5), metrics=Metrics())
    general = Service(ModelSource.of(predictor), Settings(max_batch_rows=5), metrics=Metrics())
    general._fast = (predictor, None)
    return fast, general


_any_value = st.one_of(
    _numbers,
    st.integers(-(2**70), 2**70),
    st.sampled_from(["1", "x", True, None, [], 1.5]),
)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_the_service_answers_the_same_with_and_without_the_fast_path(
    data: st.DataObject,
) -> None:
    predictor = _predictor("logistic", 0.25, [0.5, -0.125, 1e-3])
    fast, general = _services(predictor)
    names = [f.key for f in _FEATURES] + [f.column for f in _FEATURES] + ["extra"]
    objects = st.dictionaries(st.sampled_from(names), _any_value, max_size=5)
    body = msgspec.json.encode(data.draw(st.one_of(objects, st.lists(objects, max_size=7))))
    request = Request("POST", "/predict", {"content-type": "application/json"}, body)
    answers: list[Response] = [fast.handle(request), general.handle(request)]
    assert answers[0] == answers[1]
    assert fast.metrics is not None
    assert general.metrics is not None
    assert fast.metrics.predictions == general.metrics.predictions


def test_a_reloaded_model_gets_its_own_fast_path(pima_predictor: Predictor) -> None:
    source = ModelSource.of(pima_predictor)
    service = Service(source, Settings())
    body = msgspec.json.encode({"width": 2.0, "legs": 4.0, "odd key é": 0.0})
    assert service.handle(Request("POST", "/predict", {}, body)).status == 422
    regressor = _predictor("regression", 1.0, [2.0, 3.0, 4.0])
    source.predictor = regressor
    answer = service.handle(Request("POST", "/predict", {}, body))
    assert answer.status == 200
    assert msgspec.json.decode(answer.body) == {'answer "a"': 1.0 + 2.0 * 2.0 + 3.0 * 4.0}


def test_keys_msgspec_cannot_rename_are_served_by_the_general_path() -> None:
    features = (*_FEATURES[:2], Feature(column="Q", key='q"\\\x01', type="number"))
    predictor = _predictor("regression", 1.0, [1.0, 2.0, 3.0], features)
    assert predictor.features.decode_valid(b"{}") is None
    body = msgspec.json.encode({"width": 1.0, "legs": 2.0, 'q"\\\x01': 3.0})
    answer = Service(ModelSource.of(predictor), Settings()).handle(
        Request("POST", "/predict", {}, body)
    )
    assert answer.status == 200
    assert msgspec.json.decode(answer.body) == {'answer "a"': 1.0 + 1.0 + 4.0 + 9.0}
