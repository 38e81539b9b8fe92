"""modelapi.AsyncClient against the real app under uvicorn on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pandas as pd
import pytest

from modelapi import AsyncClient, Client, FieldError, InvalidInput, ServerUnreachable, Unauthorized
from modelapi.config import Settings
from modelapi.predictor import Predictor
from tests.conftest import PIMA_EXAMPLE
from tests.oracles import answers
from tests.servers import serve_model

pytestmark = pytest.mark.anyio
API_KEY = "another-s3cret-key-for-tests"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def url(pima_predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = str(tmp_path_factory.mktemp("models"))
    settings = Settings(store=store, reload_interval_s=0, api_key=API_KEY, max_body_bytes=4096)
    with serve_model(pima_predictor, settings) as served:
        yield served


async def test_the_same_calls_as_the_client(
    url: str, pima_predictor: Predictor, pima_csv: Path
) -> None:
    example = msgspec.json.decode(PIMA_EXAMPLE)
    rows = [{**example, "age": 20 + i} for i in range(60)]
    frame = pd.read_csv(pima_csv).drop(columns="Outcome").iloc[:300]
    parsed, _ = pima_predictor.features.parse_rows(rows)
    async with AsyncClient(url, api_key=API_KEY, batch_rows=25) as client:
        assert await client.ping() is True
        assert (await client.model())["name"] == "diabetes"
        assert await client.predict(rows, progress=False) == answers(
            pima_predictor, pima_predictor.predict(parsed)
        )
        answered = await client.predict(frame, progress=False)
        csv_answer = await client.predict_csv(frame.to_csv(index=False).encode(), progress=False)
    with Client(url, api_key=API_KEY) as sync:
        pd.testing.assert_frame_equal(answered, sync.predict(frame, progress=False))
        assert csv_answer == sync.predict_csv(frame.to_csv(index=False).encode(), progress=False)


async def test_errors_are_the_modelapi_errors(url: str) -> None:
    example = msgspec.json.decode(PIMA_EXAMPLE)
    async with AsyncClient(url) as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.predict(example)
    async with AsyncClient(url, api_key=API_KEY) as client:
        with pytest.raises(InvalidInput) as caught:
            await client.predict([example, {**example, "glucose": "high"}])
    assert caught.value.details == (FieldError("[1].glucose", "must be a number"),)


async def test_no_server_is_unreachable() -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    async with AsyncClient(f"http://127.0.0.1:{port}", timeout_s=2) as client:
        with pytest.raises(ServerUnreachable, match=f"127.0.0.1:{port}"):
            await client.ping()
