"""Answer amplification: no request can ask for an answer much larger than itself.

A V2 infer request named `probabilities` in `outputs` as many times as it liked, and each was
answered whole: 10,000 rows and 1,000 repeats (185 KB sent) asked for 410 MB of JSON, and
35,000 repeats for 14 GB, which killed the server. Now a repeated or unknown output is refused
before anything is predicted, and every answer is capped by MODELAPI_MAX_ANSWER_BYTES.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.service import MAX_ERROR_DETAILS, Request, Service
from modelapi.source import ModelSource
from tests.servers import HttpSend, ServeProcess, rss_bytes, serve_process

KEYS = (
    "pregnancies",
    "glucose",
    "blood_pressure",
    "skin_thickness",
    "insulin",
    "bmi",
    "diabetes_pedigree_function",
    "age",
)
N_ROWS = 10_000
N_REPEATS = 1_000
INFER = "/v2/models/diabetes/infer"
# What serving the hostile request may add to the server's memory; its answer alone was 410 MB.
MAX_GROWTH_BYTES = 64 * 1024 * 1024


def _infer(n_rows: int, outputs: list[str] | None) -> bytes:
    request: dict[str, object] = {
        "inputs": [
            {"name": key, "shape": [n_rows], "datatype": "FP64", "data": [1] * n_rows}
            for key in KEYS
        ]
    }
    if outputs is not None:
        request["outputs"] = [{"name": name} for name in outputs]
    return msgspec.json.encode(request)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`modelapi serve` with the default limits."""
    with serve_process(tmp_path_factory.mktemp("serve-amplification")) as process:
        yield process


def test_repeated_outputs_are_refused_before_any_answer_is_built(server: ServeProcess) -> None:
    body = _infer(N_ROWS, ["outcome", *["probabilities"] * N_REPEATS])
    assert len(body) < 1024 * 1024, "it fits the default body limit"
    with HttpSend(server.url) as send:
        send("POST", INFER, {}, _infer(N_ROWS, None))  # warm up: the V2 module, the buffers
        before = rss_bytes(server.process.pid)
        status, _, answer = send("POST", INFER, {}, body)
        after = rss_bytes(server.process.pid)
        assert send("GET", "/ping", {}, b"")[0] == 200, "the server is still up"
    assert status == 422, answer[:300]
    assert len(answer) < 32 * 1024
    details = msgspec.json.decode(answer)["details"]
    assert [d["field"] for d in details[:3]] == [f"outputs[{i}].name" for i in (2, 3, 4)]
    assert len(details) == MAX_ERROR_DETAILS + 1
    assert after - before < MAX_GROWTH_BYTES, (before, after)


def test_each_output_may_be_named_once(pima_predictor: Predictor) -> None:
    service = Service(ModelSource.of(pima_predictor), Settings(store="/nonexistent"))

    def ask(outputs: list[str]) -> tuple[int, object]:
        response = service.handle(Request("POST", INFER, {}, _infer(3, outputs)))
        return response.status, msgspec.json.decode(response.body)

    status, answer = ask(["probabilities", "outcome"])
    assert status == 200
    assert isinstance(answer, dict)
    assert [o["name"] for o in answer["outputs"]] == ["probabilities", "outcome"]
    status, answer = ask(["outcome", "outcome"])
    assert (status, answer) == (
        422,
        {
            "error": "invalid_input",
            "details": [{"field": "outputs[1].name", "reason": "is asked for twice; name it once"}],
        },
    )
    status, answer = ask(["outcome", "label", "probabilities", "outcome"])
    assert status == 422
    assert isinstance(answer, dict)
    assert [d["field"] for d in answer["details"]] == ["outputs[1].name", "outputs[3].name"]


def test_every_answer_is_capped(tmp_path_factory: pytest.TempPathFactory) -> None:
    cap = 64 * 1024
    env = {"MODELAPI_MAX_ANSWER_BYTES": str(cap)}
    row = b"{" + b",".join(b'"%s":1' % k.encode() for k in KEYS) + b"}"
    requests = [
        ("/predict", "application/json", b"[" + b",".join([row] * 2000) + b"]"),
        (INFER, "application/json", _infer(2000, None)),
    ]
    cwd = tmp_path_factory.mktemp("serve-cap")
    with serve_process(cwd, env=env) as server, HttpSend(server.url) as send:
        for path, content_type, body in requests:
            status, _, answer = send("POST", path, {"content-type": content_type}, body)
            assert status == 413, (path, answer[:200])
            [detail] = msgspec.json.decode(answer)["details"]
            assert detail["reason"].startswith(f"asks for an answer of more than {cap} bytes")
        assert send("POST", "/predict", {}, row)[0] == 200
