"""Every route of the service, declared once in `ROUTES`: its path, methods, handler and docs.

The service builds its dispatch table from this list and /openapi.json is generated from it,
so a new route is a handler function and one `Route` entry here. A handler is named as
`"module:function"` and its module is imported when the route is first called: a prediction
never needs the OpenAPI, page, Swagger UI or V2 modules, and importing them costs a cold
start tens of milliseconds. Importing this package stays cheap for the same reason: it holds
data only and imports none of the route modules.

An operation is written as OpenAPI spells it (summary, tags, responses, ...) without its
`operationId` and the 401 of a keyed service, which the document adds. The parts that depend
on the served model or the settings (a request body's schema and example, a batch limit) are
`Computed` values, built when the document is.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from modelapi.routes.openapi_responses import error_refs, json_content, schema_ref, version_header

__all__ = ["ROUTES", "Computed", "Route"]


class Computed(msgspec.Struct, frozen=True):
    """A value of an operation built for the served model: `"module:function"`.

    The function takes the service and its predictor and returns the value.
    """

    builder: str


class Route(msgspec.Struct, frozen=True, kw_only=True):
    """One route: its path (with `{parameter}` segments), methods, handler and OpenAPI operation.

    `handler` is `"module:function"` (a dotted attribute such as `Service.ping` allowed),
    taking the service and a request and returning a response. An operation without a
    summary is summarized by the handler's docstring. `needs_metrics` routes are served only
    by a service that counts metrics. `open` routes answer without the API key (liveness and
    readiness probes cannot send one).
    """

    path: str
    handler: str
    methods: tuple[str, ...] = ("GET",)
    operation: Mapping[str, object] = {}
    needs_metrics: bool = False
    open: bool = False


_TEXT = {"type": "string"}
_IGNORED_HEADER: dict[str, object] = {
    "X-Ignored-Fields": {
        "description": "The fields (JSON) or columns (CSV) the request sent that are not"
        " features and were ignored: at most five names, each cut to 40 characters and"
        " percent-encoded where needed, `...` after the last when there were more.",
        "schema": {"type": "string"},
    }
}
# One answer, an array of them, or an MLflow body's `{"predictions": [...]}`.
_ANSWERS = [
    schema_ref("Answer"),
    {"type": "array", "items": schema_ref("Answer")},
    {
        "type": "object",
        "title": "Predictions",
        "properties": {"predictions": {"type": "array", "items": schema_ref("Answer")}},
        "required": ["predictions"],
        "additionalProperties": False,
    },
]
_V2_TAGS = ["open inference protocol v2"]
_V2_NAME = Computed("modelapi.routes.v2_openapi:name_parameters")


def _prediction(
    summary: str, description: str, request_body: str, answered: str
) -> dict[str, object]:
    """The operation of a predicting route; its description and body are built for the model
    by the `"module:function"` named (written whole: the Lambda packaging finds the module
    by such names)."""
    return {
        "summary": summary,
        "description": Computed(description),
        "tags": ["prediction"],
        "requestBody": Computed(request_body),
        "responses": {
            "200": {
                "description": answered,
                "headers": {**version_header(), **_IGNORED_HEADER},
                "content": {
                    "application/json": {"schema": {"oneOf": _ANSWERS}},
                    "text/csv": {"schema": _TEXT},
                },
            },
            **error_refs(400, 413, 415, 422, 503),
        },
    }


def _html(summary: str, *errors: int) -> dict[str, object]:
    return {
        "summary": summary,
        "tags": ["docs"],
        "responses": {
            "200": {"description": "An HTML page.", "content": {"text/html": {"schema": {}}}},
            **error_refs(*errors),
        },
    }


def _asset(name: str, media: str, handler: str) -> Route:
    return Route(
        path=f"/docs/{name}",
        handler=handler,
        operation={
            "summary": "A Swagger UI asset, served from the installed package",
            "tags": ["docs"],
            "responses": {
                "200": {"description": "The asset.", "content": {media: {"schema": _TEXT}}},
                **error_refs(404),
            },
        },
    )


def _v2_ok(description: str, schema: Mapping[str, object], versioned: bool) -> dict[str, object]:
    response: dict[str, object] = {"description": description, "content": json_content(schema)}
    if versioned:
        response["headers"] = version_header()
    return response


_V2_READY = {"type": "object", "properties": {"ready": {"type": "boolean"}}, "required": ["ready"]}

ROUTES: tuple[Route, ...] = (
    Route(
        path="/ping",
        handler="modelapi.service:Service.ping",
        open=True,
        operation={
            "summary": "Liveness, as the original service answered it",
            "tags": ["health"],
            "responses": {
                "200": {
                    "description": "The service is up.",
                    "content": json_content(
                        {
                            "type": "object",
                            "properties": {"ping": {"const": "pong"}},
                            "required": ["ping"],
                        }
                    ),
                }
            },
        },
    ),
    Route(
        path="/predict",
        handler="modelapi.service:Service.predict",
        methods=("POST",),
        operation=_prediction(
            "Predict one row, a batch of rows, or a CSV file",
            "modelapi.routes.bodies_openapi:predict_description",
            "modelapi.routes.bodies_openapi:predict_request_body",
            "The answer, or one answer per row in order.",
        ),
    ),
    Route(
        path="/invocations",
        handler="modelapi.routes.invocations:invocations",
        methods=("POST",),
        operation=_prediction(
            "Predict as SageMaker and MLflow call a model container",
            "modelapi.routes.bodies_openapi:invocations_description",
            "modelapi.routes.bodies_openapi:invocations_request_body",
            "The answer, or one answer per row (or line) in order.",
        ),
    ),
    Route(
        path="/health",
        handler="modelapi.routes.status:health",
        open=True,
        operation={
            "summary": "Readiness: 200 when a model is loaded, 503 with the reason when not",
            "tags": ["health"],
            "responses": {
                "200": {
                    "description": "A model is loaded.",
                    "content": json_content(
                        {
                            "type": "object",
                            "properties": {
                                "status": {"const": "ok"},
                                "model": {"type": "string"},
                            },
                            "required": ["status", "model"],
                        }
                    ),
                },
                **error_refs(503),
            },
        },
    ),
    Route(
        path="/model",
        handler="modelapi.routes.status:model",
        operation={
            "summary": "The loaded model: features, training ranges, metrics, checksums",
            "tags": ["model"],
            "responses": {
                "200": {
                    "description": "The model's manifest.",
                    "headers": version_header(),
                    "content": json_content(schema_ref("Manifest")),
                },
                **error_refs(503),
            },
        },
    ),
    Route(
        path="/model/report",
        handler="modelapi.routes.status:report",
        operation={
            "summary": "The loaded model's training report (report.html)",
            "description": "The data (each column's role, what was dropped and why), the"
            " pipeline, what the model weighs, the metrics and plots of the test split.",
            "tags": ["model"],
            "responses": {
                "200": {
                    "description": "An HTML page.",
                    "headers": version_header(),
                    "content": {"text/html": {"schema": _TEXT}},
                },
                **error_refs(404, 503),
            },
        },
    ),
    Route(
        path="/metrics",
        handler="modelapi.routes.status:metrics_text",
        needs_metrics=True,
        operation={
            "summary": "Request, latency and prediction counters in Prometheus format",
            "tags": ["health"],
            "responses": {
                "200": {"description": "Metrics.", "content": {"text/plain": {"schema": _TEXT}}}
            },
        },
    ),
    Route(
        path="/openapi.json",
        handler="modelapi.routes.openapi:openapi_json",
        operation={
            "summary": "This document",
            "tags": ["docs"],
            "responses": {
                "200": {
                    "description": "OpenAPI 3.1.",
                    "content": json_content({"type": "object"}),
                },
                **error_refs(503),
            },
        },
    ),
    Route(
        path="/docs",
        handler="modelapi.routes.swagger:docs_page",
        operation=_html("Interactive API documentation (Swagger UI)", 404),
    ),
    _asset("swagger-ui.css", "text/css", "modelapi.routes.swagger:stylesheet"),
    _asset("swagger-ui-bundle.js", "text/javascript", "modelapi.routes.swagger:bundle_script"),
    _asset("swagger-initializer.js", "text/javascript", "modelapi.routes.swagger:initializer"),
    Route(
        path="/",
        handler="modelapi.routes.page:home_page",
        operation=_html("A form to try the model", 503),
    ),
    Route(
        path="/v2",
        handler="modelapi.routes.v2:server_metadata",
        operation={
            "summary": "Server metadata",
            "tags": _V2_TAGS,
            "responses": {"200": _v2_ok("Metadata.", schema_ref("ServerMetadata"), False)},
        },
    ),
    Route(
        path="/v2/health/live",
        handler="modelapi.routes.v2:server_live",
        operation={
            "summary": "Liveness",
            "tags": _V2_TAGS,
            "responses": {
                "200": _v2_ok(
                    "The server is live.",
                    {"type": "object", "properties": {"live": {"type": "boolean"}}},
                    False,
                )
            },
        },
    ),
    Route(
        path="/v2/health/ready",
        handler="modelapi.routes.v2:server_ready",
        operation={
            "summary": "Readiness: a model is loaded",
            "tags": _V2_TAGS,
            "responses": {"200": _v2_ok("Ready.", _V2_READY, False), **error_refs(503)},
        },
    ),
    Route(
        path="/v2/models/{name}",
        handler="modelapi.routes.v2:model_metadata",
        operation={
            "summary": "Model metadata: input and output tensors",
            "tags": _V2_TAGS,
            "parameters": _V2_NAME,
            "responses": {
                "200": _v2_ok("Model metadata.", schema_ref("ModelMetadata"), True),
                **error_refs(404, 503),
            },
        },
    ),
    Route(
        path="/v2/models/{name}/ready",
        handler="modelapi.routes.v2:model_ready",
        operation={
            "summary": "Model readiness",
            "tags": _V2_TAGS,
            "parameters": _V2_NAME,
            "responses": {
                "200": _v2_ok(
                    "The model is ready.", {**_V2_READY, "required": ["name", "ready"]}, True
                ),
                **error_refs(404, 503),
            },
        },
    ),
    Route(
        path="/v2/models/{name}/infer",
        handler="modelapi.routes.v2:model_infer",
        methods=("POST",),
        operation={
            "summary": "Predict rows given as one tensor per feature",
            "tags": _V2_TAGS,
            "description": Computed("modelapi.routes.v2_openapi:infer_description"),
            "parameters": _V2_NAME,
            "requestBody": Computed("modelapi.routes.v2_openapi:infer_request_body"),
            "responses": {
                "200": _v2_ok("The output tensors.", schema_ref("InferenceResponse"), True),
                **error_refs(400, 404, 413, 415, 422, 503),
            },
        },
    ),
)
"""Every route the service answers, in the order /openapi.json lists them."""
