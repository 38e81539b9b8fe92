"""The OpenAPI path items and component schemas of the Open Inference Protocol V2 routes."""

from __future__ import annotations

from collections.abc import Mapping

from modelapi.predictor import Predictor
from modelapi.routes import v2
from modelapi.routes.openapi_responses import error_refs, json_content, schema_ref, version_header
from modelapi.routes.v2_tensors import DATATYPES, PROBABILITIES, feature_datatype
from modelapi.schema import Feature

__all__ = ["openapi_paths", "openapi_schemas"]


def _ok(description: str, schema: Mapping[str, object], versioned: bool) -> dict[str, object]:
    response: dict[str, object] = {"description": description, "content": json_content(schema)}
    if versioned:
        response["headers"] = version_header()
    return response


def openapi_paths(predictor: Predictor, example: dict[str, object]) -> dict[str, dict[str, object]]:
    """The OpenAPI path items of these routes, with an infer example built from `example`."""
    manifest = predictor.manifest
    name_parameter: dict[str, object] = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "The model's name.",
        "schema": {"type": "string", "enum": [manifest.name]},
    }
    infer_example = {
        "inputs": [
            {
                "name": f.key,
                "shape": [1],
                "datatype": feature_datatype(f),
                "data": [_tensor_value(f, example.get(f.key))],
            }
            for f in manifest.features
            if example.get(f.key) is not None
        ]
    }
    flag = {"type": "object", "properties": {"live": {"type": "boolean"}}}
    ready = {"type": "object", "properties": {"ready": {"type": "boolean"}}, "required": ["ready"]}
    model_ready = {**ready, "required": ["name", "ready"]}
    infer = _operation(
        "Predict rows given as one tensor per feature",
        {"200": _ok("The output tensors.", schema_ref("InferenceResponse"), True)},
        (400, 404, 413, 415, 422, 503),
        description=v2.__doc__,
        parameters=[name_parameter],
        requestBody={
            "required": True,
            "content": {
                "application/json": {
                    "schema": schema_ref("InferenceRequest"),
                    "example": infer_example,
                }
            },
        },
    )
    return {
        "/v2": {
            "get": _operation(
                "Server metadata", {"200": _ok("Metadata.", schema_ref("ServerMetadata"), False)}
            )
        },
        "/v2/health/live": {
            "get": _operation("Liveness", {"200": _ok("The server is live.", flag, False)})
        },
        "/v2/health/ready": {
            "get": _operation(
                "Readiness: a model is loaded", {"200": _ok("Ready.", ready, False)}, (503,)
            )
        },
        "/v2/models/{name}": {
            "get": _operation(
                "Model metadata: input and output tensors",
                {"200": _ok("Model metadata.", schema_ref("ModelMetadata"), True)},
                (404, 503),
                parameters=[name_parameter],
            )
        },
        "/v2/models/{name}/ready": {
            "get": _operation(
                "Model readiness",
                {"200": _ok("The model is ready.", model_ready, True)},
                (404, 503),
                parameters=[name_parameter],
            )
        },
        "/v2/models/{name}/infer": {"post": infer},
    }


def _operation(
    summary: str,
    responses: dict[str, object],
    errors: tuple[int, ...] = (),
    **extra: object,
) -> dict[str, object]:
    responses.update(error_refs(*errors))
    return {
        "summary": summary,
        "tags": ["open inference protocol v2"],
        **extra,
        "responses": responses,
    }


def openapi_schemas(predictor: Predictor) -> dict[str, object]:
    """The OpenAPI component schemas these routes refer to, for `predictor`'s model."""
    manifest = predictor.manifest
    outputs = [manifest.target.key] + ([PROBABILITIES] if manifest.classes is not None else [])
    shape = {"type": "array", "items": {"type": "integer"}}
    parameters = {"type": ["object", "null"]}
    data = {"type": "array", "items": {"type": ["number", "string", "array"]}}
    metadata_tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": shape,
        },
        "required": ["name", "datatype", "shape"],
    }
    return {
        "ServerMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "version", "extensions"],
        },
        "TensorMetadata": metadata_tensor,
        "ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": schema_ref("TensorMetadata")},
                "outputs": {"type": "array", "items": schema_ref("TensorMetadata")},
            },
            "required": ["name", "platform", "inputs", "outputs"],
        },
        "RequestInput": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "A feature's JSON or CSV name."},
                "shape": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0},
                    "minItems": 1,
                    "maxItems": 2,
                },
                "datatype": {"enum": [d for d in DATATYPES if d != "BOOL"]},
                "data": data,
                "parameters": parameters,
            },
            "required": ["name", "shape", "datatype", "data"],
        },
        "InferenceRequest": {
            "type": "object",
            "properties": {
                "id": {"type": ["string", "null"]},
                "parameters": parameters,
                "inputs": {"type": "array", "items": schema_ref("RequestInput")},
                "outputs": {
                    "type": ["array", "null"],
                    "items": {
                        "type": "object",
                        "properties": {"name": {"enum": outputs}, "parameters": parameters},
                        "required": ["name"],
                    },
                },
            },
            "required": ["inputs"],
        },
        "ResponseOutput": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "shape": shape,
                "datatype": {"type": "string"},
                "data": data,
            },
            "required": ["name", "shape", "datatype", "data"],
        },
        "InferenceResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": schema_ref("ResponseOutput")},
            },
            "required": ["model_name", "outputs"],
        },
    }


def _tensor_value(feature: Feature, value: object) -> object:
    """An example value as its tensor datatype holds it: booleans 0/1, text as text."""
    if feature.type == "boolean":
        return int(bool(value))
    return str(value) if feature_datatype(feature) == "BYTES" else value
