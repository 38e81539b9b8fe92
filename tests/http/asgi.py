"""A minimal synchronous ASGI driver: one request in, (status, headers, body) out.

It speaks ASGI directly (no HTTP client in between), so the conformance table checks the
app exactly as a server would call it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from tests.conformance import Answer, Send

__all__ = ["asgi_send", "call"]


async def call(
    app: Any,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    chunks: int = 1,
) -> tuple[int, dict[str, str], bytes, list[dict[str, Any]]]:
    """Call an ASGI app once; return the status, headers, body and every message sent."""
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    if body and chunks == 1 and "content-length" not in headers:
        raw.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"",
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    queue = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    out_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    out_body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], out_headers, out_body, sent


def asgi_send(app: Any) -> Send:
    """A conformance `send` for an ASGI app, run in a fresh event loop per request."""

    def send(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        status, out_headers, out_body, _ = asyncio.run(call(app, method, path, headers, body))
        return status, out_headers, out_body

    return send
