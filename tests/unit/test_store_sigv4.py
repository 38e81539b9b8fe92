"""The standard library's SigV4 signer, against AWS's test suite and botocore's own signers.

(a) Every case of AWS's Signature Version 4 test suite that applies to S3 (tests/data/sigv4):
canonical request, string to sign, Authorization header. (b) Generated requests, signed by
modelapi and by botocore's SigV4Auth / S3SigV4Auth: the same Authorization header for random
keys, regions, dates, object keys with odd characters and session tokens. (c) The reader's
URLs against a botocore S3 client's for the same bucket, key, region and endpoint, with the
reader's signature checked the way S3 checks one.
"""

from __future__ import annotations

import datetime
import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import unquote

import botocore.auth
import botocore.session
import pytest
from botocore.auth import SIGNED_HEADERS_BLACKLIST, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials as BotocoreCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelapi.store import s3_reader
from modelapi.store.s3_reader import ReadSettings, S3Reader
from modelapi.store.sigv4 import (
    EMPTY_SHA256,
    Credentials,
    authorization,
    canonical_request,
    quote,
    signed_get_headers,
    string_to_sign,
)
from modelapi.store.transport import Answer
from tests.conftest import REPO_ROOT

SUITE = REPO_ROOT / "tests" / "data" / "sigv4"
ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _cases() -> list[str]:
    return sorted(str(p.parent.relative_to(SUITE)) for p in SUITE.rglob("*.req"))


def _parse(raw: str) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """Method, raw target, headers (continuation lines folded in) and body of a .req file."""
    head, _, body = raw.partition("\n\n")
    request_line, *lines = head.split("\n")
    method, target, _ = request_line.split(" ")
    headers: list[tuple[str, str]] = []
    for line in lines:
        if not line:
            continue
        if line[:1] in (" ", "\t"):
            name, value = headers.pop()
            headers.append((name, f"{value}\n{line}"))
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return method, target, headers, body.encode()


def test_the_suite_is_here() -> None:
    assert len(_cases()) == 26
    assert (SUITE / "LICENSE").read_text().lstrip().startswith("Apache License")


@pytest.mark.parametrize("case", _cases())
def test_the_signer_passes_the_aws_sigv4_test_suite(case: str) -> None:
    folder = SUITE / case
    stem = folder / Path(case).name

    def expected(suffix: str) -> str:
        return stem.with_suffix(suffix).read_text(encoding="utf-8").replace("\r", "")

    method, target, headers, body = _parse(stem.with_suffix(".req").read_text(encoding="utf-8"))
    # The session-token case signs a token that its .req leaves out (as botocore's test does).
    token = next(
        (line.partition(":")[2] for line in expected(".creq").split("\n")
         if line.startswith("x-amz-security-token:")),
        None,
    )  # fmt: skip
    if token is not None and not any(name.lower() == "x-amz-security-token" for name, _ in headers):
        headers.append(("X-Amz-Security-Token", token))
    raw_path, _, raw_query = target.partition("?")
    query = [
        (unquote(name), unquote(value))
        for name, _, value in (pair.partition("=") for pair in raw_query.split("&") if pair)
    ]
    path = quote(raw_path, safe="/~")
    payload = hashlib.sha256(body).hexdigest()
    amz_date = dict((n.lower(), v) for n, v in headers)["x-amz-date"]
    scope = f"{amz_date[:8]}/us-east-1/service/aws4_request"
    canonical, _ = canonical_request(method, path, query, headers, payload)
    assert canonical == expected(".creq")
    assert string_to_sign(amz_date, scope, canonical) == expected(".sts")
    found = authorization(
        Credentials(ACCESS_KEY, SECRET_KEY, token),
        amz_date=amz_date,
        region="us-east-1",
        service="service",
        method=method,
        path=path,
        query=query,
        headers=headers,
        payload_sha256=payload,
    )
    assert found == expected(".authz")


# -- generated requests, against botocore's signers ------------------------------------------

_printable = st.characters(min_codepoint=33, max_codepoint=126)
_keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=80)
_regions = st.from_regex(r"[a-z]{2}-[a-z]{4,9}-[1-9]", fullmatch=True)
_moments = st.datetimes(
    datetime.datetime(2000, 1, 1),
    datetime.datetime(2099, 12, 31),
    timezones=st.just(datetime.UTC),
)
_tokens = st.none() | st.text(_printable, min_size=1, max_size=300)
_secrets = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)
_access_keys = st.text(st.characters(min_codepoint=48, max_codepoint=90), min_size=4, max_size=20)


def _at(moment: datetime.datetime) -> Any:
    return mock.patch.object(botocore.auth, "get_current_datetime", return_value=moment)


# As the other property tests: no health checks on generation speed, which a loaded machine
# fails at random.
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=300, deadline=None, suppress_health_check=_QUIET)
@given(
    access_key=_access_keys,
    secret_key=_secrets,
    token=_tokens,
    region=_regions,
    moment=_moments,
    key=_keys,
    host=st.sampled_from(
        ["models.s3.eu-west-1.amazonaws.com", "s3.amazonaws.com", "127.0.0.1:9000", "[::1]:9000"]
    ),
    path_style=st.booleans(),
)
def test_an_s3_get_is_signed_as_botocores_s3sigv4auth_signs_it(
    access_key: str,
    secret_key: str,
    token: str | None,
    region: str,
    moment: datetime.datetime,
    key: str,
    host: str,
    path_style: bool,
) -> None:
    path = ("/models.example" if path_style else "") + "/" + quote(key, safe="/~")
    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    mine = signed_get_headers(
        Credentials(access_key, secret_key, token),
        host=host,
        path=path,
        region=region,
        amz_date=amz_date,
    )
    request = AWSRequest(method="GET", url=f"https://{host}{path}")
    with _at(moment):
        S3SigV4Auth(BotocoreCredentials(access_key, secret_key, token), "s3", region).add_auth(
            request
        )
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
        assert mine[name] == request.headers[name], name
    assert mine.get("X-Amz-Security-Token") == request.headers.get("X-Amz-Security-Token")
    assert mine["X-Amz-Content-SHA256"] == EMPTY_SHA256


# Headers the caller sends (`sign` signs every one it is given); botocore's own list of the
# ones it never signs (hop-by-hop, tracing, User-Agent) is left out, as callers leave them out.
_header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True).filter(
    lambda n: (
        n.lower() not in {"host", "x-amz-date", "authorization", *SIGNED_HEADERS_BLACKLIST}
        and not n.lower().startswith(("x-amz-", "transfer-encoding", "x-amzn-trace"))
    )
)
_header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
_query_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=_QUIET)
@given(
    secret_key=_secrets,
    token=_tokens,
    region=_regions,
    moment=_moments,
    headers=st.dictionaries(_header_names, _header_values, max_size=5),
    query=st.dictionaries(_query_text.filter(bool), _query_text, max_size=4),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    body=st.binary(max_size=40),
)
def test_any_request_is_signed_as_botocores_sigv4auth_signs_it(
    secret_key: str,
    token: str | None,
    region: str,
    moment: datetime.datetime,
    headers: dict[str, str],
    query: dict[str, str],
    method: str,
    body: bytes,
) -> None:
    # Header names are case-insensitive: keep one spelling of each, as an HTTP message would.
    headers = {name: value for name, value in {n.lower(): v for n, v in headers.items()}.items()}
    request = AWSRequest(
        method=method, url="https://service.example.com/a/b", data=body, params=query
    )
    for name, value in headers.items():
        request.headers[name] = value
    with _at(moment):
        SigV4Auth(BotocoreCredentials("AKID", secret_key, token), "service", region).add_auth(
            request
        )
    signed = [("Host", "service.example.com"), *headers.items()]
    signed.append(("X-Amz-Date", request.headers["X-Amz-Date"]))
    if token:
        signed.append(("X-Amz-Security-Token", token))
    found = authorization(
        Credentials("AKID", secret_key, token),
        amz_date=moment.strftime("%Y%m%dT%H%M%SZ"),
        region=region,
        service="service",
        method=method,
        path="/a/b",
        query=query.items(),
        headers=signed,
        payload_sha256=hashlib.sha256(body).hexdigest(),
    )
    assert found == request.headers["Authorization"]


# -- the reader's requests, against a botocore client's ----------------------------------------

ENDPOINTS = [None, "http://127.0.0.1:9000", "http://[::1]:9000/base/", "https://minio.example:443"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1", "us-gov-west-1"]
TOKEN = "IQoJb3JpZ2luX2VjEEXAMPLE/+=="


class _Empty(io.BytesIO):
    def stream(self, **_: object) -> Iterator[bytes]:
        yield from iter([self.read()])


@pytest.fixture(scope="module")
def clients() -> dict[tuple[str, str | None], Any]:
    """A botocore S3 client per region and endpoint; each records the URL it would send."""
    session = botocore.session.get_session()
    found = {}
    for region in REGIONS:
        for endpoint in ENDPOINTS:
            client = session.create_client(
                "s3",
                region_name=region,
                endpoint_url=endpoint,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                aws_session_token=TOKEN,
                config=Config(retries={"max_attempts": 1}),
            )
            client.meta.events.register("before-send.s3.GetObject", _record)
            found[region, endpoint] = client
    return found


_sent: list[str] = []


def _record(request: Any, **_: object) -> AWSResponse:
    _sent.append(request.url)
    return AWSResponse(request.url, 200, {"content-length": "0"}, _Empty(b""))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[*_QUIET, HealthCheck.function_scoped_fixture],
)
@given(
    region=st.sampled_from(REGIONS),
    endpoint=st.sampled_from(ENDPOINTS),
    bucket=st.sampled_from(["models-bucket", "models.example", "m0d3ls"]),
    key=_keys,
    moment=_moments,
)
def test_the_reader_sends_a_clients_url_with_a_signature_s3_accepts(
    clients: dict[tuple[str, str | None], Any],
    region: str,
    endpoint: str | None,
    bucket: str,
    key: str,
    moment: datetime.datetime,
) -> None:
    _sent.clear()
    clients[region, endpoint].get_object(Bucket=bucket, Key=key)
    [client_url] = _sent
    settings_ = ReadSettings(Credentials(ACCESS_KEY, SECRET_KEY, TOKEN), region, endpoint)
    reader = S3Reader(bucket, settings_, connect_timeout_s=1, read_timeout_s=1, max_attempts=1)
    sent: list[tuple[str, dict[str, str]]] = []

    def request(method: str, url: str, headers: dict[str, str], **_: object) -> Answer:
        sent.append((url, dict(headers)))
        return Answer(200, "OK", {}, b"")

    amz_date = moment.strftime("%Y%m%dT%H%M%SZ")
    with (
        mock.patch.object(reader._transport, "request", request),
        mock.patch.object(s3_reader, "_amz_date", return_value=amz_date),
    ):
        reader.get(key, max_bytes=10, deadline_s=5)
    [(url, headers)] = sent
    assert url == client_url
    assert _s3_accepts(url, headers)


def _s3_accepts(url: str, headers: dict[str, str]) -> bool:
    """Check a signature as S3 does: botocore's signer over the signed headers as sent."""
    fields = dict(
        part.strip().split("=", 1)
        for part in headers["Authorization"].removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    _, _, region, service, _ = fields["Credential"].split("/")
    signed = {name.lower(): value for name, value in headers.items()}
    remade = AWSRequest(method="GET", url=url)
    for name in fields["SignedHeaders"].split(";"):
        remade.headers[name] = signed[name]
    remade.context["timestamp"] = signed["x-amz-date"]
    signer = S3SigV4Auth(BotocoreCredentials(ACCESS_KEY, SECRET_KEY, TOKEN), service, region)
    canonical = signer.canonical_request(remade)
    return bool(
        signer.signature(signer.string_to_sign(remade, canonical), remade) == fields["Signature"]
    )
