"""The exceptions modelapi raises on purpose, and the one table of how each is answered.

    ModelapiError
    ├── InvalidInput (ValueError)        a request or file the caller sent is wrong      422
    │   ├── MalformedBody                not well-formed JSON or CSV                     400
    │   ├── PayloadTooLarge              over the body or batch-row limit                413
    │   └── UnsupportedMediaType         a content type the route cannot read            415
    ├── Unauthorized                     a protected route without the right API key    401
    ├── NotFound (LookupError)           no such route, or a model the request names     404
    ├── MethodNotAllowed                 a route that exists, with another method        405
    ├── ModelUnavailable                 no model is loaded (yet)                        503
    ├── BundleError                      unreadable bundle, bad checksum, unknown format
    │   └── BundleNotFound (LookupError) no such model, version or alias in a store
    ├── StoreError                       a store could not be reached or written
    ├── DataError (ValueError)           a training data set that cannot be used
    ├── TrainingError                    training or a format check failed
    ├── PackagingError                   a deployment package could not be built
    ├── ConfigError (ValueError)         a bad setting, named
    ├── MissingExtra (ImportError)       an optional dependency is not installed
    ├── MalformedRequest                 not a valid HTTP/1.1 request (the server's own)   400
    ├── RequestTimeout                   a head or body that did not arrive in time        408
    ├── HeadersTooLarge                  a request head over the size or field limit       431
    ├── TooManyConnections               every connection of the server is busy            503
    ├── ServerError                      a server answered what modelapi never answers (client)
    └── ServerUnreachable (ConnectionError)  no connection to a server (client)

`ANSWERS` is the one table from an error type to what it is on the wire: its code, HTTP status,
what it means, and the field named when the error is not about a field. The service answers
with it, the OpenAPI document describes the error responses from it, and the client turns an
error body back into the error type from it. A type not in the table (a bug) is answered as
`internal_error` (500). Messages name the thing, what was expected and the fix, and never carry
a value a client sent.
"""

# Annotations stay objects here (no `from __future__ import annotations`): msgspec reads the
# Structs' annotations at their first decode, and evaluating strings then costs milliseconds of
# every cold start.

from collections.abc import Sequence
from typing import NamedTuple

import msgspec

__all__ = [
    "ANSWERS",
    "INTERNAL_ERROR",
    "BundleError",
    "BundleNotFound",
    "ConfigError",
    "DataError",
    "ErrorAnswer",
    "ErrorBody",
    "FieldError",
    "HeadersTooLarge",
    "InvalidInput",
    "MalformedBody",
    "MalformedRequest",
    "MethodNotAllowed",
    "MissingExtra",
    "ModelUnavailable",
    "ModelapiError",
    "NotFound",
    "PackagingError",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServerError",
    "ServerUnreachable",
    "StoreError",
    "TooManyConnections",
    "TrainingError",
    "Unauthorized",
    "UnsupportedMediaType",
    "answer_of",
    "error_body",
]


class FieldError(msgspec.Struct, frozen=True):
    """One problem with one field of a request: where it is and why it is refused.

    Also the `details` entry of the error body on the wire.
    """

    field: str
    reason: str


class ErrorBody(msgspec.Struct, frozen=True):
    """The single error shape every adapter returns."""

    error: str
    details: list[FieldError]


class ModelapiError(Exception):
    """Root of every error modelapi raises on purpose."""


class InvalidInput(ModelapiError, ValueError):
    """A request the caller sent cannot be used; `details` names every bad field at once."""

    def __init__(self, field: str, reason: str, *more: FieldError) -> None:
        self.details: tuple[FieldError, ...] = (FieldError(field, reason), *more)
        super().__init__("; ".join(f"{d.field}: {d.reason}" for d in self.details))
        self.field, self.reason = field, reason

    @classmethod
    def of(cls, details: Sequence[FieldError]) -> "InvalidInput":
        """Build one error from a non-empty list of field problems."""
        first, *rest = details
        return cls(first.field, first.reason, *rest)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickled whole (type and every detail): `modelapi predict`'s worker processes send
        # the errors of the lines they score back to the one that writes them.
        return (_rebuilt, (type(self), self.details))


def _rebuilt(kind: type[InvalidInput], details: Sequence[FieldError]) -> InvalidInput:
    return kind.of(details)


class MalformedBody(InvalidInput):
    """The body is not well-formed JSON or CSV."""


class PayloadTooLarge(InvalidInput):
    """The body or the number of rows is over the configured limit."""


class UnsupportedMediaType(InvalidInput):
    """The route cannot read this content type."""


class Unauthorized(ModelapiError):
    """A protected route was called without the configured API key."""


class NotFound(ModelapiError, LookupError):
    """No such route, or no such model."""


class MethodNotAllowed(ModelapiError):
    """The route exists but not with this method."""

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class ModelUnavailable(ModelapiError):
    """No model is loaded, so nothing can be predicted."""


class BundleError(ModelapiError):
    """A bundle is unreadable, fails its checksum, or has a format this version cannot read."""


class BundleNotFound(BundleError, LookupError):
    """A store has no such model, version or alias."""


class StoreError(ModelapiError):
    """A store could not be reached, read or written."""


class DataError(ModelapiError, ValueError):
    """A training data set cannot be used as it is."""


class TrainingError(ModelapiError):
    """Training failed, or a served format disagrees with scikit-learn."""


class ConfigError(ModelapiError, ValueError):
    """A setting has a bad value; the message names the setting."""


class PackagingError(ModelapiError):
    """A deployment package could not be built: wheels not fetched, or over a size limit."""


class MissingExtra(ModelapiError, ImportError):
    """An optional dependency is missing; the message gives the pip command."""


class MalformedRequest(ModelapiError):
    """The bytes on a connection are not a valid HTTP/1.1 request."""


class RequestTimeout(ModelapiError):
    """A request's head or body did not arrive within its deadline."""


class HeadersTooLarge(ModelapiError):
    """A request head is over the server's size or field-count limit."""


class TooManyConnections(ModelapiError):
    """The server is at its connection limit and every connection is busy."""


class ServerError(ModelapiError):
    """A server answered with a status modelapi never sends (a 500, or a proxy's 502)."""

    def __init__(self, message: str, status: int, details: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.details = details


class ServerUnreachable(ModelapiError, ConnectionError):
    """No connection to a server: refused, timed out, or the name does not resolve."""


class ErrorAnswer(NamedTuple):
    """What an error type is on the wire."""

    code: str
    status: int
    summary: str
    # The field an error names when it is not about one field of the request.
    field: str
    # A reason as the error gives it, for the documentation's examples.
    example: str


# Most specific first: an error is answered by the first entry it is an instance of.
ANSWERS: dict[type[ModelapiError], ErrorAnswer] = {
    MalformedBody: ErrorAnswer(
        "malformed_body", 400, "The body is not valid JSON or CSV.", "body", "is not valid JSON"
    ),
    PayloadTooLarge: ErrorAnswer(
        "payload_too_large",
        413,
        "The body or its number of rows is over the limit.",
        "body",
        "must be at most 1048576 bytes",
    ),
    UnsupportedMediaType: ErrorAnswer(
        "unsupported_media_type",
        415,
        "The route cannot read this content type.",
        "content-type",
        "must be application/json or text/csv",
    ),
    InvalidInput: ErrorAnswer(
        "invalid_input",
        422,
        "Fields are missing or invalid.",
        "body",
        "must be a JSON object or an array of JSON objects",
    ),
    Unauthorized: ErrorAnswer(
        "unauthorized",
        401,
        "The API key is missing or wrong.",
        "authorization",
        "send the API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
    ),
    NotFound: ErrorAnswer(
        "not_found", 404, "No such route or model.", "path", "no route here; see /openapi.json"
    ),
    MethodNotAllowed: ErrorAnswer(
        "method_not_allowed",
        405,
        "The route does not take this method.",
        "method",
        "this route does not take this method; use GET",
    ),
    ModelUnavailable: ErrorAnswer(
        "model_unavailable", 503, "No model is loaded.", "model", "the model is not loaded yet"
    ),
    # Answered by the HTTP server itself, before a request reaches the service.
    MalformedRequest: ErrorAnswer(
        "malformed_request", 400, "Not an HTTP/1.1 request.", "request", "is not valid HTTP/1.1"
    ),
    RequestTimeout: ErrorAnswer(
        "request_timeout",
        408,
        "The request did not arrive in time.",
        "request",
        "its head must arrive within 10 s",
    ),
    HeadersTooLarge: ErrorAnswer(
        "headers_too_large",
        431,
        "The request head is over the limit.",
        "headers",
        "must be at most 16384 bytes in at most 100 fields, the request line included",
    ),
    TooManyConnections: ErrorAnswer(
        "too_many_connections",
        503,
        "The server is at its connection limit.",
        "connection",
        "the server is at its connection limit; try again shortly",
    ),
}
# What anything else becomes at an adapter's edge: logged there in full, answered generically.
INTERNAL_ERROR = ErrorAnswer(
    "internal_error",
    500,
    "An unexpected error; it was logged.",
    "request",
    "an unexpected error occurred and was logged",
)


def answer_of(exc: BaseException) -> ErrorAnswer:
    """How an error is answered: its entry in ANSWERS, else INTERNAL_ERROR."""
    for kind, answer in ANSWERS.items():
        if isinstance(exc, kind):
            return answer
    return INTERNAL_ERROR


def error_body(exc: BaseException) -> ErrorBody:
    """The error body for an error: its code, and the fields it names (or its message)."""
    answer = answer_of(exc)
    if isinstance(exc, InvalidInput):
        return ErrorBody(answer.code, list(exc.details))
    if answer is INTERNAL_ERROR:
        return ErrorBody(answer.code, [FieldError(answer.field, answer.example)])
    return ErrorBody(answer.code, [FieldError(answer.field, str(exc))])
