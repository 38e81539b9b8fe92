"""The OpenAPI 3.1 document of the service, built from the loaded model's feature table.

Every route in `Service.routes` is documented: the known ones in detail, any other with its
handler's docstring, so the document never falls behind the route table. Request schemas are
as strict as the validation core and no stricter, so a schema-driven fuzzer that follows them
only sends what the service accepts. Training ranges are hints in the descriptions, never
constraints: a value outside them is still predicted.

The document is rendered once per loaded model (keyed on `name:version` and the served
artifact's checksum) and cached.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import cast

import msgspec

from modelapi import __version__, inference_v2
from modelapi.bundle import Manifest
from modelapi.predictor import Predictor
from modelapi.schema import ErrorBody, Feature
from modelapi.service import OPEN_PATHS, Request, Response, Service

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

# The body the built-in Pima model's users have always sent; shown as the example whenever a
# model has exactly these inputs. Other models get an example from their training ranges.
_PIMA_EXAMPLE: dict[str, object] = {
    "pregnancies": 2,
    "glucose": 148,
    "blood_pressure": 72,
    "skin_thickness": 35,
    "insulin": 0,
    "bmi": 33.6,
    "diabetes_pedigree_function": 0.674,
    "age": 22,
}
# Numeric strings the validation core reads as numbers (the original service cast with
# int()/float()). The patterns describe a plain, ASCII, bounded subset of what it accepts, so
# every string a generator draws from them is accepted and can never overflow to infinity.
_INTEGER_TEXT = r"^[+-]?[0-9]{1,15}$"
_NUMBER_TEXT = r"^[+-]?(?:[0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15})(?:[eE][+-]?[0-9]{1,2})?$"
_REF = "#/components/schemas/{name}"
_ERRORS: dict[int, tuple[str, str, str, str]] = {
    400: ("malformed_body", "The body is not valid JSON or CSV.", "body", "is not valid JSON"),
    401: (
        "unauthorized",
        "The API key is missing or wrong.",
        "authorization",
        "send the API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
    ),
    404: ("not_found", "No such route or model.", "path", "no route here; see /openapi.json"),
    413: (
        "payload_too_large",
        "The body or its number of rows is over the limit.",
        "body",
        "must be at most 1048576 bytes",
    ),
    415: (
        "unsupported_media_type",
        "The route cannot read this content type.",
        "content-type",
        "must be application/json or text/csv",
    ),
    422: ("invalid_input", "Fields are missing, unknown or invalid.", "glucose", "is required"),
    503: (
        "model_unavailable",
        "No model is loaded.",
        "model",
        "the model has not been loaded yet",
    ),
}


class RenderCache:
    """Rendered bodies keyed on what they depend on (a model id first); bounded, thread-safe."""

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._bodies: dict[Hashable, bytes] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, render: Callable[[], bytes]) -> bytes:
        """Return the body for `key`, rendering it on the first call for that key."""
        body = self._bodies.get(key)
        if body is None:
            body = render()
            with self._lock:
                if len(self._bodies) >= self.max_entries:
                    # A hot reload retires old models; dropping everything is simplest.
                    self._bodies.clear()
                self._bodies[key] = body
        return body


_documents = RenderCache()


def model_key(predictor: Predictor) -> tuple[str, str]:
    """What a rendered body depends on: `name:version`, and the served artifact's sha256.

    The checksum tells apart two bundles that share a name and version (two folders, two
    stores), which `name:version` alone cannot.
    """
    manifest = predictor.manifest
    return predictor.model_id, manifest.artifacts[manifest.serving].sha256


def example_row(features: Sequence[Feature]) -> dict[str, object]:
    """An example request body: the Pima example for its model, else mid-range values."""
    if {f.key for f in features} == set(_PIMA_EXAMPLE):
        return {f.key: _PIMA_EXAMPLE[f.key] for f in features}
    return {f.key: _example_value(f) for f in features}


def _example_value(feature: Feature) -> object:
    if feature.type == "category":
        return (feature.categories or ("",))[0]
    if feature.min is None or feature.max is None:
        return 0
    middle = (feature.min + feature.max) / 2
    return round(middle) if feature.type == "integer" else round(middle, 3)


def range_hint(feature: Feature) -> str:
    """The training range as words, e.g. `0 to 199`, or '' when unknown."""
    if feature.min is None or feature.max is None:
        return ""
    return f"{_number(feature.min)} to {_number(feature.max)}"


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def feature_schema(feature: Feature) -> dict[str, object]:
    """The JSON schema of one feature's value; its training range is a hint, not a limit."""
    words = [f"CSV column `{feature.column}`."]
    if feature.type == "category":
        words.append("One of the training categories.")
        return {
            "type": "string",
            "enum": list(feature.categories or ()),
            "description": " ".join(words),
        }
    hint = range_hint(feature)
    if hint:
        words.append(f"Training range {hint} (a hint: other values are predicted too).")
    words.append('A numeric string such as "148" is read as its number.')
    integer = feature.type == "integer"
    return {
        "anyOf": [
            {"type": "integer" if integer else "number"},
            {"type": "string", "pattern": _INTEGER_TEXT if integer else _NUMBER_TEXT},
        ],
        "description": " ".join(words),
    }


def request_schema(features: Sequence[Feature]) -> dict[str, object]:
    """The JSON schema of one row: every feature required, nothing else allowed."""
    return {
        "type": "object",
        "title": "Features",
        "description": "One row to predict. The CSV column names are accepted in place of the"
        " JSON names; a number may also be sent as a numeric string.",
        "properties": {f.key: feature_schema(f) for f in features},
        "required": [f.key for f in features],
        "additionalProperties": False,
        "examples": [example_row(features)],
    }


def answer_schema(manifest: Manifest) -> dict[str, object]:
    """The JSON schema of one answer: the label (and class probabilities) or the value."""
    key = manifest.target.key
    if manifest.classes is None:
        # JSON has no infinity: a prediction past the range of a double is refused (422).
        value = {"type": "number", "description": "The predicted value."}
        return {
            "type": "object",
            "title": "Answer",
            "properties": {key: value},
            "required": [key],
            "additionalProperties": False,
        }
    names = [str(c) for c in manifest.classes]
    probability = {"type": "number", "minimum": 0, "maximum": 1}
    return {
        "type": "object",
        "title": "Answer",
        "properties": {
            key: {"enum": list(manifest.classes), "description": "The predicted class."},
            "probabilities": {
                "type": "object",
                "description": "The probability of each class.",
                "properties": dict.fromkeys(names, probability),
                "required": names,
                "additionalProperties": False,
            },
        },
        "required": [key, "probabilities"],
        "additionalProperties": False,
    }


def _csv_pattern(features: Sequence[Feature], max_rows: int) -> str:
    """A CSV body with the JSON names as header and plain values, as a regular expression."""
    cells = []
    for feature in features:
        if feature.type == "category":
            quoted = ('"' + c.replace('"', '""') + '"' for c in feature.categories or ())
            cells.append("(?:" + "|".join(re.escape(q) for q in quoted) + ")")
        elif feature.type == "integer":
            cells.append("-?[0-9]{1,15}")
        else:
            cells.append(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
    header = re.escape(",".join(f.key for f in features))
    return f"^{header}\\n(?:{','.join(cells)}\\n){{0,{max_rows}}}$"


def _error_responses(*statuses: int) -> dict[str, dict[str, object]]:
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses}


def _json(schema: Mapping[str, object], **extra: object) -> dict[str, object]:
    return {"application/json": {"schema": schema, **extra}}


def _version_header() -> dict[str, object]:
    return {
        "X-Model-Version": {
            "description": "The model that answered, as `name:version`.",
            "required": True,
            "schema": {"type": "string"},
        }
    }


def _html(summary: str, tag: str, *errors: int) -> dict[str, object]:
    return {
        "summary": summary,
        "tags": [tag],
        "responses": {
            "200": {"description": "An HTML page.", "content": {"text/html": {"schema": {}}}},
            **_error_responses(*errors),
        },
    }


def _known_operations(service: Service, predictor: Predictor) -> dict[str, dict[str, object]]:
    features = predictor.manifest.features
    example = example_row(features)
    row = {"$ref": _REF.format(name="Features")}
    answer = {"$ref": _REF.format(name="Answer")}
    max_rows = service.settings.max_batch_rows
    text = {"type": "string"}
    csv_example = ",".join(f.key for f in features) + "\n"
    csv_example += ",".join(str(example[f.key]) for f in features) + "\n"
    operations: dict[str, dict[str, object]] = {
        "/ping": {
            "get": {
                "summary": "Liveness, as the original service answered it",
                "tags": ["health"],
                "responses": {
                    "200": {
                        "description": "The service is up.",
                        "content": _json(
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
                        "content": _json(
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
                    **_error_responses(503),
                },
            }
        },
        "/predict": {
            "post": {
                "summary": "Predict one row, a batch of rows, or a CSV file",
                "description": "Send one JSON object for one answer, or a JSON array of objects"
                f" (at most {max_rows}) for an array of answers in the same order. A"
                " `text/csv` body (a header row naming the features, then rows) is answered"
                " in CSV. A body sent with curl's default form content type is read as JSON.",
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
                                "pattern": _csv_pattern(features, min(max_rows, 100)),
                            },
                            "example": csv_example,
                        },
                    },
                },
                "responses": {
                    "200": {
                        "description": "The answer, or one answer per row in order.",
                        "headers": _version_header(),
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [answer, {"type": "array", "items": answer}]}
                            },
                            "text/csv": {"schema": text},
                        },
                    },
                    **_error_responses(400, 413, 415, 422, 503),
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
                        "headers": _version_header(),
                        "content": _json({"$ref": _REF.format(name="Manifest")}),
                    },
                    **_error_responses(503),
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
                    "200": {"description": "OpenAPI 3.1.", "content": _json({"type": "object"})},
                    **_error_responses(503),
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
                    **_error_responses(404),
                },
            }
        }
    operations.update(inference_v2.openapi_paths(predictor, example))
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
                    responses.update(_error_responses(401))
                operation["responses"] = responses
            item[method.lower()] = operation
        paths[path] = item
    _, components = msgspec.json.schema_components(
        [Manifest, ErrorBody], schema_hook=_schema_hook, ref_template=_REF
    )
    schemas: dict[str, object] = dict(components)
    schemas["Features"] = request_schema(manifest.features)
    schemas["Answer"] = answer_schema(manifest)
    schemas.update(inference_v2.openapi_schemas(predictor))
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
        "components": {"schemas": schemas, "responses": _error_components()},
    }
    if secured:
        document["components"]["securitySchemes"] = {  # type: ignore[index]
            "bearer": {"type": "http", "scheme": "bearer", "description": "The API key."},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
    return document


def _error_components() -> dict[str, object]:
    responses: dict[str, object] = {}
    for status, (code, description, field, reason) in _ERRORS.items():
        schema = {
            "allOf": [
                {"$ref": _REF.format(name="ErrorBody")},
                {"properties": {"error": {"const": code}}},
            ]
        }
        example = {"error": code, "details": [{"field": field, "reason": reason}]}
        responses[f"Error{status}"] = {
            "description": description,
            "content": _json(schema, example=example),
        }
    return responses


def openapi_json(service: Service, request: Request) -> Response:
    """The OpenAPI 3.1 document of this service and its model."""
    predictor = service.predictor()
    settings = service.settings
    key = (
        model_key(predictor),
        tuple((path, tuple(methods)) for path, methods in service.routes.items()),
        settings.api_key is not None,
        settings.max_batch_rows,
    )
    body = _documents.get(key, lambda: msgspec.json.encode(build_document(service, predictor)))
    return Response(200, body)


ROUTES = {"/openapi.json": {"GET": openapi_json}}
