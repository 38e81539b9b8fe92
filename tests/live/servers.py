"""uvicorn on a free port of 127.0.0.1 in a thread, and a plain HTTP/1.1 client for it."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from tests.conformance import Answer

__all__ = ["HttpSend", "serving", "wait_until_up"]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn (uvloop, httptools) on 127.0.0.1; yield its base URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", ws="none", lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "server did not start within 10 s"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class HttpSend:
    """A conformance `send` over one keep-alive HTTP/1.1 connection (reopened if closed)."""

    def __init__(self, url: str) -> None:
        self.connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)

    def __call__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Send one request and read its whole answer."""
        connection = self.connection
        connection.request(method, path, body=body or None, headers=dict(headers))
        response = connection.getresponse()
        data = response.read()
        out = {name.lower(): value for name, value in response.getheaders()}
        if response.will_close:
            connection.close()
        return response.status, out, data

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> HttpSend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until_up(url: str) -> None:
    """Wait up to 20 s for a server (e.g. a `modelapi serve` subprocess) to answer /ping."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with HttpSend(url) as send:
                if send("GET", "/ping", {}, b"")[0] == 200:
                    return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{url} did not answer /ping within 20 s")
