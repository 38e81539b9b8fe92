"""The Open Inference Protocol V2 routes, through the ASGI app, against /predict's answers."""

from __future__ import annotations

import json

import httpx
import pytest

from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.service import Request
from tests.conftest import PIMA_EXAMPLE
from tests.http.toy_models import HOSTILE_CATEGORY, running_app, toy_predictor

pytestmark = pytest.mark.anyio

CONTRACT_ROW = [6, 148, 72, 35, 0, 33.6, 0.627, 50]
INFER = "/v2/models/diabetes/infer"


def tensors(predictor: Predictor, rows: list[list[object]]) -> list[dict[str, object]]:
    """One tensor per feature holding a column of `rows`."""
    return [
        {
            "name": feature.key,
            "shape": [len(rows)],
            "datatype": {"integer": "INT64", "number": "FP64"}.get(feature.type, "BYTES"),
            "data": [row[j] for row in rows],
        }
        for j, feature in enumerate(predictor.manifest.features)
    ]


def error_fields(response: httpx.Response) -> list[str]:
    body = response.json()
    assert set(body) == {"error", "details"}
    return [detail["field"] for detail in body["details"]]


async def test_health_and_server_metadata(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    ready = await client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    server = (await client.get("/v2")).json()
    assert server["name"] == "modelapi"
    assert server["extensions"] == []


async def test_readiness_is_503_without_a_model(settings: Settings) -> None:
    with running_app(None, settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            assert (await c.get("/v2/health/live")).status_code == 200
            ready = await c.get("/v2/health/ready")
            infer = await c.post(INFER, content=b"{}")
    assert ready.status_code == 503
    assert ready.json()["error"] == "model_unavailable"
    assert infer.status_code == 503


async def test_model_metadata_lists_features_and_outputs(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    response = await client.get("/v2/models/diabetes")
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "diabetes:1"
    metadata = response.json()
    assert metadata["name"] == "diabetes"
    assert metadata["versions"] == ["1"]
    assert [i["name"] for i in metadata["inputs"]] == list(pima_predictor.features.keys)
    assert {i["datatype"] for i in metadata["inputs"]} == {"INT64", "FP64"}
    assert metadata["outputs"] == [
        {"name": "outcome", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
    ]
    ready = await client.get("/v2/models/diabetes/ready")
    assert ready.json() == {"name": "diabetes", "ready": True}


@pytest.mark.parametrize(
    "path",
    ["/v2/models/other", "/v2/models/other/ready", "/v2/models/diabetes:1/infer"],
)
async def test_a_wrong_model_name_is_404(client: httpx.AsyncClient, path: str) -> None:
    method = "POST" if path.endswith("/infer") else "GET"
    response = await client.request(method, path, content=b"{}")
    assert response.status_code == 404
    assert error_fields(response) == ["path"]
    assert "other" not in response.text, "the name sent is not echoed"


@pytest.mark.parametrize("path", ["/v2/models/", "/v2/models//ready", "/v2/models/a/b/infer"])
async def test_paths_that_fill_no_template_are_404(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_wrong_method_on_a_templated_route_is_405(client: httpx.AsyncClient) -> None:
    response = await client.get(INFER)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_infer_matches_predict_for_the_contract_row(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    example = list(json.loads(PIMA_EXAMPLE).values())
    rows: list[list[object]] = [CONTRACT_ROW, example]
    response = await client.post(
        INFER, json={"id": "req-7", "inputs": tensors(pima_predictor, rows)}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == "diabetes:1"
    body = response.json()
    assert body["model_name"] == "diabetes"
    assert body["model_version"] == "1"
    assert body["id"] == "req-7"
    outcome, probabilities = body["outputs"]
    assert outcome == {"name": "outcome", "shape": [2], "datatype": "INT64", "data": [1, 0]}
    assert outcome["data"][0] == 1  # the contract row predicts 1
    keys = pima_predictor.features.keys
    answers = (
        await client.post("/predict", json=[dict(zip(keys, row, strict=True)) for row in rows])
    ).json()
    assert outcome["data"] == [a["outcome"] for a in answers]
    assert probabilities["shape"] == [2, 2]
    assert probabilities["data"] == [p for a in answers for p in a["probabilities"].values()]


@pytest.mark.parametrize(
    "tensor",
    [
        {"name": "input-0", "shape": [1, 8], "datatype": "FP64", "data": CONTRACT_ROW},
        {"name": "input-0", "shape": [1, 8], "datatype": "FP32", "data": [CONTRACT_ROW]},
    ],
)
async def test_one_matrix_tensor_is_the_documented_alternative(
    client: httpx.AsyncClient, tensor: dict[str, object]
) -> None:
    response = await client.post(INFER, json={"inputs": [tensor]})
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [1]


async def test_nested_column_tensors_and_csv_names_are_read(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    inputs = tensors(pima_predictor, [CONTRACT_ROW])
    for tensor, feature in zip(inputs, pima_predictor.manifest.features, strict=True):
        tensor["name"] = feature.column
        tensor["shape"] = [1, 1]
        tensor["data"] = [tensor["data"]]
    response = await client.post(INFER, json={"inputs": inputs})
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [1]


async def test_requested_outputs_only(client: httpx.AsyncClient, pima_predictor: Predictor) -> None:
    inputs = tensors(pima_predictor, [CONTRACT_ROW])
    response = await client.post(
        INFER, json={"inputs": inputs, "outputs": [{"name": "probabilities"}]}
    )
    assert [o["name"] for o in response.json()["outputs"]] == ["probabilities"]
    wrong = await client.post(INFER, json={"inputs": inputs, "outputs": [{"name": "nope"}]})
    assert wrong.status_code == 422
    assert error_fields(wrong) == ["outputs[0].name"]


def _with(predictor: Predictor, index: int, **changes: object) -> list[dict[str, object]]:
    inputs = tensors(predictor, [CONTRACT_ROW])
    inputs[index] = {**inputs[index], **changes}
    return inputs


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"shape": [2]}, ["inputs[1].data"]),
        ({"shape": [1, 2]}, ["inputs[1].shape"]),
        ({"shape": [-1]}, ["inputs[1].shape"]),
        ({"datatype": "FLOAT"}, ["inputs[1].datatype"]),
        ({"datatype": "BOOL", "data": [True]}, ["inputs[1].datatype"]),
        ({"datatype": "INT64", "data": [1.5]}, ["inputs[1].data"]),
        ({"datatype": "FP64", "data": ["148"]}, ["inputs[1].data"]),
        ({"datatype": "BYTES", "data": [148]}, ["inputs[1].data"]),
        ({"data": [[148], 1]}, ["inputs[1].data"]),
        ({"name": "sugar"}, ["inputs[1].name", "inputs"]),
        ({"name": "pregnancies"}, ["inputs[1].name", "inputs"]),
    ],
)
async def test_shape_datatype_and_name_problems_are_422(
    client: httpx.AsyncClient,
    pima_predictor: Predictor,
    change: dict[str, object],
    fields: list[str],
) -> None:
    inputs = _with(pima_predictor, 1, **change)
    response = await client.post(INFER, json={"inputs": inputs})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_input"
    assert error_fields(response) == fields


async def test_values_go_through_the_same_validation_as_predict(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    inputs = _with(pima_predictor, 1, datatype="BYTES", data=["148"])
    assert (await client.post(INFER, json={"inputs": inputs})).status_code == 200
    bad = _with(pima_predictor, 1, datatype="BYTES", data=["high-sugar-marker"])
    response = await client.post(INFER, json={"inputs": bad})
    assert response.status_code == 422
    assert response.json()["details"] == [{"field": "[0].glucose", "reason": "must be a number"}]
    assert "high-sugar-marker" not in response.text
    huge = _with(pima_predictor, 1, data=[10**400])
    assert (await client.post(INFER, json={"inputs": huge})).status_code == 422


async def test_rows_must_agree_across_tensors(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    inputs = tensors(pima_predictor, [CONTRACT_ROW, CONTRACT_ROW])
    inputs[3] = {**inputs[3], "shape": [1], "data": [35]}
    response = await client.post(INFER, json={"inputs": inputs})
    assert response.status_code == 422
    assert error_fields(response) == ["inputs[3].shape"]


async def test_a_missing_tensor_is_named(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    inputs = tensors(pima_predictor, [CONTRACT_ROW])
    del inputs[7]
    response = await client.post(INFER, json={"inputs": inputs})
    assert response.status_code == 422
    assert response.json()["details"] == [{"field": "inputs", "reason": "needs a tensor named age"}]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "body"),
        (b"[]", 422, "body"),
        (b'{"inputs": 3}', 422, "inputs"),
        (
            b'{"inputs": [{"name": 1, "shape": [1], "datatype": "FP64", "data": [1]}]}',
            422,
            "inputs[0].name",
        ),
        (
            b'{"inputs": [{"name": "age", "shape": [true], "datatype": "FP64", "data": [1]}]}',
            422,
            "inputs[0].shape[0]",
        ),
        (b"{}", 422, "body"),
    ],
)
async def test_malformed_requests(
    client: httpx.AsyncClient, body: bytes, status: int, field: str
) -> None:
    response = await client.post(INFER, content=body)
    assert response.status_code == status, response.text
    assert error_fields(response) == [field]


async def test_content_type_and_size_limits(pima_predictor: Predictor, settings: Settings) -> None:
    body = json.dumps({"inputs": tensors(pima_predictor, [CONTRACT_ROW] * 3)}).encode()
    with running_app(pima_predictor, settings.replace(max_batch_rows=2)) as app:
        response = app.service.handle(Request("POST", INFER, {}, body))
        assert response.status == 413
        response = app.service.handle(
            Request("POST", INFER, {"content-type": "application/octet-stream"}, body)
        )
        assert response.status == 415
    with running_app(pima_predictor, settings.replace(max_body_bytes=64)) as app:
        assert app.service.handle(Request("POST", INFER, {}, body)).status == 413


async def test_api_key_protects_the_v2_routes(
    pima_predictor: Predictor, settings: Settings
) -> None:
    with running_app(pima_predictor, settings.replace(api_key="sesame")) as app:
        denied = app.service.handle(Request("GET", "/v2/models/diabetes"))
        allowed = app.service.handle(
            Request("GET", "/v2/models/diabetes", {"authorization": "Bearer sesame"})
        )
    assert denied.status == 401
    assert allowed.status == 200


async def test_categories_and_string_classes(settings: Settings) -> None:
    predictor = toy_predictor()
    rows: list[list[object]] = [[HOSTILE_CATEGORY, 2.5, 3], ["red", 9, 0]]
    with running_app(predictor, settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            metadata = (await c.get("/v2/models/toy")).json()
            response = await c.post(
                "/v2/models/toy/infer", json={"inputs": tensors(predictor, rows)}
            )
            matrix = await c.post(
                "/v2/models/toy/infer",
                json={
                    "inputs": [
                        {
                            "name": "x",
                            "shape": [2, 3],
                            "datatype": "BYTES",
                            "data": [[HOSTILE_CATEGORY, "2.5", "3"], ["red", "9", "0"]],
                        }
                    ]
                },
            )
            numeric = tensors(predictor, rows)
            numeric[0] = {**numeric[0], "datatype": "FP64", "data": [1.0, 2.0]}
            refused = await c.post("/v2/models/toy/infer", json={"inputs": numeric})
            predicted = await c.post(
                "/predict",
                json=[dict(zip(("colour", "size_cm", "count"), r, strict=True)) for r in rows],
            )
    assert metadata["inputs"][0] == {"name": "colour", "datatype": "BYTES", "shape": [-1]}
    assert metadata["outputs"][0]["datatype"] == "BYTES"
    assert response.status_code == 200, response.text
    labels = response.json()["outputs"][0]
    assert labels["datatype"] == "BYTES"
    assert labels["data"] == [a["label"] for a in predicted.json()]
    assert matrix.json()["outputs"] == response.json()["outputs"]
    assert refused.status_code == 422
    assert error_fields(refused) == ["inputs[0].datatype"]


async def test_a_regressor_answers_one_fp64_output(settings: Settings) -> None:
    predictor = toy_predictor("regression")
    with running_app(predictor, settings) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            response = await c.post(
                "/v2/models/toy/infer", json={"inputs": tensors(predictor, [["red", 2.0, 4]])}
            )
    (output,) = response.json()["outputs"]
    assert output["name"] == "label"
    assert output["datatype"] == "FP64"
    assert output["data"] == [predictor.predict([["red", 2.0, 4.0]])[0][0]]


async def test_empty_tensors_answer_empty_outputs(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    response = await client.post(INFER, json={"inputs": tensors(pima_predictor, [])})
    assert response.status_code == 200, response.text
    assert [o["shape"] for o in response.json()["outputs"]] == [[0], [0, 2]]
