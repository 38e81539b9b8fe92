"""The Serverless stack's one-parameter protection under serverless-offline: an API key.

`--param="private=true"` makes every route but /ping private: API Gateway (here,
serverless-offline's emulation of it) answers 403 without the key and passes the request on
with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.aws_lambda.offline import Offline, running_offline
from tests.conftest import PIMA_EXAMPLE


@pytest.fixture(scope="module")
def private_offline(local_project: Path) -> Iterator[Offline]:
    """serverless-offline on the project deployed as private (API key required)."""
    with running_offline(local_project, "--param=private=true") as server:
        yield server


def test_predict_needs_the_api_key(private_offline: Offline) -> None:
    url = f"{private_offline.url}/dev/predict"
    headers = {"content-type": "application/json"}
    refused = httpx.post(url, content=PIMA_EXAMPLE, headers=headers, timeout=60)
    assert refused.status_code == 403
    wrong = httpx.post(
        url, content=PIMA_EXAMPLE, headers={**headers, "x-api-key": "not-the-key"}, timeout=60
    )
    assert wrong.status_code == 403
    key = private_offline.api_key()
    allowed = httpx.post(
        url, content=PIMA_EXAMPLE, headers={**headers, "x-api-key": key}, timeout=60
    )
    assert allowed.status_code == 200
    assert allowed.json()["outcome"] == 0


def test_ping_stays_open(private_offline: Offline) -> None:
    answer = httpx.get(f"{private_offline.url}/dev/ping", timeout=60)
    assert answer.status_code == 200
    health = httpx.get(f"{private_offline.url}/dev/health", timeout=60)
    assert health.status_code == 403
