"""The ASGI adapter: uvicorn's scope, receive and send in, the service's Request and Response out.

A raw ASGI callable rather than a framework: routing, validation and answers all live in
`modelapi.service`, so a framework would add per-request objects and middleware for nothing.
What is here is only what HTTP transport needs: reading the body within the size limit (a
declared Content-Length over it is refused before any of the body is read), HEAD, client
disconnects, the lifespan protocol, request metrics, and the one place where an unexpected
exception becomes a logged, generic 500.

The model is loaded in `create_app`, never in the lifespan: in-process test transports skip
the lifespan and some adapters run it per invocation. The load runs beside the start-up and
is waited for at most a few seconds, so a slow store delays the start by no more than that
(the app then answers 503 until the load is done). A daemon thread retries a failed load and,
for an alias or a plain name in a store, re-checks it every `reload_interval_s` seconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from time import perf_counter
from typing import Any

from modelapi.config import Settings
from modelapi.errors import PayloadTooLarge
from modelapi.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from modelapi.metrics import Metrics
from modelapi.service import (
    INTERNAL_ERROR_RESPONSE,
    Request,
    Service,
    error_response,
)
from modelapi.source import ModelSource

__all__ = ["App", "RawHeaders", "create_app", "load_first"]

logger = logging.getLogger(__name__)

# ASGI messages are plain dicts whose value types depend on their "type" key.
Scope = Mapping[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_RETRY_FIRST_S = 1.0
_RETRY_MAX_S = 30.0
# How long create_app waits for the first load before it lets the server answer (503 then).
_FIRST_LOAD_WAIT_S = 5.0


# The content types most answers carry, encoded once.
_CONTENT_TYPES = {
    name: name.encode("latin-1")
    for name in ("application/json", "text/csv; charset=utf-8", METRICS_CONTENT_TYPE)
}
_RawHeaders = Sequence[tuple[bytes, bytes]]


class RawHeaders(Mapping[str, str]):
    """The request headers of an ASGI scope, read as a mapping without building a dict.

    A request needs two or three headers (content type and length, perhaps the API key), so
    `get` scans the raw pairs rather than decoding every header a client sends. Names are
    lower-case (ASGI servers send them so); a repeated header reads as its last value, as a
    dict built from the pairs would.
    """

    __slots__ = ("_dict", "_raw")

    def __init__(self, raw: _RawHeaders) -> None:
        self._raw = raw
        self._dict: dict[str, str] | None = None

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The header's value (the last one if repeated), or `default`."""
        name = _NAMES.get(key)
        if name is None:
            name = key.encode("latin-1", "replace")
        found = default
        for raw_name, value in self._raw:
            if raw_name == name:
                found = value.decode("latin-1")
        return found

    def __getitem__(self, key: str) -> str:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self._as_dict())

    def _as_dict(self) -> dict[str, str]:
        if self._dict is None:
            self._dict = {n.decode("latin-1"): v.decode("latin-1") for n, v in self._raw}
        return self._dict


_NAMES = {
    name: name.encode()
    for name in ("content-type", "content-length", "authorization", "x-api-key", "accept")
}


class App:
    """An ASGI 3 application answering every request through a Service."""

    def __init__(self, service: Service, metrics: Metrics | None = None) -> None:
        self.service = service
        self.metrics = metrics
        self.source = service.source
        self.settings = service.settings
        self._watcher: _Watcher | None = None
        self._max_body_bytes = service.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection scope: http, lifespan, or a refused websocket."""
        kind = scope["type"]
        if kind != "http":
            await self._other(kind, receive, send)
            return
        # HTTP is answered here and the body read inline, not in coroutines of their own: each
        # coroutine awaited costs a request about half a microsecond, a tenth of a prediction.
        start = perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        status = 500
        started = False
        try:
            headers = RawHeaders(scope["headers"])
            limit = self._max_body_bytes
            try:
                _check_declared_length(headers, limit)
                message = await receive()
                body: bytes | None
                if message["type"] == "http.request" and not message.get("more_body", False):
                    whole: bytes = message.get("body", b"")
                    if len(whole) > limit:
                        raise _too_large(limit)
                    body = whole
                else:
                    body = await self._read_rest(message, receive)
            except PayloadTooLarge as exc:
                response = error_response(exc)
                # The rest of the body is never read, so this connection cannot be reused.
                response.headers["connection"] = "close"
            else:
                if body is None:
                    return  # the client went away; there is no one to answer
                request = Request(method, path, headers, body)
                response = self.service.handle(request)
            status = response.status
            content_type = _CONTENT_TYPES.get(response.content_type)
            if content_type is None:
                content_type = response.content_type.encode("latin-1")
            raw = [(b"content-type", content_type)]
            if method != "HEAD":
                raw.append((b"content-length", str(len(response.body)).encode()))
            for name, value in response.headers.items():
                raw.append((name.encode("latin-1"), value.encode("latin-1")))
            started = True
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": response.body})
        except Exception:  # the app's edge: anything unexpected is logged in full, once.
            status = 500
            logger.error(
                "unexpected error answering %s %s",
                method,
                self.service.route_label(path),
                exc_info=True,
            )
            if not started:
                await _send_internal_error(send)
        finally:
            if self.metrics is not None:
                self.metrics.observe(
                    self.service.route_label(path), method, status, perf_counter() - start
                )

    async def _other(self, kind: str, receive: Receive, send: Send) -> None:
        if kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            # No route speaks websocket: refusing before accept makes the server answer 403.
            await send({"type": "websocket.close", "code": 1008})

    def watch(self) -> None:
        """Start retrying a failed load and re-checking the reference in a daemon thread."""
        if self._watcher is None:
            watcher = _Watcher(self.source, self.settings.reload_interval_s)
            if watcher.needed:
                watcher.start()
                self._watcher = watcher

    def close(self) -> None:
        """Stop the model watcher thread, if any."""
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    async def _read_rest(self, first: Message, receive: Receive) -> bytes | None:
        """The body sent in several messages, or None if the client disconnected."""
        limit = self._max_body_bytes
        message = first
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] != "http.request":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            message = await receive()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _check_declared_length(headers: Mapping[str, str], limit: int) -> None:
    """Refuse a body whose Content-Length is over the limit before reading any of it."""
    declared = headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge("body", f"must be at most {limit} bytes")


async def _send_internal_error(send: Send) -> None:
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", INTERNAL_ERROR_RESPONSE.content_type.encode()),
                    (b"content-length", b"%d" % len(INTERNAL_ERROR_RESPONSE.body)),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": INTERNAL_ERROR_RESPONSE.body})
    except Exception:
        logger.debug("could not send the 500 answer", exc_info=True)


class _Watcher:
    """Retry a failed load (with back-off) and re-check the reference every interval."""

    def __init__(self, source: ModelSource, interval_s: float) -> None:
        self.source = source
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelapi-watcher", daemon=True)

    @property
    def needed(self) -> bool:
        """Whether there is anything to do: a model to load, or a reference that can move."""
        return self.source.predictor is None or self._reloads

    @property
    def _reloads(self) -> bool:
        ref = self.source.ref
        return (
            self.interval_s > 0
            and self.source.store_uri is not None
            and ref.path is None
            and ref.version is None
        )

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop at its next wake-up."""
        self._stop.set()

    def _run(self) -> None:
        retry_s = _RETRY_FIRST_S
        while True:
            if self.source.predictor is None:
                wait_s, retry_s = retry_s, min(retry_s * 2, _RETRY_MAX_S)
            elif self._reloads:
                wait_s, retry_s = self.interval_s, _RETRY_FIRST_S
            else:
                return
            if self._stop.wait(wait_s):
                return
            try:
                self._tick()
            except Exception:  # a thread's edge: log, keep serving what is loaded, try again.
                logger.error("model check for %s failed", self.source.ref, exc_info=True)

    def _tick(self) -> None:
        source = self.source
        if source.predictor is None:
            if not source.is_loading:  # the first load may still be running
                source.load()
            return
        # refresh() finds what the reference names now, in the store or (a plain name the
        # store does not hold) among the built-in models, and loads it only if it changed.
        source.refresh()


def create_app(settings: Settings | None = None, *, source: ModelSource | None = None) -> App:
    """Build the ASGI app and load its model; settings default to Settings.from_env().

    The load is waited for at most 5 s; a model that is still loading, or cannot be loaded,
    is answered with 503 (and the reason) until the load or a background retry succeeds. The
    app itself always starts.
    """
    settings = settings if settings is not None else Settings.from_env()
    if source is None:
        source = ModelSource(
            settings.model,
            settings.store,
            reload_interval_s=settings.reload_interval_s,
            store_deadline_s=settings.store_deadline_s,
        )
    if source.predictor is None:
        load_first(source)
    metrics = Metrics(model=source.model_labels)
    app = App(Service(source, settings, load_on_request=False, metrics=metrics), metrics)
    app.watch()
    return app


def load_first(source: ModelSource, wait_s: float = _FIRST_LOAD_WAIT_S) -> None:
    """Load the model in a thread, waiting for it at most `wait_s`.

    A store that answers slowly (or drips its answer) would otherwise keep the server from
    answering anything, /ping and /health included, until the load's deadline.
    """
    loading = threading.Thread(target=source.load, name="modelapi-first-load", daemon=True)
    loading.start()
    loading.join(wait_s)
    if loading.is_alive():
        logger.warning(
            "model %s is still loading after %g s; answering 503 until it is loaded",
            source.ref,
            wait_s,
        )
