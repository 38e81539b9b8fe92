"""The HTTP/1.1 connection limits of `modelapi serve`: uvicorn's httptools protocol, bounded.

uvicorn with httptools sets no limit a client cannot walk past: no deadline for a request's
head or body (a client that sends half a request holds a descriptor for ever), no limit on
header size or count (httptools gathers a header value whole, however long), no cap on
pipelined requests (each is parsed and queued as it arrives) and no cap on connections (past
the descriptor limit, every new client is reset). The protocol here keeps uvicorn's parsing,
request cycle and flow control, and adds, per connection:

- a deadline for the request head (`header_timeout_s`, from the connection or the request's
  first byte) and one for the body (`body_timeout_s`, from the end of the head): past it the
  connection answers 408 and closes;
- `max_header_bytes` for the request line and headers together and `max_headers` fields: past
  either, 431 and close. A head still arriving is counted as it comes, so memory holds at
  most the limit and one read;
- at most `max_pipelined_requests` requests parsed ahead of the one being answered: the rest
  stays unparsed, and the socket unread, until the queue drains (back-pressure, not refusal);
- at most `max_connections` connections: one more closes a connection that waits on its
  client (a slow head or body, or an idle keep-alive), the one its own deadline would close
  first, or answers 503 if every connection is busy in the app.

The deadlines are timers armed only when a head or body is left unfinished at the end of a
read, so a request that arrives in one read costs no timer at all.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import msgspec
from uvicorn import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from modelapi.config import Settings
from modelapi.errors import (
    HeadersTooLarge,
    MalformedRequest,
    ModelapiError,
    RequestTimeout,
    TooManyConnections,
    answer_of,
    error_body,
)

__all__ = ["LimitedConfig", "LimitedHttpToolsProtocol", "ServerLimits"]

logger = logging.getLogger(__name__)

_HEAD_END = b"\r\n\r\n"
# The part of a request a deadline is for.
_HEAD, _BODY = 0, 1


class ServerLimits(msgspec.Struct, frozen=True):
    """The per-connection limits, from the settings of the same names."""

    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 1024
    max_pipelined_requests: int = 32

    @classmethod
    def of(cls, settings: Settings) -> ServerLimits:
        """The limits a server with these settings enforces."""
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            max_connections=settings.max_connections,
            max_pipelined_requests=settings.max_pipelined_requests,
        )


class LimitedConfig(Config):
    """uvicorn's Config with the limited protocol and the limits it reads.

    A class of its own (rather than a protocol class made for some limits) so that it is
    pickled by name into uvicorn's worker processes, limits included.
    """

    def __init__(self, app: Any, *, limits: ServerLimits, **options: Any) -> None:
        super().__init__(app, http=LimitedHttpToolsProtocol, **options)
        self.limits = limits


class _HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing a head over the limits."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head and body deadlines and size and queue limits.

    Where a request stands is read from uvicorn's own state after each read, not tracked in
    parser callbacks: uvicorn makes a new scope when a request begins and a cycle for that
    scope when its head is complete, and the cycle's `more_body` drops when its body is.
    """

    def __init__(self, config: Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        limits: ServerLimits = getattr(config, "limits", None) or ServerLimits()
        self.limits = limits
        self._max_pipelined = limits.max_pipelined_requests
        self._max_headers = limits.max_headers
        self._max_header_bytes = limits.max_header_bytes
        # What may arrive of an unfinished head: the limit, plus framing (": ", line ends,
        # method and version) that the parsed head does not count.
        self._max_raw_head_bytes = limits.max_header_bytes + 8 * limits.max_headers + 64
        self._raw_head_bytes = 0  # what has arrived of a head that spans reads
        self._read_bytes = 0  # the size of the read being parsed
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_part = _HEAD
        # Data not yet parsed because enough requests are queued; reading is paused meanwhile.
        self._held: bytes | None = None

    # ---- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Take the connection, making room for it if the server is at its connection cap."""
        super().connection_made(transport)
        self._arm(_HEAD)
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the connection's timer and held data."""
        self._disarm()
        self._held = None
        super().connection_lost(exc)

    def _make_room(self) -> None:
        waiting = [
            (close_at, c)
            for c in self.connections
            if isinstance(c, LimitedHttpToolsProtocol)
            and c is not self
            and (close_at := c._closes_at()) is not None
        ]
        if waiting:
            _, nearest = min(waiting, key=lambda pair: pair[0])
            logger.warning(
                "at %d connections: closed one waiting on its client",
                self.limits.max_connections,
            )
            nearest._close()
            return
        logger.warning("at %d connections, all busy: refused one", self.limits.max_connections)
        self._refuse(TooManyConnections("the server is at its connection limit; try again shortly"))

    def _closes_at(self) -> float | None:
        """When a connection waiting on its client (a head, a body, a next request) would be
        closed anyway; None for one the app is answering."""
        for timer in (self._deadline, self.timeout_keep_alive_task):
            if timer is not None:
                return timer.when()
        return None

    def _close(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    # ---- reading -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Parse what arrived, within the limits; hold it while enough requests are queued."""
        keep_alive = self.timeout_keep_alive_task
        if keep_alive is not None:
            keep_alive.cancel()
            self.timeout_keep_alive_task = None
        if self._held is not None:
            self._held += data
            self.flow.pause_reading()
            return
        if len(self.pipeline) + data.count(_HEAD_END) >= self._max_pipelined:
            self._parse_heads(data)
            return
        # The usual read, parsed here rather than in _parse: it is every request's path.
        scope = self.scope
        self._read_bytes = len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parser_error(exc)
            return
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and not cycle.more_body:
            if self._deadline is not None:  # the last request is whole
                self._disarm()
        else:
            self._unfinished(len(data), began=self.scope is not scope)

    def _parse_heads(self, data: bytes) -> None:
        """Many heads in one read: parse one at a time, and stop once enough are queued."""
        start = 0
        while start < len(data) and not self.transport.is_closing():
            if len(self.pipeline) >= self._max_pipelined:
                self._hold(data[start:])
                return
            end = data.find(_HEAD_END, start)
            end = len(data) if end < 0 else end + len(_HEAD_END)
            self._parse(data[start:end])
            start = end

    def _parse(self, data: bytes) -> None:
        scope = self.scope
        self._read_bytes = len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._parser_error(exc)
            return
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and not cycle.more_body:
            if self._deadline is not None:  # the last request is whole
                self._disarm()
        else:
            self._unfinished(len(data), began=self.scope is not scope)

    def _unfinished(self, n_bytes: int, *, began: bool) -> None:
        """After a read that leaves a head or a body unfinished: count it, arm its deadline."""
        if self.scope is None or self.transport.is_closing():
            return  # nothing has arrived yet: the connection's first deadline runs on
        cycle = self.cycle
        if cycle is None or cycle.scope is not self.scope:
            if began:
                self._raw_head_bytes = 0
            else:
                # httptools gathers a header value whole before handing it over, so a head
                # still arriving is counted here, read by read (not the read in which the
                # request began: it may hold the end of the request before).
                self._raw_head_bytes += n_bytes
                if self._raw_head_bytes > self._max_raw_head_bytes:
                    self._refuse_head()
                    return
            part = _HEAD
        else:
            part = _BODY
        if self._deadline is None or self._deadline_part != part:
            self._arm(part)

    def _parser_error(self, exc: Exception) -> None:
        if isinstance(exc, httptools.HttpParserUpgrade):
            self._unsupported_upgrade_warning()
        elif isinstance(exc.__context__, _HeadTooLarge):
            self._refuse_head()
        else:
            logger.debug("invalid HTTP request received")
            self._refuse(MalformedRequest("is not a valid HTTP/1.1 request"))

    def _refuse_head(self) -> None:
        self._refuse(
            HeadersTooLarge(
                f"must be at most {self._max_header_bytes} bytes in at most {self._max_headers}"
                " fields, the request line included"
            )
        )

    # ---- parser and cycle callbacks --------------------------------------------------------

    def on_headers_complete(self) -> None:
        """Refuse a head over the limits (raising stops the parser), else start its cycle."""
        # Only a head that came in more than one read, or in a read larger than the limit,
        # can be over it: a request that arrives whole and small is not measured again.
        if (
            self._raw_head_bytes
            or self._read_bytes > self._max_header_bytes
            or len(self.headers) > self._max_headers
        ):
            size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
            if size > self._max_header_bytes or len(self.headers) > self._max_headers:
                raise _HeadTooLarge
            self._raw_head_bytes = 0
        super().on_headers_complete()

    def _hold(self, data: bytes) -> None:
        """Keep data unparsed, and the socket unread, until the queue has room again."""
        self._held = data
        self._disarm()  # the server is behind, not the client
        self.flow.pause_reading()
        # Each queued request, once answered, looks at the held data: hooked only now, so
        # that an answer costs nothing more when nothing is held.
        for cycle in (self.cycle, *(queued for queued, _ in self.pipeline)):
            cycle.on_response = self._on_response_complete_holding

    def _on_response_complete_holding(self) -> None:
        self.on_response_complete()
        held = self._held
        if (
            held is not None
            and len(self.pipeline) < self._max_pipelined
            and not self.transport.is_closing()
        ):
            self._held = None
            self._parse_heads(held)

    # ---- deadlines and refusals ------------------------------------------------------------

    def _arm(self, part: int) -> None:
        self._disarm()
        limits = self.limits
        timeout_s = limits.header_timeout_s if part == _HEAD else limits.body_timeout_s
        self._deadline_part = part
        self._deadline = self.loop.call_later(timeout_s, self._on_deadline)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.scope is None:
            # Nothing sent at all (a browser's spare connection, say): close without a word.
            self._close()
            return
        part = "head" if self._deadline_part == _HEAD else "body"
        limits = self.limits
        timeout_s = limits.header_timeout_s if part == "head" else limits.body_timeout_s
        self._refuse(RequestTimeout(f"its {part} must arrive within {timeout_s:g} s"))

    def _refuse(self, exc: ModelapiError) -> None:
        """Answer with the error body and close, unless the app has begun an answer."""
        self._disarm()
        self._held = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            if cycle is not None:
                cycle.disconnected = True  # the app, waiting on the body, answers no one
            body = msgspec.json.encode(error_body(exc))
            self.transport.write(
                b"".join(
                    (
                        STATUS_LINE[answer_of(exc).status],
                        b"content-type: application/json\r\n",
                        b"content-length: %d\r\n" % len(body),
                        b"connection: close\r\n\r\n",
                        body,
                    )
                )
            )
        self.transport.close()
