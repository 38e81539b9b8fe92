"""The OpenAPI objects every documented route shares: error responses, references, headers.

Each error status has one response component, `Error<status>`, whose body is the single error
body of `errors.ErrorBody` with its code fixed, from the table `errors.ANSWERS`; operations
refer to them by status.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelapi.errors import ANSWERS, INTERNAL_ERROR

__all__ = [
    "SCHEMA_REF",
    "error_components",
    "error_refs",
    "json_content",
    "schema_ref",
    "version_header",
]

SCHEMA_REF = "#/components/schemas/{name}"


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
    for answer in (*ANSWERS.values(), INTERNAL_ERROR):
        # The routes' own error comes first in the table; the HTTP server's share a status.
        if f"Error{answer.status}" in responses:
            continue
        code = answer.code
        schema = {"allOf": [schema_ref("ErrorBody"), {"properties": {"error": {"const": code}}}]}
        example = {"error": code, "details": [{"field": answer.field, "reason": answer.example}]}
        responses[f"Error{answer.status}"] = {
            "description": answer.summary,
            "content": json_content(schema, example=example),
        }
    return responses
