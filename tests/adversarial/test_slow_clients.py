"""Slow and greedy clients: no connection, header or pipeline can hold `modelapi serve`.

Before, with uvicorn's defaults: half-sent requests were kept for ever (1,008 of them from one
process, at a 1,024 descriptor limit, made every new client be reset); a 64 MiB header was
answered 200 and 4 M small headers took memory to 543 MiB; 100,000 pipelined GETs (3 MiB) took
memory from 32 to 262 MiB and kept it. Each test runs `modelapi serve` in its own process with
short deadlines and reads its memory from /proc.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from tests.servers import HttpSend, ServeProcess, rss_bytes, serve_process

FAST = {
    "MODELAPI_HEADER_TIMEOUT_S": "1",
    "MODELAPI_BODY_TIMEOUT_S": "1",
    "MODELAPI_KEEP_ALIVE_TIMEOUT_S": "1",
}
# How long a client waits for the server to act on a 1 s deadline (uvicorn's own keep-alive
# time-out, 5 s, is longer).
WAIT_S = 4.0
# What a test's hostile traffic may add to the server's resident memory.
MAX_GROWTH_BYTES = 24 * 1024 * 1024
HALF_REQUEST = b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`modelapi serve` with 1 s deadlines and the default size limits."""
    with serve_process(tmp_path_factory.mktemp("serve-slow"), env=FAST) as process:
        yield process


def _connect(url: str, timeout_s: float = 10) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout_s)


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def _error(answer: bytes) -> str:
    decoded = msgspec.json.decode(answer.partition(b"\r\n\r\n")[2])
    return str(decoded["error"])


def test_an_unfinished_head_or_body_is_answered_408_and_closed(server: ServeProcess) -> None:
    # The deadlines are 1 s: a server that keeps waiting trips the client's time-out instead.
    with (
        _connect(server.url, WAIT_S) as head,
        _connect(server.url, WAIT_S) as body,
        _connect(server.url, WAIT_S) as idle,
    ):
        head.sendall(HALF_REQUEST)
        body.sendall(HALF_REQUEST + b"content-length: 100\r\n\r\n{")
        heads, bodies = _read_all(head), _read_all(body)
        assert _read_all(idle) == b"", "a connection that sends nothing is closed silently"
    assert (_status(heads), _error(heads)) == (408, "request_timeout")
    assert (_status(bodies), _error(bodies)) == (408, "request_timeout")
    assert b'"its body must arrive within 1 s"' in bodies


def test_an_idle_keep_alive_connection_is_closed(server: ServeProcess) -> None:
    with _connect(server.url, WAIT_S) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n")
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 ")


def _lower_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_half_sent_requests_past_the_descriptor_limit_do_not_lock_out_new_clients(
    tmp_path: Path,
) -> None:
    # 300 half-sent requests against a server that may open 256 descriptors: it caps its
    # connections below that and closes the one waiting longest to take each new one.
    env = {"MODELAPI_HEADER_TIMEOUT_S": "30"}
    with serve_process(tmp_path, env=env, preexec=_lower_descriptor_limit) as server:
        slow = []
        try:
            for _ in range(300):
                sock = _connect(server.url)
                sock.sendall(HALF_REQUEST)
                slow.append(sock)
            for _ in range(5):
                with HttpSend(server.url) as send:
                    assert send("GET", "/ping", {}, b"")[0] == 200
            n_open = len(list(Path(f"/proc/{server.process.pid}/fd").iterdir()))
            assert n_open < 256
        finally:
            for sock in slow:
                sock.close()
    assert "lowered to 192" in server.output()


def _rss_peak(pid: int, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], rss_bytes(pid))
        time.sleep(0.01)


def _measured(server: ServeProcess) -> tuple[threading.Event, list[int], threading.Thread]:
    stop, peak = threading.Event(), [rss_bytes(server.process.pid)]
    thread = threading.Thread(target=_rss_peak, args=(server.process.pid, stop, peak))
    thread.start()
    return stop, peak, thread


def _send_until_refused(sock: socket.socket, head: bytes, piece: bytes, limit: int) -> int:
    """Send the head then pieces until the server stops reading or `limit` bytes; return sent."""
    sent = 0
    try:
        sock.sendall(head)
        while sent < limit:
            sock.sendall(piece)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


@pytest.mark.parametrize(
    ("piece", "what"),
    [(b"a" * 65536, "one 64 MiB header"), (b"x-h: 1\r\n" * 8192, "millions of small headers")],
    ids=["one-huge-header", "many-headers"],
)
def test_an_oversized_head_is_refused_with_431(
    server: ServeProcess, piece: bytes, what: str
) -> None:
    before = rss_bytes(server.process.pid)
    stop, peak, thread = _measured(server)
    try:
        with _connect(server.url, timeout_s=5) as sock:
            head = b"GET /ping HTTP/1.1\r\nhost: x\r\n" + (b"x-big: " if b"a" in piece else b"")
            sent = _send_until_refused(sock, head, piece, 64 * 1024 * 1024)
            answer = _read_all(sock)
    finally:
        stop.set()
        thread.join()
    assert sent < 8 * 1024 * 1024, f"the server read {what} on"
    assert (_status(answer), _error(answer)) == (431, "headers_too_large")
    assert peak[0] - before < MAX_GROWTH_BYTES, (before, peak[0])


def test_pipelined_requests_are_read_as_they_are_answered(server: ServeProcess) -> None:
    n_requests = 30_000
    request = b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n"
    before = rss_bytes(server.process.pid)
    stop, peak, thread = _measured(server)
    received = bytearray()
    try:
        with _connect(server.url, timeout_s=30) as sock:
            sender = threading.Thread(target=sock.sendall, args=(request * n_requests,))
            sender.start()
            while received.count(b"HTTP/1.1 200 ") < n_requests:
                chunk = sock.recv(1 << 20)
                assert chunk, "the server closed the connection"
                received += chunk
            sender.join()
    finally:
        stop.set()
        thread.join()
    assert received.count(b'{"ping": "pong"}') == n_requests, "every request is answered"
    assert peak[0] - before < MAX_GROWTH_BYTES, (before, peak[0])
