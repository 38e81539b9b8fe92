"""S3's failures as modelapi's errors: one line naming the bucket or key, and what to do.

Both ways of reading fail the same way: S3's refusals (the standard-library reader's S3Refusal,
botocore's ClientError) by their error code, network failures (the transport's Unreachable,
botocore's connection errors) by botocore's name for them. The original exception is kept as
the cause by the caller.
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from modelapi.errors import ModelapiError, StoreError
from modelapi.extras import require
from modelapi.store.s3_reader import S3Failure, S3Refusal
from modelapi.store.transport import Unreachable

__all__ = ["Where", "error_code", "store_error", "too_slow"]

_DENIED = {
    "AccessDenied",
    "403",
    "Forbidden",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}
_PERMISSION = {"read": "s3:GetObject", "write": "s3:PutObject", "list": "s3:ListBucket"}


class Where(NamedTuple):
    """The store a failure happened in: its bucket, its URI and its endpoint."""

    bucket: str
    uri: str
    endpoint: str


def store_error(
    exc: Exception, action: str, target: str, where: Where, *, missing: ModelapiError | None
) -> ModelapiError:
    """The StoreError for a failure to `action` `target` (or `missing` for a missing object).

    Re-raises an exception that is neither S3's nor the network's: a bug is not a store fault.
    """
    code = error_code(exc)
    if code:
        if code == "NoSuchBucket":
            return StoreError(
                f"bucket {where.bucket!r} does not exist at {where.endpoint}: create it,"
                f" or fix the store URI {where.uri}"
            )
        if code in {"NoSuchKey", "404", "NotFound"} and missing is not None:
            return missing
        if code in _DENIED:
            return StoreError(
                f"access denied ({code}) to {action} {target}: the credentials need"
                f" {_PERMISSION[action]} on {where.uri}/* (without s3:ListBucket, S3 also"
                " answers a missing object with access denied)"
            )
        return StoreError(f"S3 refused to {action} {target}: {code} {_message(exc)}".rstrip())
    if isinstance(exc, Unreachable):
        return _unreachable(action, target, where, exc.kind)
    if isinstance(exc, S3Failure):
        return StoreError(f"S3 failed to {action} {target}: {exc}")
    # Anything else came from botocore, which is imported by now.
    errors = require("botocore.exceptions", "s3")
    if isinstance(exc, errors.NoCredentialsError):
        return StoreError(
            f"no AWS credentials to {action} {target}: configure them as boto3 reads them"
            " (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or an IAM role)"
        )
    if isinstance(exc, errors.ConnectionError | errors.HTTPClientError):
        return _unreachable(action, target, where, type(exc).__name__)
    if isinstance(exc, errors.BotoCoreError):
        return StoreError(f"S3 failed to {action} {target}: {exc}")
    raise exc


def too_slow(action: str, target: str, deadline_s: float, where: Where) -> StoreError:
    """The StoreError for a read that did not finish within its deadline."""
    return StoreError(
        f"S3 did not finish a {action} of {target} within its {deadline_s:g} s deadline:"
        f" the endpoint {where.endpoint} is too slow or stalled; check the network and"
        " AWS_ENDPOINT_URL_S3 (MODELAPI_STORE_DEADLINE_S sets the deadline)"
    )


def error_code(exc: Exception) -> str:
    """S3's error code in a refusal (the reader's, or botocore's ClientError), else ''."""
    if isinstance(exc, S3Refusal):
        return exc.code
    # An exception can only be botocore's if botocore has been imported.
    errors = sys.modules.get("botocore.exceptions")
    if errors is None or not isinstance(exc, errors.ClientError):
        return ""
    response: dict[str, Any] = exc.response
    return str(response.get("Error", {}).get("Code", ""))


def _message(exc: Exception) -> str:
    if isinstance(exc, S3Refusal):
        return exc.message
    response: dict[str, Any] = getattr(exc, "response", {})
    return str(response.get("Error", {}).get("Message", ""))


def _unreachable(action: str, target: str, where: Where, kind: str) -> StoreError:
    return StoreError(
        f"cannot reach the S3 endpoint {where.endpoint} to {action} {target}"
        f" ({kind}); check the network and AWS_ENDPOINT_URL_S3"
    )
