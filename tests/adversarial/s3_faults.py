"""A proxy in front of the moto S3 server that fails on demand, for the fault tests.

Modes (switch with `proxy.mode = ...`; open connections are cut so the next request sees it):

- "pass": a plain TCP relay to moto;
- "refuse": nothing listens on the port (connection refused); the port stays bound to the
  proxy (a socket that never listens holds it), so no other process takes it meanwhile;
- "silent": connections are accepted and never answered;
- "403" / "404" / "500": every request gets S3's AccessDenied / NoSuchKey / InternalError;
- "garbage": every request is answered with bytes that are not HTTP;
- "partial": moto's answer with only half of its body, then the connection is closed;
- "drip": moto's answer, one byte every `drip_interval_s` (2 s): never a pause long enough
  for a read timeout, and never done;
- "flood": 200 with a chunked body (no Content-Length) of `flood_bytes` (64 MiB), as an
  object larger than any the store expects, to every request whose target holds
  `flood_only` (default: every request); the others are relayed.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

__all__ = ["FaultProxy", "fault_proxy"]

_ERRORS = {
    "403": (403, "Forbidden", "AccessDenied", "Access Denied"),
    "404": (404, "Not Found", "NoSuchKey", "The specified key does not exist."),
    "500": (500, "Internal Server Error", "InternalError", "We encountered an internal error."),
}
MODES = {"pass", "refuse", "silent", "garbage", "partial", "drip", "flood", *_ERRORS}
_FLOOD_CHUNK = b"7" * (1024 * 1024)


class FaultProxy:
    """An S3 endpoint on 127.0.0.1 that relays to moto or fails as its mode says."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._mode = "pass"
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stop = threading.Event()
        # Bound and never listening, this socket keeps the port the proxy's while "refuse"
        # closes the listener: a connection then meets a refusal, not someone else's server.
        self._holder = _port_socket(0)
        self.port: int = self._holder.getsockname()[1]
        self._listener: socket.socket | None = _port_socket(self.port)
        self._listener.listen()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self.drip_interval_s = 2.0
        self.dripping = 0  # answers being dripped right now
        self.flood_bytes = 64 * 1024 * 1024
        self.flood_only = ""
        self.flooded = 0  # bytes of flood sent
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def mode(self) -> str:
        """The current failure mode."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        assert value in MODES, value
        with self._lock:
            self._mode = value
            for conn in self._open:
                with suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    conn.close()
            self._open.clear()
            if value == "refuse" and self._listener is not None:
                self._listener.close()
                self._listener = None
            elif value != "refuse" and self._listener is None:
                listener = _port_socket(self.port)
                listener.listen()
                self._listener = listener

    def close(self) -> None:
        """Stop accepting and cut every connection."""
        self._stop.set()
        self.mode = "refuse"
        self._thread.join(5)
        self._holder.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            if listener is None:
                self._stop.wait(0.02)
                continue
            try:  # the listener may be closed under us by a switch to "refuse"
                listener.settimeout(0.05)
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                mode = self._mode
                if mode == "refuse":  # accepted as the listener closed: refused after all
                    conn.close()
                    continue
                self._open.add(conn)
            threading.Thread(target=self._serve, args=(conn, mode), daemon=True).start()

    def _serve(self, conn: socket.socket, mode: str) -> None:
        with suppress(OSError), conn:
            if mode == "pass":
                self._relay(conn)
            elif mode == "silent":
                self._stop.wait()  # never answers; cut when the mode changes
            else:
                reader = conn.makefile("rb")
                while (request := _read_request(reader)) is not None:
                    self.requests += 1
                    if mode == "partial":
                        conn.sendall(self._partial(*request))
                        return
                    if mode == "drip":
                        self._drip(conn, self._upstream_answer(*request))
                        return
                    if mode == "garbage":
                        conn.sendall(b"\x00\x9cnot HTTP at all\r\n\r\n")
                        return
                    if mode == "flood" and self.flood_only in request[1]:
                        self._flood(conn)
                        return
                    if mode == "flood":
                        conn.sendall(b"".join(self._upstream_answer(*request)))
                        return
                    status, phrase, code, message = _ERRORS[mode]
                    body = (
                        '<?xml version="1.0" encoding="UTF-8"?>'
                        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
                    ).encode()
                    conn.sendall(
                        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: application/xml\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode()
                        + (body if request[0] != "HEAD" else b"")
                    )

    def _relay(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(self._upstream)
        with self._lock:
            self._open.add(upstream)

        def pump(source: socket.socket, target: socket.socket) -> None:
            with suppress(OSError):
                while data := source.recv(65536):
                    target.sendall(data)
            with suppress(OSError):
                target.shutdown(socket.SHUT_WR)

        thread = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        thread.start()
        pump(conn, upstream)
        thread.join(30)
        upstream.close()

    def _partial(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        head, data = self._upstream_answer(method, target, headers, body)
        return head + data[: len(data) // 2]

    def _drip(self, conn: socket.socket, answer: tuple[bytes, bytes]) -> None:
        with self._lock:
            self.dripping += 1
        try:
            for byte in b"".join(answer):
                conn.sendall(bytes([byte]))
                if self._stop.wait(self.drip_interval_s):
                    return
        finally:
            with self._lock:
                self.dripping -= 1

    def _flood(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (len(_FLOOD_CHUNK), _FLOOD_CHUNK)
        for _ in range(self.flood_bytes // len(_FLOOD_CHUNK)):
            conn.sendall(chunk)
            self.flooded += len(_FLOOD_CHUNK)
        conn.sendall(b"0\r\n\r\n")

    def _upstream_answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[bytes, bytes]:
        """Moto's answer to a request: its head (with Connection: close) and its body."""
        upstream = http.client.HTTPConnection(*self._upstream, timeout=10)
        try:
            upstream.request(method, target, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            lines = [f"HTTP/1.1 {response.status} {response.reason}"]
            lines += [
                f"{k}: {v}" for k, v in response.getheaders() if k.lower() != "content-length"
            ]
            lines += [f"Content-Length: {len(data)}", "Connection: close"]
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), data
        finally:
            upstream.close()


def _port_socket(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:`port` that shares the port with the proxy's others."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def _read_request(reader: object) -> tuple[str, str, dict[str, str], bytes] | None:
    line = reader.readline()  # type: ignore[attr-defined]
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (raw := reader.readline()) not in (b"\r\n", b"\n", b""):  # type: ignore[attr-defined]
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip()] = value.strip()
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    body: bytes = reader.read(length) if length else b""  # type: ignore[attr-defined]
    return method, target, headers, body


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A FaultProxy in front of `upstream`, closed afterwards."""
    proxy = FaultProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
