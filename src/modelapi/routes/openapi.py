"""The OpenAPI 3.1 document of the service, built from the loaded model's feature table.

Every route in `Service.routes` is documented: a declared route (`routes.ROUTES`) by its
operation, any other by its handler's docstring, so the document never falls behind the route
table. The schemas of the model's bodies are in `openapi_schemas`, the shared error responses
in `openapi_responses`.

The document is rendered once per loaded model (keyed on `name:version` and the served
artifact's checksum) and cached.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from typing import cast

import msgspec

from modelapi._version import __version__
from modelapi.bundle import Manifest
from modelapi.errors import ErrorBody
from modelapi.predictor import Predictor
from modelapi.routes import Computed, Route, v2_openapi
from modelapi.routes.openapi_responses import SCHEMA_REF, error_components, error_refs, schema_ref
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
    "RenderCache",
    "build_document",
    "example_row",
    "feature_schema",
    "model_key",
    "openapi_json",
    "predict_description",
    "predict_request_body",
    "range_hint",
    "request_schema",
]

_documents = RenderCache()


def predict_description(service: Service, predictor: Predictor) -> str:
    """The description of POST /predict, with the batch limit of `service`."""
    return (
        "Send one JSON object for one answer, or a JSON array of objects"
        f" (at most {service.settings.max_batch_rows}) for an array of answers in the same"
        " order. A `text/csv` body (a header row naming the features, then rows) is answered"
        " in CSV. A body sent with curl's default form content type is read as JSON."
        " Fields and columns that are not features (an id, the target) are ignored and"
        " named in the X-Ignored-Fields header, unless MODELAPI_EXTRA_FIELDS=forbid."
    )


def predict_request_body(service: Service, predictor: Predictor) -> dict[str, object]:
    """The request body of POST /predict: a row, a batch or a CSV of `predictor`'s features."""
    features = predictor.manifest.features
    max_rows = service.settings.max_batch_rows
    row = schema_ref("Features")
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [row, {"type": "array", "items": row, "maxItems": max_rows}]},
                "example": example_row(features),
            },
            "text/csv": {
                "schema": {"type": "string", "pattern": csv_pattern(features, min(max_rows, 100))},
                "example": csv_example(features),
            },
        },
    }


def _declared_operation(
    route: Route, service: Service, predictor: Predictor
) -> dict[str, object] | None:
    if not route.operation:
        return None
    operation = _computed(route.operation, service, predictor)
    assert isinstance(operation, dict)
    return operation


def _computed(value: object, service: Service, predictor: Predictor) -> object:
    """A copy of an operation's `value` with its `Computed` parts built."""
    if isinstance(value, Computed):
        module, _, name = value.builder.partition(":")
        builder: Callable[[Service, Predictor], object] = getattr(
            importlib.import_module(module), name
        )
        return builder(service, predictor)
    if isinstance(value, Mapping):
        return {key: _computed(item, service, predictor) for key, item in value.items()}
    if isinstance(value, list):
        return [_computed(item, service, predictor) for item in value]
    return value


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
    declared = {(r.path, m): r for r in service.declared_routes for m in r.methods}
    paths: dict[str, dict[str, object]] = {}
    for path, methods in service.routes.items():
        item: dict[str, object] = {}
        for method, handler in methods.items():
            route = declared.get((path, method))
            operation = None if route is None else _declared_operation(route, service, predictor)
            if operation is None:
                operation = _generic_operation(path, method, handler)
            elif "summary" not in operation:
                summary = _generic_operation(path, method, handler)["summary"]
                operation = {"summary": summary, **operation}
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
        tuple((route.path, route.handler) for route in service.declared_routes),
        settings.api_key is not None,
        settings.max_batch_rows,
        settings.extra_fields,
    )
    body = _documents.get(key, lambda: msgspec.json.encode(build_document(service, predictor)))
    return Response(200, body)
