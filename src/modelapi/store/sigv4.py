"""AWS Signature Version 4 on the standard library (hmac and hashlib), as S3 checks it.

A signature covers the canonical request: the method; the path exactly as it is sent (S3
neither normalises nor encodes it again, unlike most AWS services); the query, encoded and
sorted; the signed headers (lower-case names, values trimmed with inner runs of white space
collapsed, a repeated header's values joined by commas, sorted by name); and the payload's
sha256. Its sha256 goes into a string to sign with the time and the scope (date, region,
service), which is signed with a key derived from the secret key by the same four HMACs.

Checked against AWS's published Signature Version 4 test suite (tests/data/sigv4) and against
botocore's own signer on generated requests (tests/unit/test_store_sigv4.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "ALGORITHM",
    "EMPTY_SHA256",
    "Credentials",
    "authorization",
    "canonical_request",
    "quote",
    "signature",
    "signed_get_headers",
    "string_to_sign",
]

ALGORITHM = "AWS4-HMAC-SHA256"
# The payload hash of a GET: S3 signs the sha256 of its empty body.
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


class Credentials(NamedTuple):
    """An access key, its secret and, for temporary credentials, the session token."""

    access_key: str
    secret_key: str
    token: str | None = None


def quote(text: str, safe: str = "") -> str:
    """Percent-encode the UTF-8 bytes of `text` except unreserved characters and `safe`."""
    keep = _UNRESERVED | frozenset(safe.encode("ascii"))
    return "".join(chr(byte) if byte in keep else f"%{byte:02X}" for byte in text.encode("utf-8"))


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    payload_sha256: str,
) -> tuple[str, str]:
    """The canonical request and its list of signed headers (`host;x-amz-date;...`).

    `path` is used as it is sent; `query` holds decoded names and values; every header in
    `headers` is signed, so leave out those a proxy may change (User-Agent, for one).
    """
    pairs = sorted((quote(name), quote(value)) for name, value in query)
    joined: dict[str, list[str]] = {}
    for name, value in headers:
        joined.setdefault(name.lower().strip(), []).append(" ".join(value.split()))
    names = sorted(joined)
    lines = [
        method.upper(),
        path,
        "&".join(f"{name}={value}" for name, value in pairs),
        *(f"{name}:{','.join(joined[name])}" for name in names),
        "",
        ";".join(names),
        payload_sha256,
    ]
    return "\n".join(lines), ";".join(names)


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    """What is signed: the algorithm, the time, the scope and the canonical request's hash."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signature(secret_key: str, scope: str, text: str) -> str:
    """The hex signature of `text` with the key derived for `scope` (date/region/service/...)."""
    key = f"AWS4{secret_key}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(
    credentials: Credentials,
    *,
    amz_date: str,
    region: str,
    service: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    payload_sha256: str,
) -> str:
    """The Authorization header of a request whose `headers` hold Host and X-Amz-Date."""
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    canonical, signed = canonical_request(method, path, query, headers, payload_sha256)
    signed_text = signature(
        credentials.secret_key, scope, string_to_sign(amz_date, scope, canonical)
    )
    return (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed},"
        f" Signature={signed_text}"
    )


def signed_get_headers(
    credentials: Credentials, *, host: str, path: str, region: str, amz_date: str
) -> dict[str, str]:
    """The signed headers of an S3 GET of `path` (already encoded) on `host`, as botocore's."""
    headers = {"Host": host, "X-Amz-Content-SHA256": EMPTY_SHA256, "X-Amz-Date": amz_date}
    if credentials.token:
        headers["X-Amz-Security-Token"] = credentials.token
    headers["Authorization"] = authorization(
        credentials,
        amz_date=amz_date,
        region=region,
        service="s3",
        method="GET",
        path=path,
        query=(),
        headers=headers.items(),
        payload_sha256=EMPTY_SHA256,
    )
    return headers
