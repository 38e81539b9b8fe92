"""GetObject for one bucket from botocore's own parts, without building an S3 client.

A botocore S3 client costs more than half of a Lambda cold start that reads its model from S3:
importing the client machinery and loading S3's service model and endpoint data take about
250 ms in a fresh Python 3.12, against about 8 ms for the three GetObjects that follow. Serving
only reads objects, so objects are read with the parts the client itself is made of: the
session's configuration and credential chain, S3's endpoint rule set (the URL, and how to sign
for it), the SigV4 signer, botocore's HTTP session with the same timeouts, and the standard
retry mode's checks and back-off. Like a client, it follows S3's region redirects: a bucket in
another region than the configured one is read from its own region, re-signed for it, and that
region is kept for later reads. Failures are raised as the client raises them (ClientError with
S3's error code, botocore's connection errors), so callers translate them the same way. Listing
and writing still go through a client (`S3Store`), which serving never needs.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from typing import Any, NamedTuple
from xml.etree import ElementTree

from modelapi.extras import require

__all__ = ["S3Objects", "new_client"]

# S3's API version has been 2006-03-01 since S3 began; its rule set is read by path so that
# botocore does not list every service it knows (about 50 ms of directory reads).
_RULE_SET = "s3/2006-03-01/endpoint-rule-set-1"
# The answers with which S3 says a bucket is in another region (botocore's S3RegionRedirectorv2):
# a redirect status, PermanentRedirect, a signature for the wrong region naming the right one, and
# the error of a bucket in an opt-in region.
_REDIRECT_STATUSES = (301, 302, 307)
_REDIRECT_CODES = ("PermanentRedirect", "IllegalLocationConstraintException")
_session_lock = threading.Lock()
_sessions: list[Any] = []


def new_client(config: Any, endpoint_url: str | None) -> Any:
    """A botocore S3 client with `config`, from the session every store shares."""
    with _session_lock:
        return _shared_session().create_client("s3", config=config, endpoint_url=endpoint_url)


def _shared_session() -> Any:
    # One session for every store, created on first use: clients made from one session share
    # its parsed service model (10 ms instead of 150 ms each). Sessions are not thread-safe,
    # so it is only used under _session_lock.
    if not _sessions:
        _sessions.append(require("botocore.session", "s3").get_session())
    return _sessions[0]


class S3Objects:
    """Signed GetObject requests for one bucket, configured as a botocore S3 client would be."""

    def __init__(
        self, bucket: str, *, connect_timeout_s: float, read_timeout_s: float, max_attempts: int
    ) -> None:
        """Resolve credentials, the endpoint and signing from the shared session.

        Raises a botocore error (or ValueError) when the configuration is unusable.
        """
        self._auth = require("botocore.auth", "s3")
        self._request = require("botocore.awsrequest", "s3")
        self._response = require("botocore.response", "s3")
        self._exceptions = require("botocore.exceptions", "s3")
        self._retries = require("botocore.retries.standard", "s3")
        httpsession = require("botocore.httpsession", "s3")
        utils = require("botocore.utils", "s3")
        with _session_lock:
            session = _shared_session()
            self._credentials = session.get_credentials()
            configured = _configured_endpoint(session)
            params = _rule_parameters(session, configured)
            provider = _endpoint_provider(session)
            verify = session.get_config_variable("ca_bundle")
        self._bucket = bucket
        self._provider = provider
        self._parameters = params
        self._utils = utils
        # Where and how reads are sent and signed; replaced when S3 redirects to the bucket's
        # region. One immutable tuple, swapped whole: a thread reads the old or the new one.
        self._target = self._resolve(params["Region"])
        self.configured_endpoint = configured
        # What a client reports as its endpoint_url: the configured one, else the regional one.
        self.endpoint: str = configured or provider.resolve_endpoint(**params).url
        # A client's HTTP session: proxies for its endpoint_url from the environment, and the
        # CA bundle from the configuration, else REQUESTS_CA_BUNDLE (as botocore's endpoint does).
        self._http = httpsession.URLLib3Session(
            timeout=(connect_timeout_s, read_timeout_s),
            proxies=utils.get_environ_proxies(self.endpoint),
            verify=verify if verify is not None else os.environ.get("REQUESTS_CA_BUNDLE", True),
        )
        self._max_attempts = max_attempts
        self._retryable = [
            self._retries.TransientRetryableChecker(),
            self._retries.ThrottledRetryableChecker(),
        ]
        if hasattr(self._retries, "ThrottlingStatusCodeChecker"):  # newer botocore: a bare 429
            self._retryable.append(self._retries.ThrottlingStatusCodeChecker())
        self._backoff = self._retries.ExponentialBackoff()

    def _resolve(self, region: str) -> _Target:
        """The URL and SigV4 signing for the bucket in `region`, from S3's endpoint rule set."""
        resolved = self._provider.resolve_endpoint(
            Bucket=self._bucket, **{**self._parameters, "Region": region}
        )
        scheme = resolved.properties.get("authSchemes", [{}])[0]
        if scheme.get("name") != "sigv4":
            raise self._exceptions.EndpointResolutionError(
                msg=f"bucket {self._bucket!r} needs {scheme.get('name')} signing"
            )
        url = resolved.url.rstrip("/")
        utils = self._utils
        if not (utils.is_valid_endpoint_url(url) or utils.is_valid_ipv6_endpoint_url(url)):
            raise self._exceptions.EndpointResolutionError(msg=f"Invalid endpoint: {url}")
        return _Target(url, scheme.get("signingName", "s3"), scheme.get("signingRegion", region))

    def get(self, key: str) -> tuple[int, Any]:
        """An object's size and its body (botocore's StreamingBody); retried as a client does.

        Raises botocore's ClientError for an S3 error answer, and its connection errors.
        """
        attempt = 1
        redirected = False
        while True:
            response = error = None
            failure: Any = None
            try:
                response = self._send(key, self._target)
                if response.status_code < 300:
                    length = int(response.headers.get("content-length", "0"))
                    return length, self._response.StreamingBody(response.raw, length)
                failure = self._client_error(response)
            except (self._exceptions.ConnectionError, self._exceptions.HTTPClientError) as exc:
                error = exc
            context = self._retries.RetryContext(
                attempt_number=attempt,
                parsed_response=failure.response if failure is not None else None,
                http_response=response,
                caught_exception=error,
            )
            problem = failure or error
            assert problem is not None
            if attempt < self._max_attempts and any(
                check.is_retryable(context) for check in self._retryable
            ):
                time.sleep(self._backoff.delay_amount(context))
            elif not redirected and (region := _bucket_region(failure, response)) is not None:
                # As a client: one redirect per read, at once, even past the attempts.
                self._redirect(region)
                redirected = True
            else:
                raise problem
            attempt += 1

    def _redirect(self, region: str) -> None:
        """Send this and later reads to the bucket's own region, signed for it."""
        self._utils.validate_region_name(region)  # it becomes part of the URL
        self._target = self._resolve(region)

    def _send(self, key: str, target: _Target) -> Any:
        credentials = self._credentials
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        if frozen is None or frozen.access_key is None:
            raise self._exceptions.NoCredentialsError()
        url = f"{target.url}/{_quote_key(key)}"
        request = self._request.AWSRequest(method="GET", url=url)
        signer = self._auth.S3SigV4Auth(frozen, target.signing_name, target.signing_region)
        signer.add_auth(request)
        prepared = request.prepare()
        prepared.stream_output = True
        return self._http.send(prepared)

    def _client_error(self, response: Any) -> Any:
        # As botocore's rest-xml parser reads an error: S3's <Error> body, else the
        # <ErrorResponse><Error> form, else (no or bad XML) the status code and its phrase.
        status = response.status_code
        code, message = str(status), http.client.responses.get(status, "")
        fields = {"Code": code, "Message": message}
        error = _error_element(response.content)
        if error is not None:
            # Every field of the error, as the parser keeps them (S3 names the Region in some).
            fields = {"Code": "", "Message": ""}
            fields.update((child.tag, child.text or "") for child in error)
            for duplicate in ("RequestId", "HostId"):  # in the metadata already
                fields.pop(duplicate, None)
        metadata = {"HTTPStatusCode": status, "HTTPHeaders": dict(response.headers)}
        return self._exceptions.ClientError(
            {"Error": fields, "ResponseMetadata": metadata}, "GetObject"
        )


class _Target(NamedTuple):
    """Where a read is sent and how it is signed."""

    url: str
    signing_name: str
    signing_region: str


def _bucket_region(failure: Any, response: Any) -> str | None:
    """The bucket's region when S3 answered that it is in another one, else None.

    S3 names it in the x-amz-bucket-region header or in the error's Region. When neither is
    there, the read fails with S3's error (a client would go on to ask HeadBucket; S3's own
    redirects of a GetObject name the region in one or the other).
    """
    if failure is None:
        return None
    error = failure.response["Error"]
    code = error.get("Code")
    if not (
        response.status_code in _REDIRECT_STATUSES
        or code in _REDIRECT_CODES
        or (code == "AuthorizationHeaderMalformed" and "Region" in error)
    ):
        return None
    region = response.headers.get("x-amz-bucket-region") or error.get("Region")
    return str(region) if region else None


def _error_element(body: bytes) -> ElementTree.Element | None:
    if not body:
        return None
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    return root if root.tag == "Error" else root.find("Error")


def _configured_endpoint(session: Any) -> str | None:
    # The lookup a client makes for endpoint_url: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then
    # the shared config file. botocore before 1.31 has no such lookup, and neither do its clients.
    if session.get_config_variable("ignore_configured_endpoint_urls"):
        return None
    try:
        from botocore.configprovider import ConfiguredEndpointProvider
    except ImportError:
        return None
    provider = ConfiguredEndpointProvider(
        full_config=session.full_config, scoped_config=session.get_scoped_config(), client_name="s3"
    )
    found = provider.provide()
    return str(found) if found else None


def _rule_parameters(session: Any, configured: str | None) -> dict[str, Any]:
    # The built-in parameters botocore's ClientArgsCreator gives S3's rule set.
    s3_config = session.get_config_variable("s3") or {}
    region = session.get_config_variable("region")
    if configured is not None:
        force_path_style = s3_config.get("addressing_style") != "virtual"
    else:
        force_path_style = s3_config.get("addressing_style") == "path"
    regional = s3_config.get("us_east_1_regional_endpoint", "legacy")
    return {
        "Region": region or "us-east-1",
        "Endpoint": configured,
        "UseFIPS": configured is None and bool(session.get_config_variable("use_fips_endpoint")),
        "UseDualStack": configured is None
        and bool(
            s3_config.get("use_dualstack_endpoint")
            or session.get_config_variable("use_dualstack_endpoint")
        ),
        "UseGlobalEndpoint": regional == "legacy" and region in ("us-east-1", None),
        "Accelerate": False,
        "ForcePathStyle": force_path_style,
        # Directory buckets accept plain SigV4 too; their session tokens would need a client.
        "DisableS3ExpressSessionAuth": True,
    }


def _endpoint_provider(session: Any) -> Any:
    provider = require("botocore.endpoint_provider", "s3")
    loader = session.get_component("data_loader")
    return provider.EndpointProvider(loader.load_data(_RULE_SET), loader.load_data("partitions"))


def _quote_key(key: str) -> str:
    from urllib.parse import quote

    return quote(key, safe="/~")
