"""serverless-offline on the generated serverless.yml: the original tutorial's curl, unchanged.

serverless-offline emulates API Gateway (REST, `/dev` stage) and runs the Python handlers in
its own runner, building the events with its own code. One server for the module; every
answer is compared with the service's own answer to the same request.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelapi.aws_lambda import LambdaHandler
from modelapi.config import Settings
from modelapi.service import Request, Response
from modelapi.store.builtin import BUILTIN_ROOT
from tests.aws_lambda.events import CONTRACT_ROW
from tests.aws_lambda.offline import Offline, running_offline
from tests.conftest import PIMA_EXAMPLE, require_tool

CURL_BODY = (
    '{"pregnancies": 2, "glucose": 148, "blood_pressure": 72, "skin_thickness": 35,'
    ' "insulin": 0, "bmi": 33.6, "diabetes_pedigree_function": 0.674, "age": 22}'
)
CSV_BODY = (
    b"pregnancies,glucose,blood_pressure,skin_thickness,insulin,bmi,diabetes_pedigree_function,age\n"
    b"6,148,72,35,0,33.6,0.627,50\n2,148,72,35,0,33.6,0.674,22\n"
)


@pytest.fixture(scope="module")
def offline(local_project: Path) -> Iterator[Offline]:
    """serverless-offline on the project, open (no API key)."""
    with running_offline(local_project) as server:
        yield server


def reference(method: str, path: str, body: bytes = b"", content_type: str = "") -> Response:
    """The service's own answer, in process."""
    handler = LambdaHandler(Settings(), embedded_model=BUILTIN_ROOT / "diabetes" / "1")
    headers = {"content-type": content_type} if content_type else {}
    return handler.service().handle(Request(method, path, headers, body))


def test_the_tutorial_curl_predicts(offline: Offline) -> None:
    curl = require_tool("curl", "apt-get install curl")
    # The tutorial's command, plus -s -w to read the status.
    command = ["-X", "POST", f"{offline.url}/dev/predict", "-d", CURL_BODY]
    result = subprocess.run(
        [curl, "-s", "-w", "\n%{http_code}", *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    body, _, status = result.stdout.rpartition("\n")
    assert status == "200", result.stdout + offline.printed()[-2000:]
    # curl -d sends application/x-www-form-urlencoded, as the tutorial's users do.
    expected = reference(
        "POST", "/predict", CURL_BODY.encode(), "application/x-www-form-urlencoded"
    )
    assert json.loads(body) == json.loads(expected.body)
    assert json.loads(body)["outcome"] == 0


def test_ping(offline: Offline) -> None:
    answer = httpx.get(f"{offline.url}/dev/ping", timeout=60)
    assert answer.status_code == 200
    assert answer.json() == {"ping": "pong"}


def test_batch_and_model_version(offline: Offline) -> None:
    body = b"[" + CONTRACT_ROW + b", " + PIMA_EXAMPLE + b"]"
    answer = httpx.post(
        f"{offline.url}/dev/predict",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 200
    expected = reference("POST", "/predict", body, "application/json")
    assert answer.json() == json.loads(expected.body)
    assert [row["outcome"] for row in answer.json()] == [1, 0]
    assert answer.headers["x-model-version"] == "diabetes:1"


def test_csv_body(offline: Offline) -> None:
    answer = httpx.post(
        f"{offline.url}/dev/predict",
        content=CSV_BODY,
        headers={"content-type": "text/csv"},
        timeout=60,
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content == reference("POST", "/predict", CSV_BODY, "text/csv").body


@pytest.mark.parametrize(
    ("body", "status"),
    [(b'{"pregnancies": 2}', 422), (b'{"pregnancies": 2, "glucose": "high"', 400)],
    ids=["invalid", "malformed"],
)
def test_bad_bodies_answer_the_error_shape(offline: Offline, body: bytes, status: int) -> None:
    answer = httpx.post(
        f"{offline.url}/dev/predict",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == status
    expected = reference("POST", "/predict", body, "application/json")
    assert expected.status == status
    assert answer.json() == json.loads(expected.body)
    assert set(answer.json()) == {"error", "details"}


def test_other_routes_go_through_the_api_function(offline: Offline) -> None:
    health = httpx.get(f"{offline.url}/dev/health", timeout=60)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "model": "diabetes:1"}
    nowhere = httpx.get(f"{offline.url}/dev/nowhere", timeout=60)
    assert nowhere.status_code == 404
    assert nowhere.json()["error"] == "not_found"
