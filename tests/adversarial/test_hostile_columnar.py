"""Hostile MLflow bodies and header-less CSV: always a named 4xx, bounded work, no payload echoed.

Deep nesting, column lists of 100,000 names, ragged and mistyped rows, a `data` of a million
empty arrays under the body limit, long names: each answered with its own error (or ignored and
named in a bounded header), on the numpy block path and without numpy.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.scoring import block_bodies
from modelapi.service import MAX_ERROR_DETAILS, Request, Response, Service
from modelapi.source import ModelSource
from tests.conftest import PIMA_COLUMNS

JSON = {"content-type": "application/json"}
CSV = {"content-type": "text/csv"}
# A value (never a name) that no answer may carry back.
MARKER = "MARKER-7f3c-never-echoed"
COLUMNS = list(PIMA_COLUMNS)
# Generous: the bodies below are answered in well under a second on two shared cores.
_CPU_BUDGET_S = 20.0


@pytest.fixture(params=["numpy", "pure Python"])
def block_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(block_bodies, "_blocks", {})
    if request.param == "pure Python":
        monkeypatch.setitem(sys.modules, "numpy", None)
    return str(request.param)


def _service(predictor: Predictor, **limits: object) -> Service:
    settings = Settings(store="/nonexistent/models").replace(**limits)
    return Service(ModelSource.of(predictor), settings)


def _handle(
    service: Service, body: bytes, path: str = "/predict", headers: dict[str, str] = JSON
) -> Response:
    started = time.process_time()
    response = service.handle(Request("POST", path, headers, body))
    assert time.process_time() - started < _CPU_BUDGET_S
    assert MARKER.encode() not in response.body
    assert all(MARKER not in value for value in response.headers.values())
    return response


def _details(response: Response) -> list[tuple[str, str]]:
    return [(d["field"], d["reason"]) for d in json.loads(response.body)["details"]]


@pytest.mark.parametrize("shape", ["dataframe_split", "instances", "inputs", "dataframe_records"])
def test_deep_nesting_is_malformed(pima_predictor: Predictor, block_path: str, shape: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    value = f'{{"columns": [], "data": {deep}}}' if shape == "dataframe_split" else deep
    response = _handle(_service(pima_predictor), f'{{"{shape}": {value}}}'.encode())
    assert response.status == 400
    assert _details(response) == [("body", "is not valid JSON")]


def test_a_million_empty_rows_under_the_body_limit(
    pima_predictor: Predictor, block_path: str
) -> None:
    data = ",".join(["[]"] * 1_000_000)
    body = f'{{"dataframe_split": {{"columns": {json.dumps(COLUMNS)}, "data": [{data}]}}}}'.encode()
    service = _service(pima_predictor, max_body_bytes=4 * 1024 * 1024)
    response = _handle(service, body)
    assert response.status == 413
    assert _details(response) == [("body", "must hold at most 10000 rows")]
    for shape in ("instances", "inputs", "dataframe_records"):
        response = _handle(service, f'{{"{shape}": [{data}]}}'.encode())
        assert response.status == 413, shape
    # With the row limit out of the way: each row named, the answer capped.
    service = _service(pima_predictor, max_body_bytes=4 * 1024 * 1024, max_batch_rows=2**31)
    response = _handle(service, body)
    assert response.status == 422
    details = _details(response)
    assert len(details) == MAX_ERROR_DETAILS + 1
    assert details[0] == ("dataframe_split.data[0]", "has 0 values for 8 columns")


def test_a_hundred_thousand_columns(pima_predictor: Predictor, block_path: str) -> None:
    names = [f"extra_{i}" for i in range(100_000)]
    split = {"dataframe_split": {"columns": [*COLUMNS, *names], "data": []}}
    service = _service(pima_predictor, max_body_bytes=8 * 1024 * 1024)
    response = _handle(service, json.dumps(split).encode())
    assert response.status == 200
    assert response.body == b'{"predictions":[]}'
    # At most five names, each cut short: the header never carries the body back.
    assert len(response.headers["x-ignored-fields"]) < 300
    forbidding = _service(pima_predictor, max_body_bytes=8 * 1024 * 1024, extra_fields="forbid")
    response = _handle(forbidding, json.dumps(split).encode())
    assert response.status == 422
    assert len(_details(response)) == MAX_ERROR_DETAILS + 1
    columns = {"inputs": {name: [] for name in names}}
    response = _handle(service, json.dumps(columns).encode())
    assert response.status == 422
    assert len(_details(response)) == len(COLUMNS)  # each feature's column is missing


def test_a_long_column_name_is_cut_short(pima_predictor: Predictor, block_path: str) -> None:
    long = "x" * 1_000_000
    split = {"dataframe_split": {"columns": [*COLUMNS, long], "data": [[1] * 9]}}
    service = _service(pima_predictor, max_body_bytes=8 * 1024 * 1024, extra_fields="forbid")
    [(field, reason)] = _details(_handle(service, json.dumps(split).encode()))
    assert field == "dataframe_split.columns"
    assert len(reason) < 120


@pytest.mark.parametrize(
    "value",
    [
        [[1] * 8, [1] * 9, [1] * 7, [], None, "row", {"Glucose": 1}, [[1] * 8]],
        [[MARKER] * 8, [True] * 8, [None] * 8, [[]] * 8, [{}] * 8],
    ],
)
def test_ragged_and_mistyped_rows_are_each_named(
    pima_predictor: Predictor, block_path: str, value: list[object]
) -> None:
    service = _service(pima_predictor)
    for body in (
        {"dataframe_split": {"columns": COLUMNS, "data": value}},
        {"instances": value},
        {"inputs": value},
    ):
        response = _handle(service, json.dumps(body).encode())
        assert response.status == 422
        fields = [field for field, _ in _details(response)]
        assert all(
            field.split("[")[0] in ("dataframe_split.data", "instances", "inputs")
            for field in fields
        )


@pytest.mark.parametrize(
    "body",
    [
        b'{"dataframe_split": null}',
        b'{"dataframe_split": {"columns": null, "data": null, "index": null}}',
        b'{"dataframe_split": {"columns": "Glucose", "data": "1,2"}}',
        b'{"dataframe_split": {"columns": [1e400], "data": [[NaN]]}}',
        b'{"dataframe_records": "x"}',
        b'{"instances": {"a": 1}}',
        b'{"inputs": {"Glucose": [1], "glucose": [2]}}',
        b'{"inputs": {"Glucose": 1, "Age": [2]}}',
        b'{"inputs": "\xff"}',
        b'{"instances": [1, 2]}',
        b'{"dataframe_split": {"columns": [], "data": [[1e999]]}}',
    ],
)
def test_wrong_types_get_a_named_4xx(
    pima_predictor: Predictor, block_path: str, body: bytes
) -> None:
    for path in ("/predict", "/invocations"):
        response = _handle(_service(pima_predictor), body, path)
        assert 400 <= response.status < 500, body
        assert _details(response)


@pytest.mark.parametrize(
    "body",
    [
        b"1,2,3\n" * 10_000,
        (b"1," * 100_000)[:-1] + b"\n",
        b"1,1,1,1,1,1,1,\xff\n",
        b'1,1,1,1,1,1,1,"\n',
        b"1,1,1,1,1,1,1,1\n" * 20_000,
        b"\n" * 1_000_000,
        "å\rÌ\U00059e44\U000d73c9\x96".encode(),  # a lone carriage return in the first line
        b"1,1,1,1,1,1,1,1\n1,1\r1,1,1,1,1,1\n",
    ],
)
def test_hostile_csv_lines_get_a_named_4xx(
    pima_predictor: Predictor, block_path: str, body: bytes
) -> None:
    service = _service(pima_predictor, max_body_bytes=4 * 1024 * 1024)
    response = _handle(service, body, "/invocations", CSV)
    assert 400 <= response.status < 500
    assert 1 <= len(_details(response)) <= MAX_ERROR_DETAILS + 1
