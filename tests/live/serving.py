"""A modelapi app under a real uvicorn server on a free port of 127.0.0.1, in a thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from modelapi.app import create_app
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.source import ModelSource

__all__ = ["serving"]


@contextmanager
def serving(predictor: Predictor | None, settings: Settings) -> Iterator[str]:
    """Serve `predictor` (None: no model loaded) and yield the base URL; stop afterwards."""
    source = (
        ModelSource.of(predictor)
        if predictor is not None
        else ModelSource("absent", settings.store)
    )
    app = create_app(settings, source=source)
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "server did not start within 10 s"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        app.close()
