"""The event families a Lambda function is invoked with, one class each, and their order.

Each family says whether an event is one of its own (`matches`), turns it into a
`service.Request` (`request`) and turns the service's `Response` into the answer that event's
caller reads (`answer`). `EVENT_FAMILIES` is the one ordered list; the first family that
matches an event answers it, as mangum's `handlers/` infer the event source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeGuard

import msgspec

from modelapi.errors import MalformedBody
from modelapi.service import Request, Response

__all__ = [
    "EVENT_FAMILIES",
    "AlbEvent",
    "AlbMultiValueEvent",
    "DirectBodyEvent",
    "DirectPlainEvent",
    "EventFamily",
    "FunctionUrlEvent",
    "HttpApiEvent",
    "RestApiEvent",
    "family_of",
]

_JSON = "application/json"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class EventFamily:
    """One kind of Lambda event: how to recognize it, read it, and answer it.

    `is_direct` marks invocations with no API in front: IAM has already allowed their caller
    (lambda:InvokeFunction), so the API key, which guards the HTTP routes, is not asked of them.
    """

    name = "event"
    is_direct = False

    def matches(self, event: object) -> bool:
        """Whether `event` is of this family (asked in `EVENT_FAMILIES` order)."""
        raise NotImplementedError

    def request(self, event: object, *, direct_path: str = "/predict") -> Request:
        """The HTTP request the event stands for; a direct invocation goes to `direct_path`.

        Raises MalformedBody when the event's body cannot be read.
        """
        raise NotImplementedError

    def answer(self, response: Response) -> object:
        """The service's response in the format this event's caller reads."""
        return _http_answer(response)

    def answer_failure(self, response: Response) -> object:
        """The answer to an unexpected error; the same format unless the family says otherwise."""
        return self.answer(response)


class RestApiEvent(EventFamily):
    """API Gateway REST API (v1 proxy) events, and HTTP API events of payload format 1.0."""

    name = "rest"

    def matches(self, event: object) -> bool:
        """A mapping with an `httpMethod`, or a `requestContext` that is not ALB's or v2's."""
        if not isinstance(event, Mapping):
            return False
        context = event.get("requestContext")
        if isinstance(context, Mapping):
            return not _is_alb(context) and not _is_v2(event, context)
        return "httpMethod" in event

    def request(self, event: object, *, direct_path: str = "/predict") -> Request:
        """Method, path, headers (multi-value when sent) and body from the v1 fields."""
        assert isinstance(event, Mapping)
        method = str(event.get("httpMethod") or "GET")
        path = str(event.get("path") or "/")
        multi = event.get("multiValueHeaders")
        if isinstance(multi, Mapping) and multi:
            headers = _multi_headers(multi)
        else:
            headers = _event_headers(event)
        if event.get("version") == "1.0":  # HTTP API payload 1.0 keeps the stage in `path`
            path = _strip_stage(path, event.get("requestContext"))
        return Request(method.upper(), path, headers, _body(event))


class HttpApiEvent(EventFamily):
    """API Gateway HTTP API events of payload format 2.0 (`$default` or a named stage)."""

    name = "http"

    def matches(self, event: object) -> bool:
        """A version 2.0 `requestContext` (one with `http`), or a `rawPath` without one."""
        if not isinstance(event, Mapping):
            return False
        context = event.get("requestContext")
        if isinstance(context, Mapping):
            return not _is_alb(context) and _is_v2(event, context)
        return "httpMethod" not in event and "rawPath" in event

    def request(self, event: object, *, direct_path: str = "/predict") -> Request:
        """Method from `requestContext.http`, the path without its stage, headers and body."""
        assert isinstance(event, Mapping)
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, Mapping) else None
        method = str(http.get("method", "GET")) if isinstance(http, Mapping) else "GET"
        path = _strip_stage(str(event.get("rawPath") or "/"), context)
        return Request(method.upper(), path, _event_headers(event), _body(event))


class FunctionUrlEvent(HttpApiEvent):
    """Lambda Function URL events: payload 2.0 from a `*.lambda-url.*` domain, no stage."""

    name = "function_url"

    def matches(self, event: object) -> bool:
        """An HTTP API 2.0 event whose domain is a function URL's."""
        if not super().matches(event):
            return False
        assert isinstance(event, Mapping)
        context = event.get("requestContext")
        domain = context.get("domainName") if isinstance(context, Mapping) else None
        return isinstance(domain, str) and ".lambda-url." in domain


class AlbEvent(RestApiEvent):
    """Application Load Balancer target events with single-value headers.

    An ALB sends the REST v1 fields (`httpMethod`, `path`, `headers` or `multiValueHeaders`),
    so they are read the same way; the answer differs.
    """

    name = "alb"

    def matches(self, event: object) -> bool:
        """A `requestContext` with `elb`, and no `multiValueHeaders`."""
        return _is_alb_event(event) and "multiValueHeaders" not in event

    def answer(self, response: Response) -> object:
        """The HTTP answer plus the `statusDescription` an ALB requires."""
        answer = _http_answer(response)
        answer["statusDescription"] = f"{response.status} {_phrase(response.status)}"
        return answer


class AlbMultiValueEvent(AlbEvent):
    """ALB target events of a target group with multi-value headers on."""

    name = "alb_multi"

    def matches(self, event: object) -> bool:
        """A `requestContext` with `elb`, and `multiValueHeaders`."""
        return _is_alb_event(event) and "multiValueHeaders" in event

    def answer(self, response: Response) -> object:
        """Headers as `multiValueHeaders` only: such a target group reads no other."""
        answer = super().answer(response)
        assert isinstance(answer, dict)
        headers = answer.pop("headers")
        answer["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
        return answer


class DirectBodyEvent(EventFamily):
    """Direct invocations `{"body": ...}`, as `sls invoke --data` sends them."""

    name = "direct_body"
    is_direct = True

    def matches(self, event: object) -> bool:
        """A mapping with `body` and none of the HTTP families' keys."""
        return isinstance(event, Mapping) and "body" in event

    def request(self, event: object, *, direct_path: str = "/predict") -> Request:
        """The body (JSON text, or a JSON value encoded) sent to `direct_path`."""
        assert isinstance(event, Mapping)
        body = event.get("body")
        data = _encode(body) if isinstance(body, Mapping | list) else _body(event)
        method = "GET" if direct_path == "/ping" else "POST"
        return Request(method, direct_path, _event_headers(event), data)

    def answer(self, response: Response) -> object:
        """`{"statusCode": ..., "body": "<text>"}`, as the original project answered."""
        return {"statusCode": response.status, "body": _text(response.body)[0]}


class DirectPlainEvent(EventFamily):
    """Direct invocations with any other JSON value: a features object or an array of them."""

    name = "direct_plain"
    is_direct = True

    def matches(self, event: object) -> bool:
        """Anything: the last family asked."""
        return True

    def request(self, event: object, *, direct_path: str = "/predict") -> Request:
        """The event itself, encoded as the JSON body, sent to `direct_path`."""
        return Request("POST", direct_path, {"content-type": _JSON}, _encode(event))

    def answer(self, response: Response) -> object:
        """The answer's JSON value itself (or its text when it is not JSON)."""
        try:
            return _decode(response.body)
        except msgspec.DecodeError:
            return response.body.decode("utf-8", "replace")

    def answer_failure(self, response: Response) -> object:
        """An HTTP-shaped answer, so that a crash is not mistaken for a prediction."""
        return _http_answer(response)


# Most specific first: a function URL event is also an HTTP API 2.0 event, a `{"body": ...}`
# is also a plain JSON object, and anything at all is a plain direct invocation.
EVENT_FAMILIES: tuple[EventFamily, ...] = (
    AlbMultiValueEvent(),
    AlbEvent(),
    FunctionUrlEvent(),
    HttpApiEvent(),
    RestApiEvent(),
    DirectBodyEvent(),
    DirectPlainEvent(),
)
# Answers a failure before the event's family is known.
FALLBACK_FAMILY: EventFamily = RestApiEvent()


def family_of(event: object) -> EventFamily:
    """The first family in `EVENT_FAMILIES` that matches `event`."""
    return next(family for family in EVENT_FAMILIES if family.matches(event))


def _is_alb_event(event: object) -> TypeGuard[Mapping[str, object]]:
    if not isinstance(event, Mapping):
        return False
    context = event.get("requestContext")
    return isinstance(context, Mapping) and _is_alb(context)


def _is_alb(context: Mapping[object, object]) -> bool:
    return "elb" in context


def _is_v2(event: Mapping[object, object], context: Mapping[object, object]) -> bool:
    return event.get("version") == "2.0" or "http" in context


def _strip_stage(path: str, context: object) -> str:
    # With a named stage, HTTP APIs send the stage as the first path segment (/dev/predict).
    stage = context.get("stage") if isinstance(context, Mapping) else None
    if isinstance(stage, str) and stage and stage != "$default":
        prefix = "/" + stage
        if path == prefix:
            return "/"
        if path.startswith(prefix + "/"):
            return path[len(prefix) :]
    return path


def _event_headers(event: Mapping[object, object]) -> dict[str, str]:
    raw = event.get("headers")
    if not isinstance(raw, Mapping):
        return {}
    return {str(name).lower(): str(value) for name, value in raw.items() if value is not None}


def _multi_headers(raw: Mapping[object, object]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, values in raw.items():
        if isinstance(values, list) and values:
            headers[str(name).lower()] = ", ".join(str(v) for v in values)
    return headers


def _body(event: Mapping[object, object]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedBody("body", "must be a string in the event")
    if event.get("isBase64Encoded") is True:
        # Imported when first needed, as is `http` below: API Gateway and function URLs send
        # JSON bodies as plain text, and every import is cold-start time.
        import base64
        import binascii

        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("body", "is marked base64 but is not valid base64") from None
    return body.encode("utf-8", "surrogatepass")


def _http_answer(response: Response) -> dict[str, object]:
    body, is_base64 = _text(response.body)
    return {
        "statusCode": response.status,
        "headers": {"content-type": response.content_type, **response.headers},
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _text(body: bytes) -> tuple[str, bool]:
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        import base64

        return base64.b64encode(body).decode("ascii"), True


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
