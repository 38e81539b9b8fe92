"""Fixtures of the in-process HTTP tests: the app serving the Pima model, and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from modelapi.app import App
from modelapi.config import Settings
from modelapi.predictor import Predictor
from tests.http.toy_models import running_app


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio, as uvicorn does."""
    return "asyncio"


@pytest.fixture
def app(pima_predictor: Predictor, settings: Settings) -> Iterator[App]:
    """The app serving the built-in Pima model (a test module may define its own)."""
    with running_app(pima_predictor, settings) as app:
        yield app


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to `app` in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
