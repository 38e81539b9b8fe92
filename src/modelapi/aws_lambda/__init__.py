"""AWS Lambda entry points: Lambda events in, the service's answers out.

`handler` answers API Gateway REST (v1 proxy) events, HTTP API events (payload 1.0 and 2.0,
`$default` or a named stage), Lambda Function URL events and ALB events, in the response format
each expects: each event family is one class in `events`, and the first of `EVENT_FAMILIES`
that matches an event reads it and answers it. `ping` and `predict` keep the names the original
Serverless project used, so its `sls invoke` commands still work. Every event becomes a
`service.Request` and every answer comes from `service.Service`, so routes, validation, status
codes and bodies are the HTTP server's.

Direct invocations (no API in front):

* `{"body": "<JSON text>"}` answers `{"statusCode": 200, "body": "<JSON text>"}`; an error
  answers its status and the error body the same way.
* Any other JSON value (a features object, or an array of them) answers the prediction itself,
  as a plain object or array; an error answers the error body itself,
  `{"error": "invalid_input", "details": [...]}`.

Direct invocations are trusted: IAM already decided who may invoke the function, so with
MODELAPI_API_KEY set they need no key; every event through an API or URL needs it.

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

from modelapi.aws_lambda.events import FALLBACK_FAMILY, family_of
from modelapi.config import Settings
from modelapi.errors import ConfigError, MalformedBody, ModelUnavailable
from modelapi.service import INTERNAL_ERROR_RESPONSE, Request, Service, error_response
from modelapi.source import ModelSource

__all__ = ["EMBEDDED_MODEL", "LambdaHandler", "handler", "ping", "predict"]

logger = logging.getLogger(__name__)

# Where `modelapi package lambda --embed-model` puts the bundle: beside the package, at the
# root of the zip (/var/task/modelapi-model). A hyphen keeps it from being importable.
EMBEDDED_MODEL = Path(__file__).resolve().parents[2] / "modelapi-model"


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
            for warning in settings.warnings():
                logger.warning("%s", warning)
            service = self._service = Service(self._source(settings), settings)
            if preload:
                service.source.load()
        return service

    def _source(self, settings: Settings) -> ModelSource:
        if (self._embedded_model / "manifest.json").is_file():
            logger.info("serving the bundle embedded in the package")
            return ModelSource(str(self._embedded_model), None)
        return ModelSource(
            settings.model,
            settings.store,
            reload_interval_s=settings.reload_interval_s,
            store_deadline_s=settings.store_deadline_s,
        )

    def handle(
        self, event: object, *, direct_path: str = "/predict", preload: bool = True
    ) -> object:
        """Answer one event; a direct invocation (no API in front) goes to `direct_path`."""
        family = FALLBACK_FAMILY
        try:
            family = family_of(event)
            started = time.perf_counter()
            try:
                service = self.service(preload=preload)
            except ConfigError as exc:
                logger.error("the function is misconfigured: %s", exc)
                response = error_response(ModelUnavailable(f"the function is misconfigured: {exc}"))
                return family.answer(response)
            try:
                request = family.request(event, direct_path=direct_path)
            except MalformedBody as exc:
                return family.answer(error_response(exc))
            api_key = service.settings.api_key
            if api_key is not None and family.is_direct:
                # Trusted: IAM authorized the invoke. The request carries the function's own
                # key so the service's one access rule still decides, for every route alike.
                headers = {**request.headers, "x-api-key": api_key}
                request = Request(request.method, request.path, headers, request.body)
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
            return family.answer(response)
        except Exception:  # the Lambda edge: a bug must not crash the runtime or leak details.
            logger.exception("unexpected error while answering an event")
            return family.answer_failure(INTERNAL_ERROR_RESPONSE)


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
