"""AWS Lambda entry points: Lambda events in, the service's answers out.

`handler` answers API Gateway REST (v1 proxy) events, HTTP API events (payload 1.0 and 2.0,
`$default` or a named stage), Lambda Function URL events and ALB events, in the response format
each expects. `ping` and `predict` keep the names the original Serverless project used, so its
`sls invoke` commands still work. Every event becomes a `service.Request` and every answer comes
from `service.Service`, so routes, validation, status codes and bodies are the HTTP server's.

Direct invocations (no API in front):

* `{"body": "<JSON text>"}` answers `{"statusCode": 200, "body": "<JSON text>"}`; an error
  answers its status and the error body the same way.
* Any other JSON value (a features object, or an array of them) answers the prediction itself,
  as a plain object or array; an error answers the error body itself,
  `{"error": "invalid_input", "details": [...]}`.

The model is read once per execution environment, on the first invocation: from the bundle
embedded beside this package (`modelapi package lambda --embed-model`), else from MODELAPI_MODEL
in MODELAPI_STORE. A store that cannot be read answers 503 with the reason and is tried again on
the next invocation; nothing an event or S3 does makes an exception escape to the runtime.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

from modelapi.config import Settings
from modelapi.errors import ConfigError, MalformedBody, ModelUnavailable
from modelapi.service import INTERNAL_ERROR_RESPONSE, Request, Response, Service, error_response
from modelapi.source import ModelSource

__all__ = ["EMBEDDED_MODEL", "LambdaHandler", "handler", "ping", "predict"]

logger = logging.getLogger(__name__)

# Where `modelapi package lambda --embed-model` puts the bundle: beside the package, at the
# root of the zip (/var/task/modelapi-model). A hyphen keeps it from being importable.
EMBEDDED_MODEL = Path(__file__).resolve().parents[2] / "modelapi-model"

Event = Mapping[str, object]
_V2, _V1, _ALB, _ALB_MULTI, _DIRECT_BODY, _DIRECT_PLAIN = range(6)
_JSON = "application/json"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class LambdaHandler:
    """Answers Lambda events with one Service, built on the first invocation and then kept."""

    def __init__(
        self, settings: Settings | None = None, *, embedded_model: Path = EMBEDDED_MODEL
    ) -> None:
        self._settings = settings
        self._embedded_model = embedded_model
        self._service: Service | None = None

    def service(self, *, preload: bool = True) -> Service:
        """The service of this execution environment; build it (and load the model) once.

        Raises ConfigError when a MODELAPI_* variable has a bad value.
        """
        service = self._service
        if service is None:
            settings = self._settings or Settings.from_env()
            logging.getLogger("modelapi").setLevel(settings.log_level.upper())
            service = self._service = Service(self._source(settings), settings)
            if preload:
                service.source.load()
        return service

    def _source(self, settings: Settings) -> ModelSource:
        if (self._embedded_model / "manifest.json").is_file():
            logger.info("serving the bundle embedded in the package")
            return ModelSource(str(self._embedded_model), None)
        return ModelSource(
            settings.model, settings.store, reload_interval_s=settings.reload_interval_s
        )

    def handle(
        self, event: object, *, direct_path: str = "/predict", preload: bool = True
    ) -> object:
        """Answer one event; a direct invocation (no API in front) goes to `direct_path`."""
        shape = _V1
        try:
            shape = _shape(event)
            started = time.perf_counter()
            try:
                service = self.service(preload=preload)
            except ConfigError as exc:
                logger.error("the function is misconfigured: %s", exc)
                response = error_response(ModelUnavailable(f"the function is misconfigured: {exc}"))
                return _answer(response, shape)
            try:
                request = _request(event, shape, direct_path)
            except MalformedBody as exc:
                return _answer(error_response(exc), shape)
            service.source.refresh_if_due()
            response = service.handle(request)
            if service.settings.access_log:
                logger.info(
                    "%s %s %d %.2fms",
                    request.method,
                    request.path[:100],
                    response.status,
                    (time.perf_counter() - started) * 1000,
                )
            return _answer(response, shape)
        except Exception:  # the Lambda edge: a bug must not crash the runtime or leak details.
            logger.exception("unexpected error while answering an event")
            return _answer(INTERNAL_ERROR_RESPONSE, shape if shape != _DIRECT_PLAIN else _V1)


_default: LambdaHandler | None = None


def _default_handler() -> LambdaHandler:
    global _default
    if _default is None:
        _default = LambdaHandler()
    return _default


def handler(event: object, context: object = None) -> object:
    """Answer any HTTP event for any route; a direct invocation predicts."""
    return _default_handler().handle(event)


def predict(event: object, context: object = None) -> object:
    """Answer a prediction event: HTTP, `{"body": "<JSON>"}`, or a plain features object."""
    return _default_handler().handle(event)


def ping(event: object, context: object = None) -> object:
    """Answer a liveness event; a direct invocation gets `{"statusCode": 200, ...}`."""
    answer_event = event if _is_http(event) else {"body": None}
    return _default_handler().handle(answer_event, direct_path="/ping", preload=False)


def _is_http(event: object) -> bool:
    return isinstance(event, Mapping) and (
        "requestContext" in event or "httpMethod" in event or "rawPath" in event
    )


def _shape(event: object) -> int:
    if not isinstance(event, Mapping):
        return _DIRECT_PLAIN
    context = event.get("requestContext")
    if isinstance(context, Mapping):
        if "elb" in context:
            return _ALB_MULTI if "multiValueHeaders" in event else _ALB
        if event.get("version") == "2.0" or "http" in context:
            return _V2
        return _V1
    if "httpMethod" in event:
        return _V1
    if "rawPath" in event:
        return _V2
    return _DIRECT_BODY if "body" in event else _DIRECT_PLAIN


def _request(event: object, shape: int, direct_path: str) -> Request:
    if shape == _DIRECT_PLAIN:
        return Request("POST", direct_path, {"content-type": _JSON}, _encode(event))
    assert isinstance(event, Mapping)
    raw_headers = event.get("headers")
    headers = _headers(raw_headers if isinstance(raw_headers, Mapping) else {})
    if shape == _DIRECT_BODY:
        body = event.get("body")
        data = _encode(body) if isinstance(body, Mapping | list) else _body(event)
        method = "GET" if direct_path == "/ping" else "POST"
        return Request(method, direct_path, headers, data)
    if shape == _V2:
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, Mapping) else None
        method = str(http.get("method", "GET")) if isinstance(http, Mapping) else "GET"
        path = _strip_stage(str(event.get("rawPath") or "/"), context)
    else:
        method = str(event.get("httpMethod") or "GET")
        path = str(event.get("path") or "/")
        multi = event.get("multiValueHeaders")
        if isinstance(multi, Mapping) and multi:
            headers = _multi_headers(multi)
        if event.get("version") == "1.0":  # HTTP API payload 1.0 keeps the stage in `path`
            path = _strip_stage(path, event.get("requestContext"))
    return Request(method.upper(), path, headers, _body(event))


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


def _headers(raw: Mapping[object, object]) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in raw.items() if value is not None}


def _multi_headers(raw: Mapping[object, object]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, values in raw.items():
        if isinstance(values, list) and values:
            headers[str(name).lower()] = ", ".join(str(v) for v in values)
    return headers


def _body(event: Mapping[str, object]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedBody("body", "must be a string in the event")
    if event.get("isBase64Encoded") is True:
        # Imported when first needed, as are `http` and the encoder below: API Gateway and
        # function URLs send JSON bodies as plain text, and every import is cold-start time.
        import base64
        import binascii

        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("body", "is marked base64 but is not valid base64") from None
    return body.encode("utf-8", "surrogatepass")


def _answer(response: Response, shape: int) -> object:
    if shape == _DIRECT_PLAIN:
        try:
            return _decode(response.body)
        except msgspec.DecodeError:
            return response.body.decode("utf-8", "replace")
    body, is_base64 = _text(response.body)
    if shape == _DIRECT_BODY:
        return {"statusCode": response.status, "body": body}
    headers = {"content-type": response.content_type, **response.headers}
    answer: dict[str, object] = {
        "statusCode": response.status,
        "headers": headers,
        "body": body,
        "isBase64Encoded": is_base64,
    }
    if shape in (_ALB, _ALB_MULTI):
        answer["statusDescription"] = f"{response.status} {_phrase(response.status)}"
        if shape == _ALB_MULTI:
            # An ALB target group with multi-value headers on reads only multiValueHeaders.
            del answer["headers"]
            answer["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    return answer


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
