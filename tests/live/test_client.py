"""modelapi.Client against the real app under uvicorn on 127.0.0.1."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pandas as pd
import pytest

from modelapi import Client
from modelapi.bodies.csv_rows import parse_csv
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
from tests.oracles import answers
from tests.servers import serve_model

API_KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def open_url(pima_predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Pima model served with no API key and a small body limit."""
    store = str(tmp_path_factory.mktemp("models"))
    settings = Settings(store=store, reload_interval_s=0, max_body_bytes=4096)
    with serve_model(pima_predictor, settings) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_url(pima_predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Pima model served behind an API key."""
    store = str(tmp_path_factory.mktemp("models"))
    with serve_model(
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
        FieldError("[1].bmi", "is missing"),
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


def _pima_rows(pima_csv: Path, n: int) -> pd.DataFrame:
    frame = pd.read_csv(pima_csv).drop(columns="Outcome")
    return pd.concat([frame] * (n // len(frame) + 1)).iloc[:n].set_index(pd.RangeIndex(5, n + 5))


def _in_process(predictor: Predictor, frame: pd.DataFrame) -> pd.DataFrame:
    body = frame.to_csv(index=False).encode()
    answer = predictor.answers.csv(predictor.predict(parse_csv(predictor.features, body, 10**6)))
    return pd.read_csv(io.BytesIO(answer)).set_index(frame.index)


def test_bodies_over_the_limit_are_split_and_one_row_over_it_is_refused(
    open_url: str, pima_predictor: Predictor
) -> None:
    example = msgspec.json.decode(PIMA_EXAMPLE)
    rows = [{**example, "age": 20 + i % 50} for i in range(100)]
    with Client(open_url) as client:
        assert client.predict(rows, progress=False) == expected(pima_predictor, rows)
        with pytest.raises(PayloadTooLarge):
            client.predict([example, {**example, "glucose": "1" * 5000}], progress=False)


def test_a_dataframe_comes_back_as_a_dataframe_with_its_index(
    open_url: str, pima_predictor: Predictor, pima_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = _pima_rows(pima_csv, 2500)
    with Client(open_url, batch_rows=1000) as client:
        answered = client.predict(frame)
    assert list(answered.columns) == ["outcome", "probability_0", "probability_1"]
    pd.testing.assert_frame_equal(answered, _in_process(pima_predictor, frame))
    assert "predicted 2,500 of 2,500 rows" in capsys.readouterr().err


def test_a_bad_row_is_named_by_its_place_in_the_whole_input(open_url: str) -> None:
    example = msgspec.json.decode(PIMA_EXAMPLE)
    rows = [dict(example) for _ in range(25)]
    rows[17]["glucose"] = "high"
    with Client(open_url, batch_rows=10) as client, pytest.raises(InvalidInput) as caught:
        client.predict(rows, progress=False)
    assert caught.value.details == (FieldError("[17].glucose", "must be a number"),)


def test_a_long_csv_body_goes_in_pieces_with_one_answer(
    open_url: str, pima_predictor: Predictor, pima_csv: Path
) -> None:
    frame = _pima_rows(pima_csv, 300)
    body = frame.to_csv(index=False).encode()
    with Client(open_url, batch_rows=50) as client:
        answer = client.predict_csv(body, progress=False)
    whole = pima_predictor.answers.csv(
        pima_predictor.predict(parse_csv(pima_predictor.features, body, 10**6))
    )
    assert answer == whole


def test_numpy_values_are_sent_as_numbers(open_url: str, pima_predictor: Predictor) -> None:
    import numpy as np

    example = msgspec.json.decode(PIMA_EXAMPLE)
    row = {key: np.float64(value) for key, value in example.items()}
    with Client(open_url) as client:
        assert client.predict(row) == expected(pima_predictor, [example])[0]


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
    with serve_model(None, settings) as url, Client(url) as client:
        assert client.ping() is True
        with pytest.raises(ModelUnavailable):
            client.predict(msgspec.json.decode(PIMA_EXAMPLE))
