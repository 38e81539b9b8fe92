"""The ASGI app in process: every route, every error status, the transport edge cases."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from modelapi import app as app_module
from modelapi.app import App, create_app
from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.service import Request, Response, Service
from modelapi.source import ModelSource
from modelapi.store.local import LocalStore
from tests.conformance import MARKER
from tests.conftest import PIMA_EXAMPLE
from tests.http.asgi import call

pytestmark = pytest.mark.anyio

FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    """The app for the built-in model, with small limits and reloading off."""
    built = create_app(settings.replace(max_body_bytes=4096, max_batch_rows=3, reload_interval_s=0))
    yield built
    built.close()


def _expected(predictor: Predictor, row: list[float]) -> dict[str, Any]:
    [(label, probs)] = predictor.predict([row])
    return {"outcome": label, "probabilities": {"0": probs[0], "1": probs[1]}}  # type: ignore[index]


# ---- routes ------------------------------------------------------------------------------


async def test_ping(client: httpx.AsyncClient) -> None:
    response = await client.get("/ping")
    assert response.status_code == 200
    assert response.content == b'{"ping": "pong"}'


async def test_predict_answers_the_curl_body_with_the_version_header(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    response = await client.post("/predict", content=PIMA_EXAMPLE, headers=FORM)
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "diabetes:1"
    assert response.headers["content-length"] == str(len(response.content))
    row = list(msgspec.json.decode(PIMA_EXAMPLE).values())
    assert response.json() == _expected(pima_predictor, row)


async def test_predict_batch_keeps_order(
    client: httpx.AsyncClient, pima_predictor: Predictor
) -> None:
    rows = [[6, 148, 72, 35, 0, 33.6, 0.627, 50], [1, 85, 66, 29, 0, 26.6, 0.351, 31]]
    keys = list(msgspec.json.decode(PIMA_EXAMPLE))
    response = await client.post("/predict", json=[dict(zip(keys, r, strict=True)) for r in rows])
    assert response.status_code == 200
    assert response.json() == [_expected(pima_predictor, r) for r in rows]
    assert response.json()[0]["outcome"] == 1


async def test_predict_csv_has_the_version_header(client: httpx.AsyncClient) -> None:
    body = _CSV_HEADER + b"6,148,72,35,0,33.6,0.627,50\n"
    response = await client.post("/predict", content=body, headers={"content-type": "text/csv"})
    assert response.status_code == 200
    assert response.headers["x-model-version"] == "diabetes:1"
    assert response.text.splitlines()[1].startswith("1,")


async def test_model_and_health(client: httpx.AsyncClient, builtin_bundle: Bundle) -> None:
    model = await client.get("/model")
    assert model.status_code == 200
    assert model.headers["x-model-version"] == "diabetes:1"
    assert model.json() == msgspec.json.decode(msgspec.json.encode(builtin_bundle.manifest))
    health = await client.get("/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok", "model": "diabetes:1"})


@pytest.mark.parametrize("path", ["/ping", "/health", "/model", "/metrics"])
async def test_head_answers_headers_without_a_body(client: httpx.AsyncClient, path: str) -> None:
    get = await client.get(path)
    head = await client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers.get("x-model-version") == get.headers.get("x-model-version")


async def test_metrics_count_requests_latency_predictions_and_model(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        await client.post("/predict", content=PIMA_EXAMPLE)
    await client.post("/predict", content=b"{}")
    await client.get("/nowhere")
    await client.get(f"/nowhere/{MARKER}")
    await client.get("/v2/models/diabetes")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(response.text)
    assert samples['modelapi_requests_total{method="POST",route="/predict",status="200"}'] == 3
    assert samples['modelapi_requests_total{method="POST",route="/predict",status="422"}'] == 1
    assert samples['modelapi_requests_total{method="GET",route="other",status="404"}'] == 2
    assert (
        samples['modelapi_requests_total{method="GET",route="/v2/models/{name}",status="200"}'] == 1
    )
    assert samples['modelapi_request_duration_seconds_count{route="/predict"}'] == 4
    assert samples['modelapi_request_duration_seconds_bucket{le="+Inf",route="/predict"}'] == 4
    assert sum(v for k, v in samples.items() if k.startswith("modelapi_predictions_total")) == 3
    assert samples['modelapi_model_info{name="diabetes",version="1"}'] == 1
    assert samples["modelapi_model_loaded"] == 1
    assert MARKER not in response.text  # a path a client sent is never a label


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def test_metrics_histogram_is_cumulative(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        await client.get("/ping")
    samples = _samples((await client.get("/metrics")).text)
    buckets = [
        v
        for k, v in samples.items()
        if k.startswith("modelapi_request_duration_seconds_bucket") and 'route="/ping"' in k
    ]
    assert buckets == sorted(buckets)
    assert buckets[-1] == 5


# ---- errors: each status, through the HTTP client ----------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [
        ("POST", "/predict", b"{not json", {}, 400, "malformed_body"),
        ("GET", "/missing", b"", {}, 404, "not_found"),
        ("DELETE", "/predict", b"", {}, 405, "method_not_allowed"),
        ("PROPFIND", "/model", b"", {}, 405, "method_not_allowed"),
        ("POST", "/predict", b"x" * 4097, {}, 413, "payload_too_large"),
        ("POST", "/predict", msgspec.json.encode([{}] * 4), {}, 413, "payload_too_large"),
        (
            "POST",
            "/predict",
            PIMA_EXAMPLE,
            {"content-type": "application/xml"},
            415,
            "unsupported_media_type",
        ),
        ("POST", "/predict", b'{"glucose": "high"}', {}, 422, "invalid_input"),
    ],
)
async def test_error_statuses(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["details"]


async def test_405_names_the_allowed_methods(client: httpx.AsyncClient) -> None:
    response = await client.put("/predict", content=PIMA_EXAMPLE)
    assert response.headers["allow"] == "POST"


async def test_422_names_every_bad_field_at_once(client: httpx.AsyncClient) -> None:
    response = await client.post("/predict", json={"glucose": True, "bmi": "x", "extra": 1})
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {
        "glucose", "bmi", "pregnancies", "blood_pressure", "skin_thickness",
        "insulin", "diabetes_pedigree_function", "age",
    }  # fmt: skip


async def test_401_with_an_api_key(settings: Settings) -> None:
    app = create_app(settings.replace(api_key="k3y", reload_interval_s=0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        assert (await c.get("/ping")).status_code == 200
        assert (await c.get("/health")).status_code == 200
        for path in ("/model", "/metrics"):
            denied = await c.get(path)
            assert denied.status_code == 401
            assert denied.headers["www-authenticate"] == "Bearer"
            assert "k3y" not in denied.text
        denied = await c.post("/predict", content=PIMA_EXAMPLE, headers={"x-api-key": "k3"})
        assert denied.status_code == 401
        allowed = await c.post("/predict", content=PIMA_EXAMPLE, headers={"x-api-key": "k3y"})
        assert allowed.status_code == 200
        assert (await c.get("/metrics", headers={"authorization": "Bearer k3y"})).status_code == 200


async def test_503_with_the_reason_until_the_model_can_load(
    settings: Settings, builtin_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "_RETRY_FIRST_S", 0.05)
    app = create_app(settings.replace(model="diabetes@production", reload_interval_s=0))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            for path in ("/health", "/model"):
                response = await c.get(path)
                assert response.status_code == 503
                [detail] = response.json()["details"]
                assert detail["field"] == "model"
                assert "production" in detail["reason"]
            assert (await c.post("/predict", content=PIMA_EXAMPLE)).status_code == 503
            assert (await c.get("/ping")).status_code == 200
            metrics = _samples((await c.get("/metrics")).text)
            assert metrics["modelapi_model_loaded"] == 0

            store = LocalStore(settings.store)
            store.put(builtin_bundle)
            store.set_alias("diabetes", "production", 1)
            deadline = time.monotonic() + 10
            while app.source.predictor is None and time.monotonic() < deadline:
                time.sleep(0.02)
            response = await c.post("/predict", content=PIMA_EXAMPLE)
            assert response.status_code == 200
            assert response.headers["x-model-version"] == "diabetes:1"
    finally:
        app.close()


# ---- the transport edge ------------------------------------------------------------------


async def test_declared_length_over_the_limit_is_refused_unread(app: App) -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("the body must not be read")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope("POST", "/predict", [(b"content-length", b"10000000")])
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert msgspec.json.decode(sent[1]["body"])["error"] == "payload_too_large"


async def test_chunked_body_is_read_only_until_it_passes_the_limit(app: App) -> None:
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope("POST", "/predict", []), receive, send)
    assert sent[0]["status"] == 413
    assert reads == 5  # 5000 bytes is the first total over 4096


async def test_chunked_body_within_the_limit_is_answered(
    app: App, pima_predictor: Predictor
) -> None:
    status, _, body, _ = await call(app, "POST", "/predict", {}, PIMA_EXAMPLE, chunks=7)
    assert status == 200
    row = list(msgspec.json.decode(PIMA_EXAMPLE).values())
    assert msgspec.json.decode(body) == _expected(pima_predictor, row)


@pytest.mark.parametrize("after_chunks", [0, 1])
async def test_client_disconnect_is_not_answered_and_not_an_error(
    app: App, after_chunks: int, caplog: pytest.LogCaptureFixture
) -> None:
    messages = [{"type": "http.request", "body": b"{", "more_body": True}] * after_chunks
    messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.DEBUG):
        await app(_scope("POST", "/predict", []), receive, send)
    assert sent == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_lifespan_startup_and_shutdown(settings: Settings) -> None:
    app = create_app(settings.replace(model="diabetes@production", reload_interval_s=5))
    assert app._watcher is not None
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert app._watcher is None


async def test_websocket_is_refused(app: App) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/predict", "headers": []}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]


# ---- the 500 edge: reachable only by a bug, never by input -------------------------------


def _broken(service: Service, request: Request) -> Response:
    raise RuntimeError("a bug")


async def test_unexpected_error_is_a_logged_generic_500(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app.service.routes["/broken"] = {"GET": _broken}
    with caplog.at_level(logging.ERROR, logger="modelapi.app"):
        status, headers, body, _ = await call(app, "GET", "/broken", {}, b"")
    assert status == 500
    assert headers["content-type"] == "application/json"
    assert msgspec.json.decode(body)["error"] == "internal_error"
    assert b"a bug" not in body
    [record] = caplog.records
    assert record.exc_info is not None
    metrics = _samples(app.metrics.render().decode())  # type: ignore[union-attr]
    assert metrics['modelapi_requests_total{method="GET",route="/broken",status="500"}'] == 1


async def test_failure_while_sending_is_logged_once_and_not_retried(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": PIMA_EXAMPLE, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body":
            raise OSError("connection reset")

    with caplog.at_level(logging.ERROR, logger="modelapi.app"):
        await app(_scope("POST", "/predict", []), receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert len(caplog.records) == 1


_HOSTILE_BODIES = [
    b"",
    b"\x00" * 64,
    b"\xff\xfe\xfd",
    b"[" * 2000,
    b"{" * 2000,
    b'{"a":' * 1000,
    b"[" * 100_000,
    b'"' + b"\\u0000" * 50 + b'"',
    b'{"glucose": 1e999999}',
    b'{"glucose": -0.0, "age": 1e-400}',
    b'{"glucose": 99999999999999999999999999999999999999}',
    b'{"\\ud800": 1}',
    b'{"glucose": "\\ud800"}',
    b'{"__proto__": {}, "constructor": 1}',
    b'[{}, [], null, 1, "x", true]',
    b"[" + b"{}," * 3 + b"{}]",
    msgspec.json.encode({"k" * 100_000: 1}),
    msgspec.json.encode({"glucose": "9" * 4000}),
    msgspec.json.encode({"glucose": " 148 "}),
    msgspec.json.encode({"glucose": "1_000"}),
    msgspec.json.encode({"glucose": "0x10"}),
    msgspec.json.encode({"glucose": "١٤٨"}),
    b"Pregnancies\n" + b"1\n" * 3,
]


@pytest.mark.parametrize("body", _HOSTILE_BODIES, ids=range(len(_HOSTILE_BODIES)))
@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "application/json",
        "text/csv",
        "text/csv; charset=latin-1",
        "application/x-www-form-urlencoded",
        "garbage",
        ";;;",
        "text/csv; ==",
    ],
)
async def test_no_input_reaches_the_500(
    app: App, body: bytes, content_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with caplog.at_level(logging.ERROR):
        status, _, answer, _ = await call(app, "POST", "/predict", headers, body)
    assert status in {200, 400, 413, 415, 422}, answer[:200]
    assert not caplog.records


_CSV_HEADER = (
    b"Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age\n"
)


@pytest.mark.parametrize(
    "body",
    [
        _CSV_HEADER,
        _CSV_HEADER + b"\n\n\n",
        _CSV_HEADER + b'"unterminated\n',
        _CSV_HEADER + b"1,2,3,4,5,6,7,8,9\n",
        _CSV_HEADER + b",,,,,,,\n",
        _CSV_HEADER.replace(b"Age", b"Glucose") + b"1,2,3,4,5,6,7,8\n",
        b"\xef\xbb\xbf" + _CSV_HEADER + b"6,148,72,35,0,33.6,0.627,50\n",
        b"a\x00b\n1\n",
        b"\r\n\r\n",
    ],
)
async def test_no_csv_reaches_the_500(app: App, body: bytes) -> None:
    status, _, answer, _ = await call(app, "POST", "/predict", {"content-type": "text/csv"}, body)
    assert status in {200, 400, 422}, answer[:200]


@pytest.mark.parametrize(
    "method",
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "X-CUSTOM"],
)
@pytest.mark.parametrize(
    "path",
    [
        "/",
        "//",
        "/predict/../ping",
        "/%00",
        "/\udcff",
        "/" + "a" * 10_000,
        "/v2/models//infer",
        "/v2/models/x/infer",
    ],
)
async def test_no_method_or_path_reaches_the_500(app: App, method: str, path: str) -> None:
    status, _, _, _ = await call(app, method, path, {}, b"")
    assert status < 500


async def test_no_header_reaches_the_500(settings: Settings) -> None:
    app = create_app(settings.replace(api_key="k", reload_interval_s=0))
    odd = [
        "",
        " ",
        "Bearer",
        "Bearer ",
        "bearer  k",
        "Basic k",
        "\xff",
        "é" * 10_000,
        "k\x00",
        "-1",
        "1e3",
        "²",
    ]
    for value in odd:
        for name in ("authorization", "x-api-key", "content-type", "content-length"):
            status, _, _, _ = await call(app, "POST", "/predict", {name: value}, PIMA_EXAMPLE)
            assert status in {200, 400, 401, 413, 415, 422}, (name, value[:20])


# ---- bodies and values never reach the logs ----------------------------------------------


async def test_request_values_are_never_logged(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings.replace(api_key="k", reload_interval_s=0, max_body_bytes=2000))
    app.service.routes["/broken"] = {"POST": _broken}
    marked = PIMA_EXAMPLE.replace(b"33.6", MARKER.encode())
    bodies = [
        marked,
        marked[:-1],
        msgspec.json.encode({"glucose": MARKER}),
        msgspec.json.encode({MARKER: 1}),
        msgspec.json.encode([msgspec.json.decode(marked)] * 50),
        f"Glucose\n{MARKER}x\n".encode(),
    ]
    with caplog.at_level(logging.DEBUG):
        for body in bodies:
            for headers in ({"x-api-key": "k"}, {}, {"x-api-key": "k", "content-type": "text/csv"}):
                for path in ("/predict", "/broken", f"/{MARKER}"):
                    await call(app, "POST", path, headers, body)
    assert caplog.records, "the 500 route must have logged something"
    assert MARKER not in caplog.text
    assert MARKER[:8] not in caplog.text


# ---- settings and sources ----------------------------------------------------------------


async def test_create_app_reads_the_environment_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, builtin_bundle: Bundle
) -> None:
    LocalStore(tmp_path).put(builtin_bundle)
    LocalStore(tmp_path).put(builtin_bundle)
    monkeypatch.setenv("MODELAPI_STORE", str(tmp_path))
    monkeypatch.setenv("MODELAPI_MODEL", "diabetes:2")
    monkeypatch.setenv("MODELAPI_MAX_BODY_BYTES", "100")
    app = create_app()
    try:
        status, headers, _, _ = await call(app, "GET", "/model", {}, b"")
        assert (status, headers["x-model-version"]) == (200, "diabetes:2")
        status, _, _, _ = await call(app, "POST", "/predict", {}, PIMA_EXAMPLE)
        assert status == 413
        assert app._watcher is None  # a pinned version never moves
    finally:
        app.close()


async def test_create_app_serves_a_given_source(
    settings: Settings, pima_predictor: Predictor
) -> None:
    source = ModelSource.of(pima_predictor)
    app = create_app(settings, source=source)
    assert app.source is source
    assert app._watcher is None  # a source without a store has nothing to re-check
    status, _, _, _ = await call(app, "GET", "/health", {}, b"")
    assert status == 200


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "query_string": b"",
    }
