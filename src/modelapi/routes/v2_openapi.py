"""The model-dependent OpenAPI parts of the Open Inference Protocol V2 routes.

The operations themselves are declared with the routes in `routes.ROUTES`; these are the
`Computed` pieces they name, and the component schemas.
"""

from __future__ import annotations

from modelapi.predictor import Predictor
from modelapi.routes import v2
from modelapi.routes.openapi_responses import schema_ref
from modelapi.routes.openapi_schemas import example_row
from modelapi.routes.v2_tensors import DATATYPES, PROBABILITIES, feature_datatype
from modelapi.schema import Feature
from modelapi.service import Service

__all__ = ["infer_description", "infer_request_body", "name_parameters", "openapi_schemas"]


def infer_description(service: Service, predictor: Predictor) -> str | None:
    """The description of the infer route: the protocol as this server speaks it."""
    return v2.__doc__


def name_parameters(service: Service, predictor: Predictor) -> list[dict[str, object]]:
    """The `{name}` path parameter: the name of the one model served."""
    return [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "description": "The model's name.",
            "schema": {"type": "string", "enum": [predictor.manifest.name]},
        }
    ]


def infer_request_body(service: Service, predictor: Predictor) -> dict[str, object]:
    """The infer request body, with an example of one tensor per feature of the example row."""
    features = predictor.manifest.features
    example = example_row(features)
    infer_example = {
        "inputs": [
            {
                "name": f.key,
                "shape": [1],
                "datatype": feature_datatype(f),
                "data": [_tensor_value(f, example.get(f.key))],
            }
            for f in features
            if example.get(f.key) is not None
        ]
    }
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": schema_ref("InferenceRequest"),
                "example": infer_example,
            }
        },
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
