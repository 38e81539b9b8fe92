"""A botocore S3 client, for listing, writing, and reading with any other credential source.

Profiles, SSO, instance and container roles and the settings of an AWS config file are
botocore's to resolve, so outside the environment the standard-library reader covers
(`s3_reader`) objects are read through a client. It resolves the endpoint, signs, retries and
follows region redirects as it always does; only the HTTP exchange of its reads (GetObject and
ListObjectsV2) is sent on modelapi's transport, through botocore's before-send event, so that
those reads have the same deadline and size bound as the standard-library reader's. Writes are
sent by botocore itself. With a proxy set for the endpoint, botocore sends the reads too (the
transport speaks to endpoints directly): their bodies are still read up to the bound, and the
deadline is checked between their parts rather than around the whole exchange.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from modelapi.extras import require
from modelapi.store.transport import DeadlinePassed, TooLarge, Transport, Unreachable

__all__ = ["S3Client"]

_READS = ("GetObject", "ListObjectsV2")
_CHUNK_BYTES = 1024 * 1024
_session_lock = threading.Lock()
_sessions: list[Any] = []


def _shared_session() -> Any:
    # One session for every store, created on first use: clients made from one session share
    # its parsed service model (10 ms instead of 150 ms each). Sessions are not thread-safe,
    # so it is only used under _session_lock.
    if not _sessions:
        _sessions.append(require("botocore.session", "s3").get_session())
    return _sessions[0]


class S3Client:
    """A botocore S3 client (`client`) whose reads keep a deadline and a size bound."""

    def __init__(
        self,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_attempts: int,
        endpoint_url: str | None = None,
    ) -> None:
        """Make the client from the shared session; `endpoint_url` None: botocore's own.

        Raises a botocore error (or ValueError) when the configuration is unusable.
        """
        config = require("botocore.config", "s3").Config(
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
        )
        utils = require("botocore.utils", "s3")
        with _session_lock:
            session = _shared_session()
            self.client: Any = session.create_client("s3", config=config, endpoint_url=endpoint_url)
            verify = session.get_config_variable("ca_bundle")
        self.endpoint: str = self.client.meta.endpoint_url
        self._errors = require("botocore.exceptions", "s3")
        self._response = require("botocore.awsrequest", "s3").AWSResponse
        # The CA bundle the client's own HTTP session uses: the configuration's, else
        # REQUESTS_CA_BUNDLE, else botocore's default (certifi's, when it is installed).
        if verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or require(
                "botocore.httpsession", "s3"
            ).get_cert_path(True)
        self._transport = Transport(
            connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s, ca_bundle=verify
        )
        # A client takes its proxies from the environment once, for its endpoint.
        self._is_proxied = bool(utils.get_environ_proxies(self.endpoint))
        self._limits = threading.local()
        for operation in _READS:
            self.client.meta.events.register(f"before-send.s3.{operation}", self._send)

    @contextmanager
    def reading(self, deadline: float, max_bytes: int) -> Iterator[None]:
        """Send this thread's reads in the block by `deadline`, each answer up to `max_bytes`."""
        self._limits.value = (deadline, max_bytes)
        try:
            yield
        finally:
            self._limits.value = None

    def get(self, bucket: str, key: str, *, max_bytes: int, deadline_s: float) -> bytes:
        """An object's bytes, read within `deadline_s` (all attempts and a redirect).

        Raises botocore's errors as a client does, TooLarge past `max_bytes`, DeadlinePassed.
        """
        deadline = time.monotonic() + deadline_s
        with self.reading(deadline, max_bytes):
            response = self.client.get_object(Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            size = response.get("ContentLength")
            if isinstance(size, int) and size > max_bytes:
                raise TooLarge(size)
            parts: list[bytes] = []
            read = 0
            while read <= max_bytes:
                if time.monotonic() >= deadline:
                    raise DeadlinePassed
                part = body.read(min(_CHUNK_BYTES, max_bytes + 1 - read))
                if not part:
                    break
                parts.append(part)
                read += len(part)
            if read > max_bytes:
                raise TooLarge(None)
            return b"".join(parts)
        finally:
            body.close()

    def _send(self, request: Any, **kwargs: object) -> Any:
        """Send one of the client's reads on the transport (botocore's before-send event)."""
        limits = getattr(self._limits, "value", None)
        if limits is None or self._is_proxied:
            return None  # botocore sends it
        deadline, max_bytes = limits
        headers = {
            name: value.decode("latin-1") if isinstance(value, bytes) else str(value)
            for name, value in request.headers.items()
        }
        try:
            answer = self._transport.request(
                request.method,
                request.url,
                headers,
                deadline=deadline,
                max_bytes=max_bytes,
                body=bytes(request.body) if request.body else None,
            )
        except Unreachable as exc:
            # botocore's own exception for the failure, which its retry checks know.
            kind = getattr(self._errors, exc.kind)
            raise kind(endpoint_url=request.url, error=exc) from exc
        return self._response(request.url, answer.status, answer.headers, _Body(answer.body))


class _Body(io.BytesIO):
    """An answer's body, already read, as botocore reads a response's raw stream."""

    def stream(self, amt: int = _CHUNK_BYTES, decode_content: bool = True) -> Iterator[bytes]:
        """The body in parts of at most `amt` bytes."""
        while part := self.read(amt):
            yield part
