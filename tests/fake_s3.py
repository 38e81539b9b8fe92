"""A small S3 on 127.0.0.1 that checks every request's SigV4 signature, for the reader tests.

One bucket, in eu-west-1. As S3 does, it answers a request signed for another region with a
redirect to its own, in the ways S3 has of saying so; it can also answer with a queue of
canned answers (errors, throttling) before serving objects, and counts the connections it
accepted (so that keep-alive can be seen).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

__all__ = ["BUCKET", "SECRET", "FakeS3", "Seen", "error_body", "fake_s3"]

BUCKET = "models-bucket"
SECRET = "secret"


@dataclass
class Seen:
    """One request the fake S3 received: its raw path, signing region and headers."""

    path: str
    region: str
    headers: dict[str, str]


def error_body(code: str, message: str, extra: str = "") -> bytes:
    """S3's XML error body."""
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}"
        f"</Message>{extra}<RequestId>R1</RequestId><HostId>H1</HostId></Error>"
    ).encode()


class FakeS3(http.server.ThreadingHTTPServer):
    """The bucket's objects, and how a request signed for the wrong region is answered."""

    daemon_threads = True

    def __init__(self, redirect: str = "moved") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_port}"
        self.region = "eu-west-1"
        # moved: 301 PermanentRedirect naming the region in x-amz-bucket-region;
        # malformed: 400 AuthorizationHeaderMalformed naming it in the error's Region;
        # regionless: 301 naming none; loop: 301 to eu-west-1 whatever the signature;
        # bad: 301 naming something that is no region.
        self.redirect = redirect
        self.objects: dict[str, bytes] = {}
        self.seen: list[Seen] = []
        # (status, body[, headers]) answered, in order, before any object is served; a
        # Content-Length among the headers is sent instead of the body's own.
        self.canned: list[tuple[int, bytes] | tuple[int, bytes, dict[str, str]]] = []
        self.connections = 0
        # Close each connection after its answer without saying so, as a server whose idle
        # timeout passed does: the client finds out at its next request.
        self.drop_idle = False
        self.read_path = ""  # which way the test reads it, for the test's own use

    def get_request(self) -> tuple[object, object]:
        self.connections += 1
        return super().get_request()  # type: ignore[no-any-return]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeS3
    protocol_version = "HTTP/1.1"  # keep-alive, as S3

    def do_GET(self) -> None:
        server = self.server
        authorization = self.headers.get("Authorization", "")
        region = authorization.split("Credential=", 1)[-1].split("/")[2:3]
        server.seen.append(Seen(self.path, "".join(region), dict(self.headers)))
        moved = f"<Endpoint>{BUCKET}.s3.{server.region}.amazonaws.com</Endpoint>"
        if not _signed_correctly(self):
            self.answer(403, error_body("SignatureDoesNotMatch", "bad signature"))
        elif server.redirect == "loop" or region != [server.region]:
            if server.redirect == "malformed":
                message = f"the region is wrong; expecting '{server.region}'"
                extra = f"<Region>{server.region}</Region>"
                self.answer(400, error_body("AuthorizationHeaderMalformed", message, extra))
                return
            headers = {"regionless": {}, "bad": {"x-amz-bucket-region": "eu-west-1.evil.example"}}
            header = headers.get(server.redirect, {"x-amz-bucket-region": server.region})
            self.answer(301, error_body("PermanentRedirect", "use the endpoint", moved), header)
        elif server.canned:
            self.answer(*server.canned.pop(0))
        else:
            key = unquote(self.path.removeprefix(f"/{BUCKET}/"))
            if key in server.objects:
                self.answer(200, server.objects[key])
            else:
                self.answer(404, error_body("NoSuchKey", "The specified key does not exist."))

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        if self.server.drop_idle:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        """Quiet."""


def _signed_correctly(request: _Handler) -> bool:
    """Check the signature as S3 does: over the path as received and the signed headers."""
    fields = dict(
        part.strip().split("=", 1)
        for part in request.headers.get("Authorization", "")
        .removeprefix("AWS4-HMAC-SHA256 ")
        .split(",")
        if "=" in part
    )
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return False
    access_key, _, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    headers = {name: request.headers[name] for name in signed if name in request.headers}
    remade = AWSRequest(method="GET", url=f"http://{request.headers['Host']}{request.path}")
    for name, value in headers.items():
        remade.headers[name] = value
    remade.context["timestamp"] = request.headers["X-Amz-Date"]
    credentials = Credentials(access_key, SECRET, request.headers.get("X-Amz-Security-Token"))
    signer = S3SigV4Auth(credentials, service, region)
    canonical = signer.canonical_request(remade)
    expected = signer.signature(signer.string_to_sign(remade, canonical), remade)
    return bool(expected == fields["Signature"])


@contextmanager
def fake_s3(redirect: str = "moved") -> Iterator[FakeS3]:
    """A FakeS3 serving in a thread, shut down afterwards."""
    server = FakeS3(redirect)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
