"""The OpenAPI part of the request bodies: MLflow bodies on /predict, and POST /invocations.

The `Computed` parts of the `/predict` and `/invocations` operations in `routes.ROUTES`:
`/predict`'s body gains the MLflow bodies (their answer, `{"predictions": [...]}`, is declared
with the route), and `/invocations` takes the same JSON and CSV with or without a header.
The schemas are as exact as JSON Schema allows: a `dataframe_split` is documented with the
JSON names in feature order (other orders, the CSV names, extra columns and an `index` are
accepted and described); an `inputs` object of columns is described, not in the schema (its
columns must be of one length).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from modelapi.predictor import Predictor
from modelapi.routes import openapi
from modelapi.routes.openapi_responses import schema_ref
from modelapi.routes.openapi_schemas import csv_example, csv_pattern, example_row, feature_schema
from modelapi.schema import Feature
from modelapi.service import Service

__all__ = [
    "headerless_pattern",
    "invocations_description",
    "invocations_request_body",
    "mlflow_schema",
    "predict_description",
    "predict_request_body",
]

_MLFLOW_WORDS = (
    " It also takes the bodies of MLflow's scoring protocol, answered"
    ' `{"predictions": [...]}` with one answer per row, in order, each the answer the array of'
    ' objects gets: `{"dataframe_split": {"columns": [...], "data": [[...], ...], "index":'
    " [...]}}` (columns by JSON or CSV name, in any order; other columns are ignored like"
    ' other fields), `{"dataframe_records": [{...}, ...]}`, `{"instances": [...]}` (objects,'
    ' or arrays of the feature values in the model\'s order) and `{"inputs": ...}` (the same,'
    ' or an object of columns, `{"glucose": [...], ...}`, each of the same length). `params`'
    " beside them is ignored and named in X-Ignored-Fields."
)


def predict_description(service: Service, predictor: Predictor) -> str:
    """The description of POST /predict: its bodies, the MLflow ones included."""
    return openapi.predict_description(service, predictor) + _MLFLOW_WORDS


def predict_request_body(service: Service, predictor: Predictor) -> dict[str, object]:
    """The request body of POST /predict: a row, a batch, an MLflow body or a CSV."""
    body = openapi.predict_request_body(service, predictor)
    json_body = _at(body, "content", "application/json")
    json_schema = _at(json_body, "schema")
    forbid_extra = service.settings.extra_fields == "forbid"
    max_rows = service.settings.max_batch_rows
    mlflow = mlflow_schema(predictor, max_rows=max_rows, forbid_extra=forbid_extra)
    json_body["schema"] = {"oneOf": [*cast(list[object], json_schema["oneOf"]), mlflow]}
    return body


def invocations_description(service: Service, predictor: Predictor) -> str:
    """The description of POST /invocations."""
    return (
        "The SageMaker container contract (`mlflow models serve` answers the same way). A JSON"
        " body is read as /predict reads it. A `text/csv` body whose first line names the"
        " features is /predict's CSV; lines of values without a header (as SageMaker Batch"
        " Transform sends them) hold the features in the model's order, at most"
        f" {service.settings.max_batch_rows} lines, and are answered with one CSV line each, in"
        " order, without a header: the label then the class probabilities (or the value)."
        " GET /ping answers the container's health check."
    )


def invocations_request_body(service: Service, predictor: Predictor) -> dict[str, object]:
    """The request body of POST /invocations: /predict's JSON, CSV with or without a header."""
    body = predict_request_body(service, predictor)
    features = predictor.manifest.features
    rows = min(service.settings.max_batch_rows, 100)
    content = _at(body, "content")
    content["text/csv"] = {
        "schema": {
            "anyOf": [
                {"type": "string", "pattern": csv_pattern(features, rows)},
                {"type": "string", "pattern": headerless_pattern(features, rows)},
            ]
        },
        "example": csv_example(features).partition("\n")[2],
    }
    return body


def mlflow_schema(predictor: Predictor, *, max_rows: int, forbid_extra: bool) -> dict[str, object]:
    """The schema of the MLflow bodies: exactly one of their keys."""
    features = predictor.manifest.features
    row = schema_ref("Features")
    positional = _positional(features)
    rows = {"type": "array", "items": {"oneOf": [row, positional]}, "maxItems": max_rows}
    split = {
        "type": "object",
        "properties": {
            "columns": {"const": [f.key for f in features]},
            "data": {"type": "array", "items": positional, "maxItems": max_rows},
        },
        "required": ["columns", "data"],
        "additionalProperties": False,
    }
    shapes = {
        "dataframe_split": split,
        "dataframe_records": {"type": "array", "items": row, "maxItems": max_rows},
        "instances": rows,
        "inputs": rows,
    }
    bodies = []
    for name, schema in shapes.items():
        properties: dict[str, object] = {name: schema}
        if not forbid_extra:
            properties["params"] = {"description": "Inference parameters: ignored."}
        bodies.append(
            {
                "type": "object",
                "title": name,
                "properties": properties,
                "required": [name],
                "additionalProperties": False,
            }
        )
    example = example_row(features)
    return {
        "title": "MlflowBody",
        "description": "An MLflow scoring body: exactly one of these keys.",
        "oneOf": bodies,
        "examples": [
            {
                "dataframe_split": {
                    "columns": [f.key for f in features],
                    "data": [[example.get(f.key) for f in features]],
                }
            }
        ],
    }


def headerless_pattern(features: Sequence[Feature], max_rows: int) -> str:
    """CSV lines of plain values in feature order, without a header, as a regular expression."""
    header = csv_pattern(features, 0).split("\\n", 1)[0] + "\\n"
    lines = csv_pattern(features, max_rows)[len(header) :]
    return "^" + lines.replace(f"{{0,{max_rows}}}", f"{{1,{max_rows}}}")


def _positional(features: Sequence[Feature]) -> dict[str, object]:
    return {
        "type": "array",
        "description": "The feature values in the model's order.",
        "prefixItems": [_value(f) for f in features],
        "items": False,
        "minItems": len(features),
    }


def _value(feature: Feature) -> dict[str, object]:
    schema = feature_schema(feature)
    schema["description"] = f"{feature.key}: {schema.get('description', '')}"
    return schema


def _at(document: object, *keys: str) -> dict[str, object]:
    for key in keys:
        document = cast(dict[str, object], document)[key]
    return cast(dict[str, object], document)
