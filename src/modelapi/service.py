"""The framework-free HTTP API: a Request in, a Response out, for every adapter alike.

The ASGI app and the Lambda handler only translate to and from these two types, so routing,
validation, status codes and bodies are the same everywhere; an error's status and code come
from the one table, `errors.ANSWERS`.
"""

from __future__ import annotations

import hmac
import importlib
import logging
import sys
from collections.abc import Callable, Mapping, Sequence

import msgspec

from modelapi.bodies.ignored_fields import IGNORED_FIELDS_HEADER, ignored_fields_value
from modelapi.bodies.mlflow import mlflow_answer
from modelapi.config import Settings
from modelapi.errors import (
    INTERNAL_ERROR,
    ErrorBody,
    FieldError,
    MalformedBody,
    MethodNotAllowed,
    ModelapiError,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    answer_of,
    error_body,
)
from modelapi.formats import Prediction
from modelapi.metrics import Metrics
from modelapi.predictor import Predictor
from modelapi.routes import ROUTES, Route
from modelapi.schema import IgnoredFields
from modelapi.source import ModelSource

__all__ = [
    "IGNORED_FIELDS_HEADER",
    "INTERNAL_ERROR_RESPONSE",
    "MAX_ERROR_DETAILS",
    "OPEN_PATHS",
    "Handler",
    "Request",
    "Response",
    "Service",
    "error_response",
    "ignored_fields_value",
    "json_response",
    "media_type",
]

logger = logging.getLogger(__name__)

JSON = "application/json"
# Bodies the predict route reads as JSON. curl -d sends form-urlencoded by default, and the
# original service's clients rely on that, so it is read as JSON too.
_JSON_TYPES = frozenset({"", JSON, "application/x-www-form-urlencoded", "text/plain"})
_CSV_TYPES = frozenset({"text/csv", "application/csv"})
_KNOWN_TYPES = _JSON_TYPES | _CSV_TYPES
# The routes that answer without the API key.
OPEN_PATHS = frozenset(route.path for route in ROUTES if route.open)
# An error body lists at most this many problems, then one saying how many more there were:
# a small body can hold thousands of bad fields, and the answer must stay a bounded size.
MAX_ERROR_DETAILS = 100
_encode = msgspec.json.Encoder().encode
# float_hook: a number too large for a float (1e400) becomes infinity, which the feature table
# refuses by field (422), rather than a decode error that would call valid JSON malformed.
_decode = msgspec.json.Decoder(float_hook=float).decode


class Request(msgspec.Struct):
    """An HTTP request as every adapter sees it; header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str] = msgspec.field(default_factory=dict)
    body: bytes = b""


class Response(msgspec.Struct):
    """An HTTP response; `body` is already encoded."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: dict[str, str] = msgspec.field(default_factory=dict)


Handler = Callable[["Service", Request], Response]


def json_response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    """A JSON response."""
    return Response(status, _encode(body), JSON, headers or {})


def error_response(exc: ModelapiError) -> Response:
    """The single error body for an error, with its status code from `errors.ANSWERS`."""
    headers = {"allow": ", ".join(exc.allowed)} if isinstance(exc, MethodNotAllowed) else {}
    if isinstance(exc, Unauthorized):
        headers["www-authenticate"] = "Bearer"
    body = error_body(exc)
    if len(body.details) > MAX_ERROR_DETAILS:
        more = len(body.details) - MAX_ERROR_DETAILS
        listed = [*body.details[:MAX_ERROR_DETAILS], FieldError("body", _more(more))]
        body = ErrorBody(body.error, listed)
    return json_response(answer_of(exc).status, body, headers)


def _more(n_more: int) -> str:
    noun = "problem was" if n_more == 1 else "problems were"
    return f"{n_more} more {noun} not listed; fix these and send it again"


# What every adapter answers when something unexpected happened (it logs the details).
INTERNAL_ERROR_RESPONSE = Response(INTERNAL_ERROR.status, _encode(error_body(Exception())))


def media_type(headers: Mapping[str, str]) -> str:
    """The content type without parameters, lower-case ('' when absent)."""
    given = headers.get("content-type", "")
    if given in _KNOWN_TYPES:
        return given
    return given.split(";", 1)[0].strip().lower()


class Service:
    """Routes requests to handlers; holds the model source and the settings.

    `load_on_request` makes a request that finds no model try to load it (the Lambda
    handler's retry); a server that retries in the background passes False so that no
    request waits on a store. `metrics`, when given, is served at `/metrics` and counts
    predictions by class. `routes` are the routes served (`routes.ROUTES` by default).
    """

    def __init__(
        self,
        source: ModelSource,
        settings: Settings,
        *,
        load_on_request: bool = True,
        metrics: Metrics | None = None,
        routes: Sequence[Route] = ROUTES,
    ) -> None:
        self.source = source
        self.settings = settings
        self.load_on_request = load_on_request
        self.metrics = metrics
        self._api_key = settings.api_key.encode() if settings.api_key is not None else None
        self._max_answer_bytes = settings.max_answer_bytes
        self.declared_routes = tuple(
            r for r in routes if metrics is not None or not r.needs_metrics
        )
        # Exact paths -> method -> handler, built from the declared routes.
        self.routes: dict[str, dict[str, Handler]] = {}
        for route in self.declared_routes:
            methods = self.routes.setdefault(route.path, {})
            methods.update((method, _handler_of(route.handler)) for method in route.methods)
        self._templates: list[tuple[str, list[str], str]] = []
        self._n_routes = -1

    def route_label(self, path: str) -> str:
        """The route a path counts under in metrics: the route (or template) or 'other'."""
        if path in self.routes:
            return path
        return self._find_template(path) or "other"

    def handle(self, request: Request) -> Response:
        """Answer one request; a ModelapiError becomes its error response, never a 500."""
        try:
            # With a key, the key is checked before the route: every path but the open ones
            # answers 401 without it, so which routes exist cannot be probed. HEAD too.
            if self._api_key is not None and request.path not in OPEN_PATHS:
                self._authorize(request.headers)
            methods = self.routes.get(request.path) or self._match_template(request.path)
            if methods is None:
                raise NotFound("there is no such route; see /openapi.json for the routes")
            handler = methods.get(request.method)
            is_head = handler is None and request.method == "HEAD" and "GET" in methods
            if handler is None and not is_head:
                raise MethodNotAllowed(
                    f"this route does not take this method; use {', '.join(methods)}",
                    tuple(methods),
                )
            if handler is None:
                response = methods["GET"](self, request)
                return Response(response.status, b"", response.content_type, response.headers)
            response = handler(self, request)
            if len(response.body) > self._max_answer_bytes:
                raise PayloadTooLarge(
                    "body",
                    f"asks for an answer of more than {self._max_answer_bytes} bytes; send"
                    " fewer rows at a time",
                )
            return response
        except ModelapiError as exc:
            return error_response(exc)

    def is_authorized(self, request: Request) -> bool:
        """Whether the request may call the protected routes (always, without a key set)."""
        if self._api_key is None:
            return True
        try:
            self._authorize(request.headers)
        except Unauthorized:
            return False
        return True

    def _match_template(self, path: str) -> dict[str, Handler] | None:
        """The handlers of a route with `{parameter}` segments that `path` fills, if any.

        Only asked when the exact lookup misses, so exact routes such as /predict pay nothing.
        """
        route = self._find_template(path)
        return None if route is None else self.routes[route]

    def _find_template(self, path: str) -> str | None:
        """The `{parameter}` route that `path` fills, if any."""
        if self._n_routes != len(self.routes):
            self._templates = [
                (route[: route.index("{")], route.split("/"), route)
                for route in self.routes
                if "{" in route
            ]
            self._n_routes = len(self.routes)
        parts = path.split("/")
        for prefix, template, route in self._templates:
            if (
                path.startswith(prefix)
                and len(parts) == len(template)
                and all(
                    part == want or (want[:1] == "{" and part)
                    for part, want in zip(parts, template, strict=True)
                )
            ):
                return route
        return None

    def _authorize(self, headers: Mapping[str, str]) -> None:
        assert self._api_key is not None
        given = headers.get("x-api-key")
        if given is None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else ""
        # compare_digest on bytes takes time independent of where the strings differ.
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._api_key):
            raise Unauthorized(
                "send the API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"
            )

    def ping(self, request: Request) -> Response:
        """Liveness, as the original service answered it."""
        return Response(200, b'{"ping": "pong"}')

    def predict(self, request: Request) -> Response:
        """Predict one JSON object, a JSON array of objects, an MLflow body, or a CSV body."""
        max_rows = self.settings.max_batch_rows
        if len(request.body) > self.settings.max_body_bytes:
            raise PayloadTooLarge("body", f"must be at most {self.settings.max_body_bytes} bytes")
        kind = media_type(request.headers)
        if kind not in _KNOWN_TYPES:
            raise UnsupportedMediaType("content-type", "must be application/json or text/csv")
        predictor = self.predictor()
        if kind in _CSV_TYPES:
            ignored = IgnoredFields()
            # Imported here: a JSON body, the usual one, never needs CSV (cold start).
            from modelapi.bodies.csv_rows import parse_csv

            rows = parse_csv(
                predictor.features,
                request.body,
                max_rows,
                ignored=ignored,
                forbid_extra=self._forbid_extra(),
            )
            predictions = predictor.predict(rows)
            self._count(predictions)
            text = predictor.answers.csv(predictions)
            headers = _answer_headers(predictor, ignored)
            return Response(200, text, "text/csv; charset=utf-8", headers)
        # The typed decode checks a body of valid rows (and no extra field) in C; any other
        # body is read again by parse_rows, which accepts what the original service did, notes
        # the fields it ignores and names every bad one.
        decoded = predictor.features.decode_valid(request.body)
        if decoded is not None:
            _check_row_count(decoded, max_rows)
            rows, is_batch = predictor.features.rows_of(decoded)
            headers = _version_header(predictor)
            if is_batch and (fast := predictor.answer_many(rows)) is not None:
                if self.metrics is not None:
                    self.metrics.count_labels(fast[1])
                return Response(200, fast[0], JSON, headers)
        elif answer := mlflow_answer(
            predictor, request.body, max_rows=max_rows, forbid_extra=self._forbid_extra()
        ):
            if self.metrics is not None:
                self.metrics.count_labels(answer.counts())
            return Response(200, answer.body, JSON, _answer_headers(predictor, answer.ignored))
        else:
            try:
                payload = _decode(request.body)
            # msgspec raises RecursionError for very deeply nested arrays ([[[[...).
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                raise MalformedBody("body", "is not valid JSON") from None
            _check_row_count(payload, max_rows)
            ignored = IgnoredFields()
            rows, is_batch = predictor.features.parse_rows(
                payload, ignored=ignored, forbid_extra=self._forbid_extra()
            )
            headers = _answer_headers(predictor, ignored)
        predictions = predictor.predict(rows)
        self._count(predictions)
        answers = predictor.answers
        body = answers.many(predictions) if is_batch else answers.one(predictions[0])
        return Response(200, body, JSON, headers)

    def _forbid_extra(self) -> bool:
        return self.settings.extra_fields == "forbid"

    def predictor(self) -> Predictor:
        """The current predictor; raise ModelUnavailable (after one load try if enabled)."""
        predictor = self.source.predictor
        if predictor is not None:
            return predictor
        if self.load_on_request:
            return self.source.get()
        raise ModelUnavailable(self.source.reason)

    def _count(self, predictions: list[Prediction]) -> None:
        if self.metrics is not None:
            self.metrics.count_predictions(predictions)


def _handler_of(name: str) -> Handler:
    """The handler named `module:function`; imported on its first call unless already loaded.

    A loaded module's handler (`/ping` and `/predict` live here) goes into the table itself,
    so the hot routes pay no indirection.
    """
    module, _, attribute = name.partition(":")
    if module in sys.modules:
        return _resolve(module, attribute)
    return _LazyHandler(module, attribute)


def _resolve(module: str, attribute: str) -> Handler:
    found: object = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    assert callable(found), f"{module}:{attribute} is not a handler"
    return found


class _LazyHandler:
    """A route handler that imports its module on the first call and then runs its handler."""

    __slots__ = ("_attribute", "_handler", "_module")

    def __init__(self, module: str, attribute: str) -> None:
        self._module, self._attribute = module, attribute
        self._handler: Handler | None = None

    def resolve(self) -> Handler:
        """The handler itself (importing its module if needed)."""
        if self._handler is None:
            self._handler = _resolve(self._module, self._attribute)
        return self._handler

    def __call__(self, service: Service, request: Request) -> Response:
        return self.resolve()(service, request)

    @property  # the OpenAPI document summarizes a route by its handler's docstring
    def __doc__(self) -> str | None:  # type: ignore[override]
        return self.resolve().__doc__


def _check_row_count(payload: object, max_rows: int) -> None:
    # Checked before any row is validated, so an oversized batch costs no per-row work.
    if type(payload) is list and len(payload) > max_rows:
        raise PayloadTooLarge("body", f"must hold at most {max_rows} rows")


def _version_header(predictor: Predictor) -> dict[str, str]:
    return {"x-model-version": predictor.model_id}


def _answer_headers(predictor: Predictor, ignored: IgnoredFields) -> dict[str, str]:
    headers = _version_header(predictor)
    if ignored.names:
        headers[IGNORED_FIELDS_HEADER] = ignored_fields_value(ignored)
    return headers
