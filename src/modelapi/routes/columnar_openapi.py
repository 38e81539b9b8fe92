"""The OpenAPI part of columnar bodies: MLflow bodies on /predict, and POST /invocations.

Kept apart from `openapi` so that the two routes' documentation moves with them: `/predict`'s
operation gains the MLflow bodies and their `{"predictions": [...]}` answer, and
`/invocations` is documented whole. The schemas are as exact as JSON Schema allows: a
`dataframe_split` is documented with the JSON names in feature order (other orders, the CSV
names, extra columns and an `index` are accepted and described); an `inputs` object of columns
is described, not in the schema (its columns must be of one length).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from modelapi.predictor import Predictor
from modelapi.routes.openapi_responses import error_refs, schema_ref
from modelapi.routes.openapi_schemas import csv_example, csv_pattern, example_row, feature_schema
from modelapi.schema import Feature
from modelapi.service import Service

__all__ = ["add_columnar_operations", "columnar_schemas"]

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


def add_columnar_operations(
    operations: dict[str, dict[str, object]], service: Service, predictor: Predictor
) -> None:
    """Document the MLflow bodies on /predict's operation, and POST /invocations."""
    predict = cast(dict[str, object], operations["/predict"]["post"])
    predict["description"] = str(predict["description"]) + _MLFLOW_WORDS
    request_content = _at(predict, "requestBody", "content")
    json_schema = _at(request_content, "application/json", "schema")
    cast(list[object], json_schema["oneOf"]).append(schema_ref("MlflowBody"))
    answer_content = _at(predict, "responses", "200", "content")
    answer_schema = _at(answer_content, "application/json", "schema")
    cast(list[object], answer_schema["oneOf"]).append(schema_ref("Predictions"))
    features = predictor.manifest.features
    max_rows = service.settings.max_batch_rows
    operations["/invocations"] = {
        "post": {
            "summary": "Predict as SageMaker and MLflow call a model container",
            "description": "The SageMaker container contract (`mlflow models serve` answers"
            " the same way). A JSON body is read as /predict reads it. A `text/csv` body whose"
            " first line names the features is /predict's CSV; lines of numbers without a"
            " header (as SageMaker Batch Transform sends them) hold the features in the"
            f" model's order, at most {max_rows} lines, and are answered with one CSV line"
            " each, in order, without a header: the label then the class probabilities (or"
            " the value). GET /ping answers the container's health check.",
            "tags": ["prediction"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": dict(
                        cast(dict[str, object], request_content["application/json"])
                    ),
                    "text/csv": {
                        "schema": {
                            "anyOf": [
                                {
                                    "type": "string",
                                    "pattern": csv_pattern(features, min(max_rows, 100)),
                                },
                                {
                                    "type": "string",
                                    "pattern": headerless_pattern(features, min(max_rows, 100)),
                                },
                            ]
                        },
                        "example": csv_example(features).partition("\n")[2],
                    },
                },
            },
            "responses": {
                "200": {
                    "description": "The answer, or one answer per row (or line) in order.",
                    "headers": dict(
                        cast(dict[str, object], _at(predict, "responses", "200")["headers"])
                    ),
                    "content": {
                        "application/json": dict(
                            cast(dict[str, object], answer_content["application/json"])
                        ),
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                **error_refs(400, 413, 415, 422, 503),
            },
        }
    }


def columnar_schemas(
    predictor: Predictor, *, max_rows: int, forbid_extra: bool
) -> dict[str, object]:
    """The component schemas of the MLflow bodies and of their answer."""
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
        "MlflowBody": {
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
        },
        "Predictions": {
            "type": "object",
            "title": "Predictions",
            "description": "One answer per row, in order (the answer to an MLflow body).",
            "properties": {"predictions": {"type": "array", "items": schema_ref("Answer")}},
            "required": ["predictions"],
            "additionalProperties": False,
        },
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
