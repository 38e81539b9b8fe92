"""GetObject on the standard library, for a process whose AWS credentials are in its environment.

In a Lambda execution environment the credentials are three environment variables
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) and the region is AWS_REGION: a
signed GET needs nothing more, while importing botocore and building a client's parts cost a
cold start about 250 ms. This reader is used only where it knows everything botocore would
(`settings_from_environment` says when); everywhere else the store reads through botocore.

What a botocore S3 client does for a GetObject, it does: virtual-hosted addressing on AWS
(path-style for a bucket with dots, and for an endpoint set by AWS_ENDPOINT_URL_S3 or
AWS_ENDPOINT_URL), SigV4 with the session token, the standard retry mode's checks with its
jittered exponential back-off, and region redirects: a bucket in another region is read there,
re-signed for it, at most once per read, and the region is kept for later reads.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from http.client import responses
from typing import NamedTuple

from modelapi._version import __version__
from modelapi.errors import ConfigError
from modelapi.store.sigv4 import Credentials, quote, signed_get_headers
from modelapi.store.transport import Answer, Transport, Unreachable, host_header, split_url

__all__ = ["ReadSettings", "S3Failure", "S3Reader", "S3Refusal", "settings_from_environment"]

_USER_AGENT = f"modelapi/{__version__}"
# botocore's validate_region_name: a region becomes part of a host name.
_REGION = re.compile(r"(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")
# The partitions addressed here, with their DNS suffix (botocore's partitions.json); a region
# of any other partition is read through botocore, which knows them all.
_PARTITIONS = (
    (re.compile(r"(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+"), "amazonaws.com"),
    (re.compile(r"us-gov-\w+-\d+"), "amazonaws.com"),
    (re.compile(r"cn-\w+-\d+"), "amazonaws.com.cn"),
)
_VIRTUAL_HOSTABLE = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
# The standard retry mode's checks (botocore.retries.standard).
_TRANSIENT_CODES = {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
_TRANSIENT_STATUSES = {500, 502, 503, 504}
_THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
}
_MAX_BACKOFF_S = 20.0
# The answers with which S3 says a bucket is in another region (botocore's S3RegionRedirectorv2).
_REDIRECT_STATUSES = {301, 302, 307}
_REDIRECT_CODES = {"PermanentRedirect", "IllegalLocationConstraintException"}
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'", "&amp;": "&"}


class ReadSettings(NamedTuple):
    """What the environment says about reaching S3."""

    credentials: Credentials
    region: str
    endpoint: str | None
    regional_us_east_1: bool = False
    ca_bundle: str | None = None


class S3Refusal(Exception):
    """S3 answered with an error: its status, code and message, as botocore parses them."""

    def __init__(
        self, status: int, code: str, message: str, *, region: str = "", headers: Mapping[str, str]
    ) -> None:
        super().__init__(f"{code} {message}".strip())
        self.status, self.code, self.message, self.region = status, code, message, region
        self.headers = dict(headers)


class S3Failure(Exception):
    """A read that cannot go on, for a reason other than S3's answer or the network."""


def settings_from_environment(environ: Mapping[str, str] = os.environ) -> ReadSettings | None:
    """The settings for a read, when the environment holds them all; None when botocore must read.

    None when the credentials are not AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile is
    named, an AWS config or credentials file exists (either can set the region, the endpoint,
    the addressing style and more), a proxy is set for the endpoint's scheme, FIPS or dual-stack
    endpoints are asked for, or the region is one this reader does not address. Raises
    ConfigError for an endpoint variable that is not an http(s) URL.
    """
    access_key = environ.get("AWS_ACCESS_KEY_ID")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key or environ.get("AWS_PROFILE"):
        return None
    if environ.get("AWS_DEFAULT_PROFILE"):
        return None
    files = (
        environ.get("AWS_CONFIG_FILE") or "~/.aws/config",
        environ.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials",
    )
    if any(os.path.exists(os.path.expanduser(file)) for file in files):
        return None
    endpoint = None
    if not _is_true(environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")):
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            if environ.get(name):
                endpoint = _check_endpoint(name, environ[name])
                break
    scheme = endpoint.partition(":")[0].lower() if endpoint else "https"
    if environ.get(f"{scheme}_proxy") or environ.get(f"{scheme.upper()}_PROXY"):
        return None
    # botocore reads AWS_DEFAULT_REGION; Lambda sets AWS_REGION too, and to the same region.
    region = environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION") or "us-east-1"
    if not _REGION.fullmatch(region):
        return None
    if endpoint is None and (
        _dns_suffix(region) is None
        or _is_true(environ.get("AWS_USE_FIPS_ENDPOINT"))
        or _is_true(environ.get("AWS_USE_DUALSTACK_ENDPOINT"))
    ):
        return None
    token = environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_SECURITY_TOKEN") or None
    return ReadSettings(
        credentials=Credentials(access_key, secret_key, token),
        region=region,
        endpoint=endpoint,
        regional_us_east_1=environ.get("AWS_S3_US_EAST_1_REGIONAL_ENDPOINT") == "regional",
        ca_bundle=environ.get("AWS_CA_BUNDLE") or environ.get("REQUESTS_CA_BUNDLE") or None,
    )


class _Target(NamedTuple):
    """Where a read is sent (scheme://host, the path before the key) and how it is signed."""

    origin: str
    host: str
    path: str
    signing_region: str


class S3Reader:
    """Signed GetObject requests for one bucket, sent and retried as a botocore client would."""

    def __init__(
        self,
        bucket: str,
        settings: ReadSettings,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_attempts: int,
    ) -> None:
        self._bucket = bucket
        self._settings = settings
        self._max_attempts = max_attempts
        self._transport = Transport(
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            ca_bundle=settings.ca_bundle,
        )
        # Replaced whole when S3 redirects to the bucket's region: a thread sees one or the other.
        self._target = self._resolve(settings.region)
        # What a botocore client reports as its endpoint_url; the configured one, if any.
        self.endpoint = settings.endpoint or self._regional(settings.region)
        self.endpoint_url = settings.endpoint

    def get(self, key: str, *, max_bytes: int, deadline_s: float) -> bytes:
        """An object's bytes, read within `deadline_s` (all attempts and a redirect).

        Raises S3Refusal for S3's error answer, Unreachable when no answer came, TooLarge past
        `max_bytes`, DeadlinePassed, and S3Failure for a redirect that cannot be followed.
        """
        deadline = time.monotonic() + deadline_s
        attempt = 1
        redirected = False
        while True:
            failure: S3Refusal | Unreachable
            try:
                answer = self._send(key, self._target, deadline, max_bytes)
                if answer.status < 300:
                    return answer.body
                failure = _refusal(answer)
            except Unreachable as exc:
                failure = exc
            if attempt < self._max_attempts and _is_retryable(failure):
                delay_s = _random() * min(_MAX_BACKOFF_S, 2.0 ** (attempt - 1))
                if time.monotonic() + delay_s >= deadline:
                    raise failure  # no time is left for another attempt
                time.sleep(delay_s)
            elif not redirected and (region := _bucket_region(failure)) is not None:
                # As a client: one redirect per read, at once, even past the attempts.
                self._target = self._resolve(region)
                redirected = True
            else:
                raise failure
            attempt += 1

    def close(self) -> None:
        """Close the idle connections."""
        self._transport.close()

    def _send(self, key: str, target: _Target, deadline: float, max_bytes: int) -> Answer:
        path = f"{target.path}/{quote(key, safe='/~')}"
        headers = signed_get_headers(
            self._settings.credentials,
            host=target.host,
            path=path,
            region=target.signing_region,
            amz_date=_amz_date(),
        )
        headers["User-Agent"] = _USER_AGENT
        return self._transport.request(
            "GET", target.origin + path, headers, deadline=deadline, max_bytes=max_bytes
        )

    def _resolve(self, region: str) -> _Target:
        """Where the bucket is read in `region`, by the rules of S3's endpoint rule set."""
        if not _REGION.fullmatch(region):
            raise S3Failure(f"Provided region_name '{region}' doesn't match a supported format.")
        endpoint = self._settings.endpoint
        if endpoint is not None:
            scheme, host, port, target = split_url(endpoint)
            # The URL keeps the endpoint as written; the signed Host header drops a default port.
            written, _, rest = endpoint.partition("://")
            origin = f"{written}://{re.split('[/?]', rest, maxsplit=1)[0]}"
            prefix = target.partition("?")[0].rstrip("/")
            host = host_header(scheme, host, port)
            return _Target(origin, host, f"{prefix}/{self._bucket}", region)
        base = self._regional(region)
        host = base.removeprefix("https://")
        if _VIRTUAL_HOSTABLE.fullmatch(self._bucket):
            host = f"{self._bucket}.{host}"
            return _Target(f"https://{host}", host, "", region)
        # A dotted name would not match the wildcard certificate: path-style, as botocore does.
        return _Target(base, host, f"/{self._bucket}", region)

    def _regional(self, region: str) -> str:
        suffix = _dns_suffix(region)
        if suffix is None:
            raise S3Failure(f"the bucket is in {region}, which is read through botocore only")
        settings = self._settings
        if region == settings.region == "us-east-1" and not settings.regional_us_east_1:
            return "https://s3.amazonaws.com"  # botocore's legacy global endpoint
        return f"https://s3.{region}.{suffix}"


def _refusal(answer: Answer) -> S3Refusal:
    """S3's error, read as botocore's rest-xml parser reads it: the status alone without XML."""
    text = answer.body.decode("utf-8", "replace")
    code = _element(text, "Code")
    if code is None:
        code, message = str(answer.status), responses.get(answer.status, "")
    else:
        message = _element(text, "Message") or ""
    region = _element(text, "Region") or ""
    return S3Refusal(answer.status, code, message, region=region, headers=answer.headers)


def _element(text: str, name: str) -> str | None:
    found = re.search(f"<{name}>([^<]*)</{name}>", text)
    if found is None:
        return None
    return re.sub("&(lt|gt|quot|apos|amp);", lambda m: _ENTITIES[m.group(0)], found.group(1))


def _is_retryable(failure: S3Refusal | Unreachable) -> bool:
    if isinstance(failure, Unreachable):
        return True
    return (
        failure.code in _TRANSIENT_CODES
        or failure.code in _THROTTLING_CODES
        or failure.status in _TRANSIENT_STATUSES
        or failure.status == 429
    )


def _bucket_region(failure: S3Refusal | Unreachable) -> str | None:
    """The bucket's region when S3 answered that it is in another one, else None.

    S3 names it in the x-amz-bucket-region header or in the error's Region. When neither is
    there the read fails with S3's error (a client would go on to ask HeadBucket; S3's own
    redirects of a GetObject name the region in one or the other).
    """
    if not isinstance(failure, S3Refusal):
        return None
    if not (
        failure.status in _REDIRECT_STATUSES
        or failure.code in _REDIRECT_CODES
        or (failure.code == "AuthorizationHeaderMalformed" and failure.region)
    ):
        return None
    return failure.headers.get("x-amz-bucket-region") or failure.region or None


def _dns_suffix(region: str) -> str | None:
    for pattern, suffix in _PARTITIONS:
        if pattern.fullmatch(region):
            return suffix
    return None


def _check_endpoint(name: str, url: str) -> str:
    try:
        split_url(url)
    except ValueError as exc:
        raise ConfigError(
            f"{name} {url[:80]!r} is not an endpoint URL: it {exc}; use http(s)://host[:port]"
        ) from None
    return url


def _is_true(value: str | None) -> bool:
    return value is not None and value.strip().lower() == "true"


def _amz_date() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _random() -> float:
    # The back-off's jitter; the `random` module would be one more import on a cold start.
    return int.from_bytes(os.urandom(4), "big") / 2**32
