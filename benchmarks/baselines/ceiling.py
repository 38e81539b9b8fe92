"""The ceiling: a bare ASGI app that answers a constant without reading the request body.

Run under uvicorn with uvloop and httptools, it is the most one server process can answer on
this machine: no framework, no parsing, no model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping

__all__ = ["app"]

Message = MutableMapping[str, object]
_BODY = b'{"outcome": 0}'
_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"14")],
}
_RESPONSE = {"type": "http.response.body", "body": _BODY}


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Answer every HTTP request with the same small JSON body."""
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_RESPONSE)
