"""The OpenAPI objects every documented route shares: error responses, references, headers.

Each error status has one response component, `Error<status>`, whose body is the single error
body of `schema.ErrorBody` with its code fixed; operations refer to them by status.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "SCHEMA_REF",
    "error_components",
    "error_refs",
    "json_content",
    "schema_ref",
    "version_header",
]

SCHEMA_REF = "#/components/schemas/{name}"
# Status -> (error code, what it means, an example detail's field and reason).
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


def schema_ref(name: str) -> dict[str, object]:
    """A reference to the component schema `name`."""
    return {"$ref": SCHEMA_REF.format(name=name)}


def error_refs(*statuses: int) -> dict[str, dict[str, object]]:
    """The responses of these error statuses, as references to their components."""
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses}


def json_content(schema: Mapping[str, object], **extra: object) -> dict[str, object]:
    """A JSON body with this schema (and `extra`, e.g. an example)."""
    return {"application/json": {"schema": schema, **extra}}


def version_header() -> dict[str, object]:
    """The X-Model-Version header of an answer a model gave."""
    return {
        "X-Model-Version": {
            "description": "The model that answered, as `name:version`.",
            "required": True,
            "schema": {"type": "string"},
        }
    }


def error_components() -> dict[str, object]:
    """The `Error<status>` response components, each with its code and an example body."""
    responses: dict[str, object] = {}
    for status, (code, description, field, reason) in _ERRORS.items():
        schema = {"allOf": [schema_ref("ErrorBody"), {"properties": {"error": {"const": code}}}]}
        example = {"error": code, "details": [{"field": field, "reason": reason}]}
        responses[f"Error{status}"] = {
            "description": description,
            "content": json_content(schema, example=example),
        }
    return responses
