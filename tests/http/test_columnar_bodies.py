"""MLflow bodies on /predict and /invocations, and CSV lines without a header, in process.

Every shape answers `{"predictions": A}` where A is the exact bytes the array-of-objects body
answers for the same rows, on the numpy block path and without numpy; the answers are
scikit-learn's own (the bundle's `model.skops`) on the Pima rows.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from modelapi.app import App
from modelapi.bodies import mlflow as mlflow_bodies
from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.schema import Feature
from modelapi.scoring import block_bodies
from tests.conftest import PIMA_COLUMNS
from tests.http.toy_models import running_app
from tests.linear_models import linear_predictor

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}
FORM = {"content-type": "application/x-www-form-urlencoded"}
CSV = {"content-type": "text/csv"}
N_ROWS = 120
NUMERIC_FEATURES = (
    Feature(column="A", key="a", type="number"),
    Feature(column="B", key="b", type="number"),
)


@pytest.fixture(params=["numpy", "pure Python"])
def block_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with numpy's block path and with numpy not importable."""
    monkeypatch.setattr(block_bodies, "_blocks", {})
    if request.param == "pure Python":
        monkeypatch.setitem(sys.modules, "numpy", None)
    return str(request.param)


@pytest.fixture
def app(pima_predictor: Predictor, settings: Settings, block_path: str) -> Iterator[App]:
    with running_app(pima_predictor, settings.replace(max_batch_rows=500)) as app:
        yield app


@pytest.fixture(scope="module")
def pima_rows(pima_csv: Path) -> list[list[float | int]]:
    """The first Pima rows, features only, as JSON numbers (ints where the file has them)."""
    with pima_csv.open() as handle:
        records = list(csv.DictReader(handle))[:N_ROWS]
    return [[json.loads(record[c]) for c in PIMA_COLUMNS] for record in records]


def _keys(predictor: Predictor) -> list[str]:
    return [f.key for f in predictor.manifest.features]


def _columns(predictor: Predictor) -> list[str]:
    return [f.column for f in predictor.manifest.features]


def _bodies(predictor: Predictor, rows: list[list[float | int]]) -> dict[str, object]:
    keys, columns = _keys(predictor), _columns(predictor)
    objects = [dict(zip(keys, row, strict=True)) for row in rows]
    return {
        "dataframe_split": {"dataframe_split": {"columns": columns, "data": rows}},
        "dataframe_split keys, index": {
            "dataframe_split": {"columns": keys, "data": rows, "index": list(range(len(rows)))}
        },
        "dataframe_split reordered, extra": {
            "dataframe_split": {
                "columns": ["id", *columns[::-1]],
                "data": [[i, *row[::-1]] for i, row in enumerate(rows)],
            }
        },
        "dataframe_records": {"dataframe_records": objects},
        "dataframe_records CSV names": {
            "dataframe_records": [dict(zip(columns, row, strict=True)) for row in rows]
        },
        "instances objects": {"instances": objects},
        "instances arrays": {"instances": rows},
        "inputs arrays": {"inputs": rows},
        "inputs columns": {"inputs": {key: [row[i] for row in rows] for i, key in enumerate(keys)}},
    }


async def _objects_answer(client: httpx.AsyncClient, predictor: Predictor, rows: object) -> bytes:
    keys = _keys(predictor)
    body = [dict(zip(keys, row, strict=True)) for row in rows]  # type: ignore[attr-defined]
    response = await client.post("/predict", content=msgspec.json.encode(body), headers=JSON)
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("path", ["/predict", "/invocations"])
@pytest.mark.parametrize("spacing", ["compact", "json.dumps"])
async def test_every_shape_answers_the_array_answer_as_predictions(
    client: httpx.AsyncClient,
    pima_predictor: Predictor,
    pima_rows: list[list[float | int]],
    path: str,
    spacing: str,
) -> None:
    expected = b'{"predictions":' + await _objects_answer(client, pima_predictor, pima_rows) + b"}"
    for name, body in _bodies(pima_predictor, pima_rows).items():
        content = msgspec.json.encode(body) if spacing == "compact" else json.dumps(body).encode()
        response = await client.post(path, content=content, headers=JSON)
        assert response.status_code == 200, (name, response.text)
        assert response.content == expected, name
        assert response.headers["x-model-version"] == "diabetes:1"
        assert response.headers["content-type"] == "application/json"
        ignored = response.headers.get("x-ignored-fields")
        assert ignored == ("id" if "extra" in name else None), name


async def test_answers_are_scikit_learns(
    client: httpx.AsyncClient,
    builtin_bundle: Bundle,
    pima_predictor: Predictor,
    pima_rows: list[list[float | int]],
) -> None:
    import pandas as pd

    from modelapi.formats.skops import read_estimator

    estimator = read_estimator(builtin_bundle)
    frame = pd.DataFrame(pima_rows, columns=_columns(pima_predictor))
    labels = estimator.predict(frame).tolist()  # type: ignore[attr-defined]
    probabilities = estimator.predict_proba(frame).tolist()  # type: ignore[attr-defined]
    split = {"dataframe_split": frame.to_dict(orient="split")}
    response = await client.post("/predict", content=json.dumps(split), headers=FORM)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [p["outcome"] for p in predictions] == labels
    for answer, (p0, p1) in zip(predictions, probabilities, strict=True):
        assert answer["probabilities"]["0"] == pytest.approx(p0, abs=1e-12)
        assert answer["probabilities"]["1"] == pytest.approx(p1, abs=1e-12)


async def test_metrics_count_each_bulk_answer_by_label(
    client: httpx.AsyncClient,
    app: App,
    pima_predictor: Predictor,
    pima_rows: list[list[float | int]],
) -> None:
    split = {"dataframe_split": {"columns": _columns(pima_predictor), "data": pima_rows}}
    lines = "".join(",".join(map(str, row)) + "\n" for row in pima_rows)
    assert app.metrics is not None
    expected: dict[str, int] = {}
    for path, content, headers in (
        ("/predict", json.dumps(split), JSON),
        ("/invocations", json.dumps({"instances": pima_rows}), JSON),
        ("/invocations", lines, CSV),
    ):
        response = await client.post(path, content=content, headers=headers)
        assert response.status_code == 200
        if headers is CSV:
            labels = [line.split(",")[0] for line in response.text.splitlines()]
        else:
            labels = [str(p["outcome"]) for p in response.json()["predictions"]]
        for label in labels:
            expected[label] = expected.get(label, 0) + 1
        assert app.metrics.predictions == expected, path
    assert set(expected) == {"0", "1"}


async def test_params_are_ignored_and_named(
    client: httpx.AsyncClient, pima_predictor: Predictor, pima_rows: list[list[float | int]]
) -> None:
    expected = await _objects_answer(client, pima_predictor, pima_rows[:3])
    body = {"params": {"threshold": 0.5}, "instances": pima_rows[:3]}
    response = await client.post("/predict", content=json.dumps(body), headers=JSON)
    assert response.status_code == 200
    assert response.content == b'{"predictions":' + expected + b"}"
    assert response.headers["x-ignored-fields"] == "params"


async def test_empty_data_answers_no_predictions(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    for body in (
        {"dataframe_split": {"columns": _columns(pima_predictor), "data": []}},
        {"dataframe_records": []},
        {"instances": []},
        {"inputs": {key: [] for key in _keys(pima_predictor)}},
    ):
        response = await client.post("/predict", content=json.dumps(body), headers=JSON)
        assert (response.status_code, response.content) == (200, b'{"predictions":[]}'), body


async def test_values_the_block_path_does_not_read_answer_as_the_object_path(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    # Exponents, -0, long decimals, numeric strings and whole floats: read by the general path.
    rows = [
        [1e0, 148, 72, 35, 0, 3.36e1, 0.627, 50],
        [-0, 85, 66, 29, 0, 26.6, 0.3510000000000000009, 31],
        ["8", 183.0, 64, 0, 0, 23.3, "0.672", 32],
        [1, 89, 66, 23, 94, 28.123456789012345678, 0.167, 21],
    ]
    expected = await _objects_answer(client, pima_predictor, rows)
    for body in (
        {"dataframe_split": {"columns": _columns(pima_predictor), "data": rows}},
        {"instances": rows},
    ):
        response = await client.post("/predict", content=json.dumps(body), headers=JSON)
        assert response.status_code == 200
        assert response.content == b'{"predictions":' + expected + b"}"


# ---- errors ------------------------------------------------------------------------------


def _details(response: httpx.Response) -> list[tuple[str, str]]:
    return [(d["field"], d["reason"]) for d in response.json()["details"]]


@pytest.mark.parametrize(
    ("body", "status", "details"),
    [
        (
            {"dataframe_split": {"columns": PIMA_COLUMNS[1:], "data": [[1] * 7]}},
            422,
            [("dataframe_split.columns", "has no column Pregnancies (pregnancies)")],
        ),
        (
            {"dataframe_split": {"columns": [*PIMA_COLUMNS, "glucose"], "data": []}},
            422,
            [("dataframe_split.columns", "names glucose twice; keep one column")],
        ),
        (
            {"dataframe_split": {"data": [[1]]}},
            422,
            [("dataframe_split.columns", "must be an array of column names")],
        ),
        (
            {"dataframe_split": {"columns": [1, 2], "data": 3}},
            422,
            [
                ("dataframe_split.columns", "must be an array of column names"),
                ("dataframe_split.data", "must be an array of rows"),
            ],
        ),
        (
            {"dataframe_split": {"columns": [], "data": [], "index": [1], "orient": "split"}},
            422,
            [
                ("dataframe_split.orient", "is not taken; send columns, data, index"),
                ("dataframe_split.index", "must be an array of 0 labels"),
            ],
        ),
        (
            {"dataframe_split": [1]},
            422,
            [("dataframe_split", "must be an object with columns and data")],
        ),
        (
            {"dataframe_records": {"a": 1}},
            422,
            [("dataframe_records", "must be an array of objects")],
        ),
        ({"dataframe_records": [[1]]}, 422, [("dataframe_records[0]", "must be a JSON object")]),
        ({"instances": 5}, 422, [("instances", "must be an array of rows")]),
        (
            {"instances": [True]},
            422,
            [("instances[0]", "must be a JSON object or an array of the feature values")],
        ),
        (
            {"inputs": [[1, 2]]},
            422,
            [
                (
                    "inputs[0]",
                    "has 2 values; a row given as an array holds the 8 features in the"
                    " model's order",
                )
            ],
        ),
        (
            {"inputs": {"glucose": [1, 2], "age": [1]}},
            422,
            [("inputs", "must map every column to an array of the same length")],
        ),
        (
            {"instances": [], "inputs": []},
            422,
            [
                (
                    "body",
                    "must hold one of dataframe_split, dataframe_records, instances, inputs,"
                    " not several",
                )
            ],
        ),
    ],
)
async def test_bad_bodies_are_named(
    client: httpx.AsyncClient, body: object, status: int, details: list[tuple[str, str]]
) -> None:
    response = await client.post("/predict", content=json.dumps(body), headers=JSON)
    assert response.status_code == status
    assert _details(response) == details


async def test_bad_values_are_named_where_they_are(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    good = [6, 148, 72, 35, 0, 33.6, 0.627, 50]
    bad = [6.5, "x", None, True, 0, float("inf"), 0.627, 50]
    split = {
        "dataframe_split": {"columns": _columns(pima_predictor), "data": [good, bad, good[:7]]}
    }
    # 1e400 is valid JSON past a double's range.
    content = json.dumps(split).replace("Infinity", "1e400")
    response = await client.post("/predict", content=content, headers=JSON)
    assert response.status_code == 422
    assert _details(response) == [
        ("dataframe_split.data[1].pregnancies", "must be a whole number"),
        ("dataframe_split.data[1].glucose", "must be a number"),
        ("dataframe_split.data[1].blood_pressure", "is missing"),
        ("dataframe_split.data[1].skin_thickness", "must be a number, not a boolean"),
        ("dataframe_split.data[1].bmi", "must be a finite number"),
        ("dataframe_split.data[2]", "has 7 values for 8 columns"),
    ]
    records = {"instances": [dict(zip(_keys(pima_predictor), bad, strict=True))]}
    content = json.dumps(records).replace("Infinity", "1e400")
    response = await client.post("/predict", content=content, headers=JSON)
    assert response.status_code == 422
    assert _details(response)[0] == ("instances[0].pregnancies", "must be a whole number")


async def test_a_prediction_out_of_range_is_named_by_its_row(
    settings: Settings, block_path: str
) -> None:
    # Each value is a finite double; their weighted sum is not a number (inf - inf).
    spec = {"kind": "logistic", "intercept": [0.0], "weights": [[10.0], [-10.0]]}
    predictor = linear_predictor(spec, NUMERIC_FEATURES, (0, 1))
    with running_app(predictor, settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for body, field in (
                ({"instances": [[1, 2], [1e308, 1e308]]}, "instances[1]"),
                (
                    {"dataframe_split": {"columns": ["a", "b"], "data": [[1e308, 1e308]]}},
                    "dataframe_split.data[0]",
                ),
            ):
                response = await client.post("/predict", content=json.dumps(body), headers=JSON)
                assert response.status_code == 422
                [(named, reason)] = _details(response)
                assert named == field
                assert reason.startswith("prediction is out of range")
            response = await client.post("/invocations", content=b"1,2\n1e308,1e308\n", headers=CSV)
            assert response.status_code == 422
            assert [field for field, _ in _details(response)] == ["[1]"]


async def test_rows_over_the_limit_are_refused_before_any_row_is_read(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    # 501 rows, each bad: 413 and not 501 errors, for every shape.
    rows = [["x"] * 8] * 501
    for body in (
        {"dataframe_split": {"columns": _columns(pima_predictor), "data": rows}},
        {"dataframe_split": {"columns": _columns(pima_predictor), "data": [[1] * 8] * 501}},
        {"instances": rows},
        {"instances": [[1] * 8] * 501},
        {"dataframe_records": [{}] * 501},
        {"inputs": {key: [1] * 501 for key in _keys(pima_predictor)}},
    ):
        response = await client.post("/predict", content=json.dumps(body), headers=JSON)
        assert response.status_code == 413
        assert _details(response) == [("body", "must hold at most 500 rows")]


async def test_extra_columns_and_params_are_refused_when_forbidden(
    pima_predictor: Predictor, settings: Settings, block_path: str
) -> None:
    with running_app(pima_predictor, settings.replace(extra_fields="forbid")) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            columns = [*_columns(pima_predictor), "id"]
            split = {"dataframe_split": {"columns": columns, "data": [[1] * 9]}}
            response = await client.post("/predict", content=json.dumps(split), headers=JSON)
            assert response.status_code == 422
            assert _details(response) == [
                ("dataframe_split.columns", "column id is not a feature of this model")
            ]
            body = {"instances": [[1] * 8], "params": {}}
            response = await client.post("/predict", content=json.dumps(body), headers=JSON)
            assert _details(response) == [
                ("params", "are not taken: this model has no inference parameters")
            ]


async def test_an_object_with_feature_keys_is_still_one_row(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    # A row that also carries an "inputs" field is a row, as before, with the field ignored.
    row = dict(zip(_keys(pima_predictor), [6, 148, 72, 35, 0, 33.6, 0.627, 50], strict=True))
    plain = await client.post("/predict", content=json.dumps(row), headers=JSON)
    mixed = await client.post("/predict", content=json.dumps({**row, "inputs": [1]}), headers=JSON)
    assert mixed.status_code == 200
    assert mixed.content == plain.content
    assert mixed.headers["x-ignored-fields"] == "inputs"


# ---- /invocations CSV ----------------------------------------------------------------------


def _lines(rows: list[list[float | int]]) -> bytes:
    return "".join(",".join(map(str, row)) + "\n" for row in rows).encode()


async def test_csv_lines_without_a_header_answer_a_line_each(
    client: httpx.AsyncClient, pima_predictor: Predictor, pima_rows: list[list[float | int]]
) -> None:
    header = ",".join(_columns(pima_predictor)).encode() + b"\n"
    with_header = await client.post("/predict", content=header + _lines(pima_rows), headers=CSV)
    assert with_header.status_code == 200
    answer_lines = with_header.content.partition(b"\n")[2]
    for body in (
        _lines(pima_rows),
        _lines(pima_rows).replace(b"\n", b"\r\n"),
        _lines(pima_rows)[:-1],
        b"\xef\xbb\xbf" + _lines(pima_rows),
    ):
        response = await client.post("/invocations", content=body, headers=CSV)
        assert response.status_code == 200
        assert response.content == answer_lines
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.headers["x-model-version"] == "diabetes:1"
    assert len(answer_lines.splitlines()) == len(pima_rows)
    # With a header, /invocations is /predict.
    response = await client.post("/invocations", content=header + _lines(pima_rows), headers=CSV)
    assert response.content == with_header.content


async def test_csv_lines_without_a_header_are_named_when_bad(client: httpx.AsyncClient) -> None:
    body = b"6,148,72,35,0,33.6,0.627,50\n1,85,66\n2,x,1,1,1,1,1,1\n"
    response = await client.post("/invocations", content=body, headers=CSV)
    assert response.status_code == 422
    assert _details(response) == [
        ("[1]", "has 3 values; a line without a header holds the 8 features in the model's order"),
        ("[2].glucose", "must be a number"),
    ]
    response = await client.post("/invocations", content=b"\xff,1\n", headers=CSV)
    assert response.status_code == 400


async def test_csv_lines_over_the_row_limit_are_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/invocations", content=b"1,1,1,1,1,1,1,1\n" * 501, headers=CSV)
    assert response.status_code == 413
    assert _details(response) == [("body", "must hold at most 500 rows")]


async def test_csv_lines_over_the_body_limit_are_refused(
    pima_predictor: Predictor, settings: Settings
) -> None:
    with running_app(pima_predictor, settings.replace(max_body_bytes=1024)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = b"1,1,1,1,1,1,1,1\n" * 100
            response = await client.post("/invocations", content=body, headers=CSV)
            assert response.status_code == 413
            split = {"dataframe_split": {"columns": ["a"], "data": [[1]] * 400}}
            response = await client.post("/predict", content=json.dumps(split), headers=JSON)
            assert response.status_code == 413


async def test_invocations_takes_no_other_content_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/invocations", content=b"1", headers={"content-type": "image/png"}
    )
    assert response.status_code == 415
    response = await client.get("/invocations")
    assert response.status_code == 405


# ---- OpenAPI -----------------------------------------------------------------------------


async def test_the_document_holds_the_mlflow_bodies_and_invocations(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    import re

    document = (await client.get("/openapi.json")).json()
    predict = document["paths"]["/predict"]["post"]
    json_schema = predict["requestBody"]["content"]["application/json"]["schema"]
    [mlflow] = [option for option in json_schema["oneOf"] if option.get("title") == "MlflowBody"]
    answers = predict["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
    assert any(option.get("title") == "Predictions" for option in answers)
    shapes = [body["title"] for body in mlflow["oneOf"]]
    assert shapes == list(mlflow_bodies.INPUT_KEYS)
    invocations = document["paths"]["/invocations"]["post"]
    csv_body = invocations["requestBody"]["content"]["text/csv"]
    header, headerless = (option["pattern"] for option in csv_body["schema"]["anyOf"])
    assert re.fullmatch(headerless, csv_body["example"])
    assert not re.fullmatch(header, csv_body["example"])
    # The documented example is answered.
    example = mlflow["examples"][0]
    response = await client.post("/invocations", content=json.dumps(example), headers=JSON)
    assert response.status_code == 200
    response = await client.post("/invocations", content=csv_body["example"], headers=CSV)
    assert response.status_code == 200
    assert response.content.count(b"\n") == 1


async def test_csv_lines_of_a_model_with_categories(settings: Settings, block_path: str) -> None:
    from tests.http.toy_models import toy_predictor

    with running_app(toy_predictor(), settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            lines = b'red,1.5,3\n"<b id=""x"">green</b> & ""teal""",9.25,0\n'
            header = b"colour,size_cm,count\n"
            with_header = await client.post("/predict", content=header + lines, headers=CSV)
            assert with_header.status_code == 200
            response = await client.post("/invocations", content=lines, headers=CSV)
            assert response.status_code == 200
            assert response.content == with_header.content.partition(b"\n")[2]
            # With its header, the same lines are /predict's CSV.
            response = await client.post("/invocations", content=header + lines, headers=CSV)
            assert response.content == with_header.content
