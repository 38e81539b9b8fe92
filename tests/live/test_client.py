"""modelapi.Client against the real app under uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from modelapi import Client
from modelapi.config import Settings
from modelapi.errors import (
    FieldError,
    InvalidInput,
    MalformedBody,
    ModelUnavailable,
    PayloadTooLarge,
    Unauthorized,
)
from modelapi.predictor import Predictor
from tests.conftest import PIMA_EXAMPLE
from tests.live.serving import serving
from tests.oracles import answers

API_KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def open_url(pima_predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Pima model served with no API key and a small body limit."""
    store = str(tmp_path_factory.mktemp("models"))
    settings = Settings(store=store, reload_interval_s=0, max_body_bytes=4096)
    with serving(pima_predictor, settings) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_url(pima_predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Pima model served behind an API key."""
    store = str(tmp_path_factory.mktemp("models"))
    with serving(
        pima_predictor, Settings(store=store, reload_interval_s=0, api_key=API_KEY)
    ) as url:
        yield url


def expected(predictor: Predictor, rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The answers computed here, in process, for the same rows."""
    parsed, _ = predictor.features.parse_rows(rows)
    return answers(predictor, predictor.predict(parsed))


def test_ping_and_model(open_url: str) -> None:
    with Client(open_url) as client:
        assert client.ping() is True
        model = client.model()
    assert (model["name"], model["version"]) == ("diabetes", 1)
    assert model["target"] == {"column": "Outcome", "key": "outcome"}


def test_predict_one_row_and_many(open_url: str, pima_predictor: Predictor) -> None:
    example = msgspec.json.decode(PIMA_EXAMPLE)
    contract = dict(zip(example, [6, 148, 72, 35, 0, 33.6, 0.627, 50], strict=True))
    rows = [example, contract, {**example, "glucose": "99", "age": 61}]
    with Client(open_url) as client:
        one = client.predict(example)
        many = client.predict(rows)
    assert one == expected(pima_predictor, [example])[0]
    assert many == expected(pima_predictor, rows)
    assert many[1]["outcome"] == 1


def test_invalid_rows_come_back_with_every_field_named(open_url: str) -> None:
    example = msgspec.json.decode(PIMA_EXAMPLE)
    bad = {**example, "glucose": "high", "age": True}
    del bad["bmi"]
    with Client(open_url) as client, pytest.raises(InvalidInput) as caught:
        client.predict([example, bad])
    assert caught.type is InvalidInput
    assert set(caught.value.details) == {
        FieldError("[1].glucose", "must be a number"),
        FieldError("[1].age", "must be a number, not a boolean"),
        FieldError("[1].bmi", "is required"),
    }
    assert "high" not in str(caught.value)


def test_csv_bodies(open_url: str, pima_predictor: Predictor) -> None:
    body = (
        b"Glucose,Age,Pregnancies,BloodPressure,SkinThickness,Insulin,BMI,"
        b"DiabetesPedigreeFunction\n148,50,6,72,35,0,33.6,0.627\n"
    )
    with Client(open_url) as client:
        answer = client.predict_csv(body)
        with pytest.raises(MalformedBody):
            client.predict_csv(b"\xff\xfe not text")
    assert answer.splitlines()[0] == b"outcome,probability_0,probability_1"
    assert answer.splitlines()[1].startswith(b"1,")


def test_a_body_over_the_limit_is_payload_too_large(open_url: str) -> None:
    example = msgspec.json.decode(PIMA_EXAMPLE)
    with Client(open_url) as client, pytest.raises(PayloadTooLarge):
        client.predict([example] * 100)


def test_the_api_key_is_required_and_accepted(keyed_url: str, pima_predictor: Predictor) -> None:
    example = msgspec.json.decode(PIMA_EXAMPLE)
    with Client(keyed_url) as anonymous:
        assert anonymous.ping() is True
        with pytest.raises(Unauthorized, match="Bearer"):
            anonymous.predict(example)
    with Client(keyed_url, api_key="wrong") as wrong, pytest.raises(Unauthorized):
        wrong.model()
    with Client(keyed_url, api_key=API_KEY) as client:
        assert client.predict(example) == expected(pima_predictor, [example])[0]


def test_no_model_loaded_is_model_unavailable(tmp_path: Path) -> None:
    settings = Settings(store=str(tmp_path), reload_interval_s=0)
    with serving(None, settings) as url, Client(url) as client:
        assert client.ping() is True
        with pytest.raises(ModelUnavailable):
            client.predict(msgspec.json.decode(PIMA_EXAMPLE))
