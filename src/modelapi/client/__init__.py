"""A small Python client for a modelapi server, on the standard library's http.client.

    >>> client = modelapi.Client("http://127.0.0.1:8000")
    >>> client.predict({"pregnancies": 6, "glucose": 148, ...})
    {'outcome': 1, 'probabilities': {'0': 0.28, '1': 0.72}}

One connection is kept alive and reused between calls, so a Client is meant for one thread at
a time (make one per thread). The server's error body comes back as the matching modelapi
error: a 422 is an `InvalidInput` whose `details` name every bad field, a 401 is
`Unauthorized`, a 503 `ModelUnavailable`, and so on; a status the service never sends (a
proxy's 502, say) is a `ServerError` carrying `status`. No connection is `ServerUnreachable`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import urlsplit

import msgspec

from modelapi.client.batches import (
    DEFAULT_BATCH_ROWS,
    Plan,
    Progress,
    csv_plan,
    is_frame,
    predict_plan,
)
from modelapi.errors import (
    ANSWERS,
    ConfigError,
    ErrorBody,
    InvalidInput,
    MethodNotAllowed,
    ModelapiError,
    ServerError,
    ServerUnreachable,
)
from modelapi.extras import require

if TYPE_CHECKING:
    import http.client

    import pandas as pd

__all__ = ["AsyncClient", "Client", "ServerError", "ServerUnreachable"]

_JSON = "application/json"
# Error code -> the error type the server raised, read back from the one table.
_ERRORS: dict[str, type[ModelapiError]] = {answer.code: kind for kind, answer in ANSWERS.items()}
_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class _Base:
    """What both clients share: the server's URL, the key, the limits, and how to predict."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"server URL {url[:100]!r} is not valid: use http(s)://host[:port][/prefix]"
            )
        if timeout_s <= 0:
            raise ConfigError("timeout_s must be a positive number of seconds")
        if batch_rows < 1:
            raise ConfigError("batch_rows must be a positive number of rows")
        self.batch_rows = batch_rows
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        try:
            self._port = parts.port
        except ValueError:
            raise ConfigError(f"server URL {url[:100]!r} has a port outside 1-65535") from None
        self._prefix = parts.path.rstrip("/")
        self._headers = {"Accept": f"{_JSON}, text/csv"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def _plan_options(self, features: object, progress: bool | None) -> dict[str, Any]:
        return {"batch_rows": self.batch_rows, "progress": _progress(features, self, progress)}


class Client(_Base):
    """Call a modelapi server: `predict`, `predict_csv`, `model`, `ping`.

    `url` is the server's base URL (`http://host:8000`, or an API Gateway stage URL such as
    `https://id.execute-api.eu-west-1.amazonaws.com/dev`). `api_key` is sent as
    `Authorization: Bearer KEY` when the server requires one. `batch_rows` is the most rows
    sent in one request.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        super().__init__(url, api_key, timeout_s=timeout_s, batch_rows=batch_rows)
        self._connection: http.client.HTTPConnection | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept-alive connection; the next call opens a new one."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def ping(self) -> bool:
        """Return True when the server answers `/ping`; raise when it cannot be reached."""
        status, _, body = self._request("GET", "/ping")
        return status == 200 and _decode(body) == {"ping": "pong"}

    def model(self) -> dict[str, object]:
        """The served model's manifest: name, version, features, classes, metrics."""
        answer = _decode(self._call("GET", "/model"))
        if not isinstance(answer, dict):
            raise ServerError(f"{self.url}/model did not answer a JSON object", 200)
        return answer

    @overload
    def predict(
        self, features: Mapping[str, object], *, progress: bool | None = None
    ) -> dict[str, object]: ...

    @overload
    def predict(
        self, features: Sequence[Mapping[str, object]], *, progress: bool | None = None
    ) -> list[dict[str, object]]: ...

    @overload
    def predict(self, features: pd.DataFrame, *, progress: bool | None = None) -> pd.DataFrame: ...

    def predict(self, features: object, *, progress: bool | None = None) -> Any:
        """Predict one row (a dict), many (a list of dicts) or a DataFrame, in order.

        Many rows go in requests of at most `batch_rows`, halved when the server says a body
        is too large; a DataFrame comes back as a DataFrame of the answer columns (the
        prediction, then `probability_<class>`), with the same index. `progress` shows rows
        done on stderr (default: when there is more than one request). Raises InvalidInput
        (with `details` naming every bad field, `[i]` counted over the whole input) when the
        server refuses the input.
        """
        return self._run(predict_plan(features, **self._plan_options(features, progress)))

    def predict_csv(self, body: bytes, *, progress: bool | None = None) -> bytes:
        """Send a CSV body (header row + rows), in pieces of lines; return the CSV answer."""
        return self._run(csv_plan(body, **self._plan_options(body, progress)))  # type: ignore[no-any-return]

    def _run(self, plan: Plan) -> Any:
        """Send each request of a plan and hand it the answers; return what it makes of them."""
        try:
            path, body, content_type = next(plan)
            while True:
                try:
                    answer = self._call("POST", path, body, content_type)
                except InvalidInput as exc:
                    path, body, content_type = plan.throw(exc)
                else:
                    path, body, content_type = plan.send(answer)
        except StopIteration as done:
            return done.value

    def _call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> bytes:
        status, headers, data = self._request(method, path, body, content_type)
        if status == 200:
            return data
        raise _error(f"{method} {self.url}{path}", status, headers.get("allow"), data)

    def _request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        # Imported here: http.client and ssl would add tens of milliseconds to every
        # `import modelapi`, the serving start-up and the Lambda cold start included.
        import http.client

        headers = dict(self._headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        # A kept-alive connection may have been closed by the server in the meantime; one
        # retry on a fresh connection covers that. predict has no side effects, so a repeat
        # is safe.
        for attempt in (1, 2):
            reused = self._connection is not None
            connection = self._connection = self._connection or self._connect()
            try:
                connection.request(method, self._prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if reused and attempt == 1:
                    continue
                raise ServerUnreachable(f"{self.url}: the connection was closed ({exc})") from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise ServerUnreachable(f"{self.url}: {_reason(exc)}") from exc
            if response.will_close:
                self.close()
            return response.status, response.headers, data
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> http.client.HTTPConnection:
        import http.client
        import ssl

        if self._https:
            return http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=self.timeout_s,
                context=ssl.create_default_context(),
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)


class AsyncClient(_Base):
    """The calls of `Client`, awaited, over httpx (extra [client]), for asyncio code.

    One AsyncClient may be shared by the tasks of one event loop; close it with `aclose()` or
    `async with`.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> None:
        super().__init__(url, api_key, timeout_s=timeout_s, batch_rows=batch_rows)
        self._httpx = require("httpx", "client")
        self._http = self._httpx.AsyncClient(
            base_url=self.url, headers=self._headers, timeout=timeout_s
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def ping(self) -> bool:
        """Return True when the server answers `/ping`; raise when it cannot be reached."""
        answer: object = _decode(await self._call("GET", "/ping"))
        return answer == {"ping": "pong"}

    async def model(self) -> dict[str, object]:
        """The served model's manifest: name, version, features, classes, metrics."""
        answer = _decode(await self._call("GET", "/model"))
        if not isinstance(answer, dict):
            raise ServerError(f"{self.url}/model did not answer a JSON object", 200)
        return answer

    async def predict(self, features: object, *, progress: bool | None = None) -> Any:
        """Predict one row, many, or a DataFrame, as `Client.predict` does."""
        return await self._run(predict_plan(features, **self._plan_options(features, progress)))

    async def predict_csv(self, body: bytes, *, progress: bool | None = None) -> bytes:
        """Send a CSV body in pieces of lines; return the CSV answer, as `Client.predict_csv`."""
        answer: bytes = await self._run(csv_plan(body, **self._plan_options(body, progress)))
        return answer

    async def _run(self, plan: Plan) -> Any:
        try:
            path, body, content_type = next(plan)
            while True:
                try:
                    answer = await self._call("POST", path, body, content_type)
                except InvalidInput as exc:
                    path, body, content_type = plan.throw(exc)
                else:
                    path, body, content_type = plan.send(answer)
        except StopIteration as done:
            return done.value

    async def _call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> bytes:
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            response = await self._http.request(method, path, content=body, headers=headers)
        except self._httpx.TimeoutException as exc:
            raise ServerUnreachable(f"{self.url}: {_reason(TimeoutError())}") from exc
        except self._httpx.TransportError as exc:
            raise ServerUnreachable(f"{self.url}: cannot connect ({exc})") from exc
        if response.status_code == 200:
            data: bytes = response.content
            return data
        raise _error(
            f"{method} {self.url}{path}",
            response.status_code,
            response.headers.get("allow"),
            response.content,
        )


def _progress(features: object, client: _Base, shown: bool | None) -> Progress | None:
    """A line on stderr counting rows done: when asked, or when there is more than one request."""
    if shown is False:
        return None
    if shown is None:
        if isinstance(features, bytes):
            n_rows = features.count(b"\n")
        elif is_frame(features) or isinstance(features, Sequence):
            n_rows = len(features)  # type: ignore[arg-type]
        else:
            n_rows = 1
        if n_rows <= client.batch_rows:
            return None

    def show(done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\rpredicted {done:,} of {total:,} rows{end}")
        sys.stderr.flush()

    return show


def _reason(exc: BaseException) -> str:
    import socket

    if isinstance(exc, TimeoutError):
        return "no answer within the timeout; is the server up, and is timeout_s long enough?"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused; is the server running on this host and port?"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    return f"cannot connect ({exc})"


def _error(where: str, status: int, allow: str | None, data: bytes) -> ModelapiError:
    """The modelapi error for a non-200 answer: by the body's error code, else by status."""
    try:
        body = msgspec.json.decode(data, type=ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ServerError(f"{where} answered HTTP {status}", status)
    details = tuple(body.details)
    kind = _ERRORS.get(body.error)
    if kind is not None and issubclass(kind, InvalidInput) and details:
        return kind.of(details)
    message = "; ".join(d.reason for d in details) or f"HTTP {status}"
    if kind is MethodNotAllowed:
        allowed = tuple(m.strip() for m in (allow or "").split(",") if m.strip())
        return MethodNotAllowed(message, allowed)
    if kind is not None and not issubclass(kind, InvalidInput):
        return kind(message)
    return ServerError(f"{where} answered HTTP {status}: {message}", status, details)
