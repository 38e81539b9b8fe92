"""The OpenAPI 3.1 document of the service, built from the loaded model's feature table.

Every route in `Service.routes` is documented: the known ones in detail, any other with its
handler's docstring, so the document never falls behind the route table. The schemas of the
model's bodies are in `model_schemas`, the shared error responses in `openapi_responses`.

The document is rendered once per loaded model (keyed on `name:version` and the served
artifact's checksum) and cached.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import cast

import msgspec

from modelapi._version import __version__
from modelapi.bundle import Manifest
from modelapi.errors import ErrorBody
from modelapi.predictor import Predictor
from modelapi.routes import v2_openapi
from modelapi.routes.columnar_openapi import add_columnar_operations, columnar_schemas
from modelapi.routes.openapi_responses import (
    SCHEMA_REF,
    error_components,
    error_refs,
    json_content,
    schema_ref,
    version_header,
)
from modelapi.routes.openapi_schemas import (
    answer_schema,
    csv_example,
    csv_pattern,
    example_row,
    feature_schema,
    range_hint,
    request_schema,
)
from modelapi.routes.render_cache import RenderCache, model_key
from modelapi.service import OPEN_PATHS, Request, Response, Service

# The schema and cache names are re-exported: they were first defined here.
__all__ = [
    "ROUTES",
    "RenderCache",
    "build_document",
    "example_row",
    "feature_schema",
    "model_key",
    "openapi_json",
    "range_hint",
    "request_schema",
]

_documents = RenderCache()
_IGNORED_HEADER: dict[str, object] = {
    "X-Ignored-Fields": {
        "description": "The fields (JSON) or columns (CSV) the request sent that are not"
        " features and were ignored: at most five names, each cut to 40 characters and"
        " percent-encoded where needed, `...` after the last when there were more.",
        "schema": {"type": "string"},
    }
}


def _html(summary: str, tag: str, *errors: int) -> dict[str, object]:
    return {
        "summary": summary,
        "tags": [tag],
        "responses": {
            "200": {"description": "An HTML page.", "content": {"text/html": {"schema": {}}}},
            **error_refs(*errors),
        },
    }


def _known_operations(service: Service, predictor: Predictor) -> dict[str, dict[str, object]]:
    features = predictor.manifest.features
    example = example_row(features)
    row = schema_ref("Features")
    answer = schema_ref("Answer")
    max_rows = service.settings.max_batch_rows
    text = {"type": "string"}
    operations: dict[str, dict[str, object]] = {
        "/ping": {
            "get": {
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
            }
        },
        "/health": {
            "get": {
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
            }
        },
        "/predict": {
            "post": {
                "summary": "Predict one row, a batch of rows, or a CSV file",
                "description": "Send one JSON object for one answer, or a JSON array of objects"
                f" (at most {max_rows}) for an array of answers in the same order. A"
                " `text/csv` body (a header row naming the features, then rows) is answered"
                " in CSV. A body sent with curl's default form content type is read as JSON."
                " Fields and columns that are not features (an id, the target) are ignored and"
                " named in the X-Ignored-Fields header, unless MODELAPI_EXTRA_FIELDS=forbid.",
                "tags": ["prediction"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    row,
                                    {"type": "array", "items": row, "maxItems": max_rows},
                                ]
                            },
                            "example": example,
                        },
                        "text/csv": {
                            "schema": {
                                "type": "string",
                                "pattern": csv_pattern(features, min(max_rows, 100)),
                            },
                            "example": csv_example(features),
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "The answer, or one answer per row in order.",
                        "headers": {**version_header(), **_IGNORED_HEADER},
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [answer, {"type": "array", "items": answer}]}
                            },
                            "text/csv": {"schema": text},
                        },
                    },
                    **error_refs(400, 413, 415, 422, 503),
                },
            }
        },
        "/model/report": {
            "get": {
                "summary": "The loaded model's training report (report.html)",
                "description": "The data (each column's role, what was dropped and why), the"
                " pipeline, what the model weighs, the metrics and plots of the test split.",
                "tags": ["model"],
                "responses": {
                    "200": {
                        "description": "An HTML page.",
                        "headers": version_header(),
                        "content": {"text/html": {"schema": text}},
                    },
                    **error_refs(404, 503),
                },
            }
        },
        "/model": {
            "get": {
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
            }
        },
        "/metrics": {
            "get": {
                "summary": "Request, latency and prediction counters in Prometheus format",
                "tags": ["health"],
                "responses": {
                    "200": {"description": "Metrics.", "content": {"text/plain": {"schema": text}}}
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "tags": ["docs"],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": json_content({"type": "object"}),
                    },
                    **error_refs(503),
                },
            }
        },
        "/docs": {"get": _html("Interactive API documentation (Swagger UI)", "docs", 404)},
        "/": {"get": _html("A form to try the model", "docs", 503)},
    }
    for asset, media in (
        ("swagger-ui.css", "text/css"),
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-initializer.js", "text/javascript"),
    ):
        operations[f"/docs/{asset}"] = {
            "get": {
                "summary": "A Swagger UI asset, served from the installed package",
                "tags": ["docs"],
                "responses": {
                    "200": {"description": "The asset.", "content": {media: {"schema": text}}},
                    **error_refs(404),
                },
            }
        }
    operations.update(v2_openapi.openapi_paths(predictor, example))
    add_columnar_operations(operations, service, predictor)
    return operations


def _generic_operation(path: str, method: str, handler: Callable[..., object]) -> dict[str, object]:
    summary = (handler.__doc__ or f"{method} {path}").strip().splitlines()[0].rstrip(".")
    return {"summary": summary, "responses": {"200": {"description": "OK"}}}


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^0-9A-Za-z]+", "_", path).strip("_") or "root"
    return f"{method.lower()}_{words}"


def _schema_hook(kind: type) -> dict[str, object]:
    if kind is object:
        return {"description": "Any JSON value."}
    raise NotImplementedError


def build_document(service: Service, predictor: Predictor) -> dict[str, object]:
    """Build the OpenAPI 3.1 document for every route of `service`, for `predictor`'s model."""
    manifest = predictor.manifest
    secured = service.settings.api_key is not None
    known = _known_operations(service, predictor)
    paths: dict[str, dict[str, object]] = {}
    for path, methods in service.routes.items():
        item: dict[str, object] = {}
        for method, handler in methods.items():
            found = known.get(path, {}).get(method.lower())
            if isinstance(found, dict):
                operation = dict(found)
            else:
                operation = _generic_operation(path, method, handler)
            operation["operationId"] = _operation_id(method, path)
            if secured:
                responses = dict(cast(Mapping[str, object], operation["responses"]))
                if path in OPEN_PATHS:
                    operation["security"] = []
                else:
                    responses.update(error_refs(401))
                operation["responses"] = responses
            item[method.lower()] = operation
        paths[path] = item
    _, components = msgspec.json.schema_components(
        [Manifest, ErrorBody], schema_hook=_schema_hook, ref_template=SCHEMA_REF
    )
    schemas: dict[str, object] = dict(components)
    forbid_extra = service.settings.extra_fields == "forbid"
    schemas["Features"] = request_schema(manifest.features, forbid_extra=forbid_extra)
    schemas["Answer"] = answer_schema(manifest)
    schemas.update(v2_openapi.openapi_schemas(predictor))
    max_rows = service.settings.max_batch_rows
    schemas.update(columnar_schemas(predictor, max_rows=max_rows, forbid_extra=forbid_extra))
    document: dict[str, object] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{manifest.name} prediction API",
            "version": str(manifest.version),
            "description": f"Model `{manifest.model_id}` ({manifest.task}, {manifest.estimator}),"
            f" served by modelapi {__version__}. Every error has the same body:"
            ' `{"error": "<code>", "details": [{"field": "...", "reason": "..."}]}`.',
        },
        "paths": paths,
        "components": {"schemas": schemas, "responses": error_components()},
    }
    if secured:
        document["components"]["securitySchemes"] = {  # type: ignore[index]
            "bearer": {"type": "http", "scheme": "bearer", "description": "The API key."},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document


def openapi_json(service: Service, request: Request) -> Response:
    """The OpenAPI 3.1 document of this service and its model."""
    predictor = service.predictor()
    settings = service.settings
    key = (
        model_key(predictor),
        tuple((path, tuple(methods)) for path, methods in service.routes.items()),
        settings.api_key is not None,
        settings.max_batch_rows,
        settings.extra_fields,
    )
    body = _documents.get(key, lambda: msgspec.json.encode(build_document(service, predictor)))
    return Response(200, body)


ROUTES = {"/openapi.json": {"GET": openapi_json}}
