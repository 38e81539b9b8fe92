"""The exceptions modelapi raises on purpose.

    ModelapiError
    ├── InvalidInput (ValueError)        a request or file the caller sent is wrong
    │   ├── PayloadTooLarge              over the body or batch-row limit
    │   └── UnsupportedMediaType         a content type the route cannot read
    ├── Unauthorized                     a protected route without the right API key
    ├── NotFound (LookupError)           no such route, or a model the request names
    ├── MethodNotAllowed                 a route that exists, with another method
    ├── ModelUnavailable                 no model is loaded (yet): serving answers 503
    ├── BundleError                      unreadable bundle, bad checksum, unknown format
    │   └── BundleNotFound (LookupError) no such model, version or alias in a store
    ├── StoreError                       a store could not be reached or written
    ├── DataError (ValueError)           a training data set that cannot be used
    ├── TrainingError                    training or a format check failed
    ├── PackagingError                   a deployment package could not be built
    ├── ConfigError (ValueError)         a bad setting, named
    └── MissingExtra (ImportError)       an optional dependency is not installed

This module knows nothing about HTTP: `modelapi.service` maps these types to status codes.
Messages name the thing, what was expected and the fix, and never carry a value a client sent.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "BundleNotFound",
    "ConfigError",
    "DataError",
    "FieldError",
    "InvalidInput",
    "MalformedBody",
    "MethodNotAllowed",
    "MissingExtra",
    "ModelUnavailable",
    "ModelapiError",
    "NotFound",
    "PackagingError",
    "PayloadTooLarge",
    "StoreError",
    "TrainingError",
    "Unauthorized",
    "UnsupportedMediaType",
]


class ModelapiError(Exception):
    """Root of every error modelapi raises on purpose."""


class FieldError:
    """One problem with one field of a request: where it is and why it is refused."""

    __slots__ = ("field", "reason")

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldError) and (self.field, self.reason) == (
            other.field,
            other.reason,
        )

    def __hash__(self) -> int:
        return hash((self.field, self.reason))

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.reason!r})"


class InvalidInput(ModelapiError, ValueError):
    """A request the caller sent cannot be used; `details` names every bad field at once."""

    code = "invalid_input"

    def __init__(self, field: str, reason: str, *more: FieldError) -> None:
        self.details: tuple[FieldError, ...] = (FieldError(field, reason), *more)
        super().__init__("; ".join(f"{d.field}: {d.reason}" for d in self.details))
        self.field, self.reason = field, reason

    @classmethod
    def of(cls, details: list[FieldError]) -> InvalidInput:
        """Build one error from a non-empty list of field problems."""
        first, *rest = details
        return cls(first.field, first.reason, *rest)


class MalformedBody(InvalidInput):
    """The body is not well-formed JSON or CSV (HTTP 400)."""

    code = "malformed_body"


class PayloadTooLarge(InvalidInput):
    """The body or the number of rows is over the configured limit (HTTP 413)."""

    code = "payload_too_large"


class UnsupportedMediaType(InvalidInput):
    """The route cannot read this content type (HTTP 415)."""

    code = "unsupported_media_type"


class Unauthorized(ModelapiError):
    """A protected route was called without the configured API key (HTTP 401)."""

    code = "unauthorized"


class NotFound(ModelapiError, LookupError):
    """No such route, or no such model (HTTP 404)."""

    code = "not_found"


class MethodNotAllowed(ModelapiError):
    """The route exists but not with this method (HTTP 405)."""

    code = "method_not_allowed"

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class ModelUnavailable(ModelapiError):
    """No model is loaded, so nothing can be predicted (HTTP 503)."""

    code = "model_unavailable"


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
