"""HTTP requests to a store's endpoint on the standard library: inside a deadline, with a bound.

A read timeout alone bounds the wait for each byte, not for the answer: an endpoint that sends
one byte every two seconds keeps a read going for hours. Every request here has a deadline
for the whole exchange, connecting and the TLS handshake included: a timer shuts the socket
down when it passes, which ends whatever read is waiting, and the request fails with
DeadlinePassed. The body of an answer is read up to a bound and no further (a declared
Content-Length over it is refused before any of the body is read), so a store can never make
a process hold more than it expects.

Connections are kept alive and reused (a cold start reads three objects, over one TLS
handshake instead of three); a reused connection that the server has closed in the meantime is
replaced once, at once, as urllib3 does.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, NamedTuple

from modelapi.errors import ConfigError

if TYPE_CHECKING:
    import ssl

__all__ = [
    "Answer",
    "DeadlinePassed",
    "TooLarge",
    "Transport",
    "Unreachable",
    "host_header",
    "split_url",
]

# Error answers are read for their code and message only, never in full.
_MAX_ERROR_BYTES = 64 * 1024
_CHUNK_BYTES = 1024 * 1024
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Unreachable(Exception):
    """No whole answer came back: `kind` is botocore's name for the same failure."""

    def __init__(self, kind: str, url: str) -> None:
        super().__init__(f"{kind}: {url}")
        self.kind = kind


class DeadlinePassed(Exception):
    """The exchange did not finish before its deadline."""


class TooLarge(Exception):
    """An answer's body is over the bound: `size` is its declared size, None if not declared."""

    def __init__(self, size: int | None) -> None:
        super().__init__(f"body of {size} bytes" if size is not None else "body over the bound")
        self.size = size


class Answer(NamedTuple):
    """An HTTP answer: status, reason, headers (lower-case names) and the body that was read."""

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: int


def split_url(url: str) -> tuple[str, str, int, str]:
    """Scheme, host, port and request target of an absolute http(s) URL.

    Raises ValueError naming what is wrong.
    """
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    authority, slash, path = rest.partition("/")
    authority, _, query = authority.partition("?")
    target = slash + path if slash else "/"
    if query and not slash:
        target = "/?" + query
    if "@" in authority:
        raise ValueError("must not hold a user name or password")
    host, port_text = authority, ""
    if authority.startswith("["):
        host, _, after = authority[1:].partition("]")
        port_text = after.removeprefix(":")
    elif ":" in authority:
        host, _, port_text = authority.rpartition(":")
    if not host:
        raise ValueError("has no host")
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        raise ValueError("has a port that is not a number")
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise ValueError("has a port outside 1-65535")
    return scheme, host, port, target


def host_header(scheme: str, host: str, port: int) -> str:
    """The Host header for host and port, as botocore signs it: no port when it is the default."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port == (443 if scheme == "https" else 80) else f"{shown}:{port}"


class _Request(NamedTuple):
    method: str
    url: str
    target: str
    headers: dict[str, str]
    body: bytes | None
    deadline: float
    max_bytes: int


class Transport:
    """Keep-alive connections to HTTP(S) endpoints, and requests on them within a deadline."""

    def __init__(
        self, *, connect_timeout_s: float, read_timeout_s: float, ca_bundle: str | None = None
    ) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.ca_bundle = ca_bundle
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[http.client.HTTPConnection]] = {}

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        deadline: float,
        max_bytes: int,
        body: bytes | None = None,
    ) -> Answer:
        """Send one request and read its answer by `deadline` (a time.monotonic() value).

        A body of a successful answer over `max_bytes` raises TooLarge; an error answer's is
        read up to 64 KiB. Raises Unreachable when no whole answer arrives, DeadlinePassed when
        the deadline passes first. ValueError for a URL that is not absolute http(s).
        """
        scheme, host, port, target = split_url(url)
        origin = _Origin(scheme, host, port)
        sent = dict(headers)
        if not any(name.lower() == "host" for name in sent):
            # http.client would add the port of plain HTTP to an https host, which is not the
            # Host header a signature covers.
            sent["Host"] = host_header(scheme, host, port)
        request = _Request(method, url, target, sent, body, deadline, max_bytes)
        connection = self._take(origin)
        if connection is not None:
            try:
                return self._exchange(connection, origin, request)
            except Unreachable as exc:
                # The server closed the idle connection since its last answer: nothing was
                # read, so the request is sent again at once on a new one.
                if not isinstance(exc.__cause__, _STALE):
                    raise
        return self._exchange(self._connect(origin, url, deadline), origin, request)

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def __del__(self) -> None:
        # A store dropped with connections kept alive closes them, rather than leave each
        # socket to be closed (with a ResourceWarning) by the garbage collector.
        self.close()

    def _take(self, origin: _Origin) -> http.client.HTTPConnection | None:
        with self._lock:
            connections = self._idle.get(origin)
            return connections.pop() if connections else None

    def _give_back(self, origin: _Origin, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(origin, []).append(connection)

    def _connect(self, origin: _Origin, url: str, deadline: float) -> http.client.HTTPConnection:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlinePassed
        try:
            sock = socket.create_connection(
                (origin.host, origin.port), min(self.connect_timeout_s, remaining)
            )
        except TimeoutError as exc:
            if time.monotonic() >= deadline:
                raise DeadlinePassed from exc
            raise Unreachable("ConnectTimeoutError", url) from exc
        except OSError as exc:
            raise Unreachable("EndpointConnectionError", url) from exc
        if origin.scheme == "https":
            sock = self._handshake(sock, origin.host, url, deadline)
        connection = http.client.HTTPConnection(origin.host, origin.port)
        connection.auto_open = 0  # every socket is made here, where its deadline is kept
        connection.sock = sock
        return connection

    def _handshake(
        self, sock: socket.socket, host: str, url: str, deadline: float
    ) -> socket.socket:
        """The TLS connection over `sock`, its handshake done within the deadline."""
        try:
            context = self._ssl_context()
        except ConfigError:
            sock.close()
            raise
        secure = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
        timer = _Timer(secure, deadline - time.monotonic())
        try:
            secure.settimeout(self.connect_timeout_s)
            secure.do_handshake()
        except OSError as exc:  # ssl.SSLError is an OSError too
            secure.close()
            if timer.stop():
                raise DeadlinePassed from exc
            kind = "ConnectTimeoutError" if isinstance(exc, TimeoutError) else "SSLError"
            raise Unreachable(kind, url) from exc
        if timer.stop():
            secure.close()
            raise DeadlinePassed
        return secure

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            import ssl  # only https endpoints need it

            try:
                self._context = ssl.create_default_context(cafile=self.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"the CA bundle {self.ca_bundle!r} cannot be read ({exc}): fix AWS_CA_BUNDLE,"
                    " REQUESTS_CA_BUNDLE or the AWS config file's ca_bundle"
                ) from None
        return self._context

    def _exchange(
        self, connection: http.client.HTTPConnection, origin: _Origin, request: _Request
    ) -> Answer:
        url, deadline, max_bytes = request.url, request.deadline, request.max_bytes
        sock = connection.sock
        remaining = deadline - time.monotonic()
        if sock is None or remaining <= 0:
            connection.close()
            if sock is None:
                raise Unreachable("ConnectionClosedError", url)
            raise DeadlinePassed
        timer = _Timer(sock, remaining)
        response: http.client.HTTPResponse | None = None
        phase = "ConnectionClosedError"
        try:
            sock.settimeout(self.read_timeout_s)
            connection.request(
                request.method, request.target, body=request.body, headers=request.headers
            )
            response = connection.getresponse()
            phase = "ResponseStreamingError"
            is_success = response.status < 300
            # http.client takes a head cut short for a whole one with no headers: a body
            # with no declared length could be any part of the object.
            if is_success and response.length is None and not response.chunked:
                raise http.client.IncompleteRead(b"")
            limit = max_bytes if is_success else _MAX_ERROR_BYTES
            if is_success and response.length is not None and response.length > limit:
                raise TooLarge(response.length)
            data = _read(response, limit)
            if len(data) > limit:
                if is_success:
                    raise TooLarge(response.length)
                data = data[:limit]
        except (TooLarge, OSError, http.client.HTTPException) as exc:
            _close(connection, response)
            if timer.stop():
                raise DeadlinePassed from exc
            if isinstance(exc, TooLarge):
                raise
            if isinstance(exc, TimeoutError):
                raise Unreachable("ReadTimeoutError", url) from exc
            raise Unreachable(phase, url) from exc
        if timer.stop():
            # The timer shut the socket as the answer arrived, and a cut answer can look whole.
            _close(connection, response)
            raise DeadlinePassed
        if response.isclosed() and not response.will_close:  # read to its end: reusable
            self._give_back(origin, connection)
        else:
            _close(connection, response)
        headers_read: dict[str, str] = {}
        for name, value in response.getheaders():
            name = name.lower()
            headers_read[name] = f"{headers_read[name]}, {value}" if name in headers_read else value
        return Answer(response.status, response.reason, headers_read, data)


def _close(
    connection: http.client.HTTPConnection, response: http.client.HTTPResponse | None
) -> None:
    # The answer first: it holds the socket's file, and left to the garbage collector the
    # two could be finalised in either order (with a ResourceWarning for the socket).
    if response is not None:
        response.close()
    connection.close()


def _read(response: http.client.HTTPResponse, limit: int) -> bytes:
    """The body, or its first `limit` + 1 bytes; raise IncompleteRead if it was cut short."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        part = response.read(min(_CHUNK_BYTES, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    data = b"".join(parts)
    if size <= limit and response.length:  # http.client counts down what is still due
        raise http.client.IncompleteRead(data, response.length)
    return data


class _Timer:
    """Shut a socket down when its deadline passes, unless stopped first."""

    def __init__(self, sock: socket.socket, after_s: float) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._done = False
        self._fired = False
        self._timer = threading.Timer(after_s, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        # Under the lock: stop() waits for this, so the socket is never shut once it is in use
        # again by the next request.
        with self._lock:
            if self._done:
                return
            self._fired = True
            # The plain socket's shutdown, also for a TLS socket: it ends a read waiting in
            # another thread, where SSLSocket.shutdown would unwrap the connection under it.
            with suppress(OSError):
                socket.socket.shutdown(self._sock, socket.SHUT_RDWR)

    def stop(self) -> bool:
        """Stop the timer; return whether it had already fired."""
        with self._lock:
            self._done = True
            fired = self._fired
        self._timer.cancel()
        return fired
