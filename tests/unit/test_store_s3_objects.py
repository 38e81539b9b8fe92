"""S3Objects: the endpoint, signing and errors a botocore S3 client would have, without one."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    InvalidRegionError,
    NoCredentialsError,
)

from modelapi.errors import StoreError
from modelapi.store.s3 import S3Store
from modelapi.store.s3_objects import S3Objects, new_client


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Credentials and a region in the environment, no config file, no endpoint override."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setattr("modelapi.store.s3_objects._sessions", [])  # the session caches both
    return monkeypatch


def objects(bucket: str = "models-bucket", max_attempts: int = 2) -> S3Objects:
    return S3Objects(bucket, connect_timeout_s=1, read_timeout_s=1, max_attempts=max_attempts)


def test_aws_buckets_are_virtual_hosted_in_their_region(aws: pytest.MonkeyPatch) -> None:
    found = objects()
    assert found._target == ("https://models-bucket.s3.eu-west-1.amazonaws.com", "s3", "eu-west-1")
    assert found.endpoint == "https://s3.eu-west-1.amazonaws.com"
    assert found.configured_endpoint is None


def test_a_dotted_bucket_is_path_style_over_https(aws: pytest.MonkeyPatch) -> None:
    assert objects("models.example")._target.url == (
        "https://s3.eu-west-1.amazonaws.com/models.example"
    )


def test_a_configured_endpoint_is_path_style(aws: pytest.MonkeyPatch) -> None:
    aws.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    found = objects()
    assert found._target.url == "http://127.0.0.1:9000/models-bucket"
    assert found.endpoint == found.configured_endpoint == "http://127.0.0.1:9000"


def test_the_config_file_is_read_as_a_client_reads_it(
    aws: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-south-1\ns3 =\n  addressing_style = path\n")
    aws.setenv("AWS_CONFIG_FILE", str(config))
    aws.delenv("AWS_DEFAULT_REGION")
    assert objects()._target.url == "https://s3.ap-south-1.amazonaws.com/models-bucket"


def test_the_request_is_signed_with_sigv4(aws: pytest.MonkeyPatch) -> None:
    sent = []
    found = objects()
    found._http.send = lambda request: sent.append(request) or Answer(200, b"data")  # type: ignore[method-assign]
    size, body = found.get("models/m/1/linear.json")
    assert (size, body.read()) == (4, b"data")
    [request] = sent
    assert request.url == "https://models-bucket.s3.eu-west-1.amazonaws.com/models/m/1/linear.json"
    authorization = request.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/s3/aws4_request" in authorization


@dataclass
class Answer:
    """Just what S3Objects reads from botocore's AWSResponse."""

    status_code: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers = {"content-length": str(len(self.content)), **self.headers}
        import io

        self.raw = io.BytesIO(self.content)


def answering(found: S3Objects, *answers: Answer | Exception) -> list[str]:
    calls: list[str] = []
    queue = list(answers)

    def send(key: str, target: object) -> Answer:
        calls.append(key)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    found._send = send  # type: ignore[method-assign]
    return calls


S3_ERROR = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
WRAPPED = (
    b"<ErrorResponse><Error><Code>SlowDown</Code><Message>easy</Message></Error></ErrorResponse>"
)


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (Answer(404, S3_ERROR), "NoSuchKey", "gone"),
        (Answer(400, WRAPPED), "SlowDown", "easy"),
        (Answer(403, b""), "403", "Forbidden"),
        (Answer(403, b"<not xml"), "403", "Forbidden"),
    ],
)
def test_an_error_answer_is_the_client_error_botocore_would_raise(
    aws: pytest.MonkeyPatch, answer: Answer, code: str, message: str
) -> None:
    found = objects(max_attempts=1)
    answering(found, answer)
    with pytest.raises(ClientError) as info:
        found.get("k")
    assert info.value.response["Error"] == {"Code": code, "Message": message}
    assert info.value.operation_name == "GetObject"


def test_a_transient_or_throttled_failure_is_retried(
    aws: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelapi.store.s3_objects.time.sleep", lambda _: None)
    found = objects(max_attempts=2)
    calls = answering(found, Answer(400, WRAPPED), Answer(200, b"ok"))
    assert found.get("k")[1].read() == b"ok"
    assert calls == ["k", "k"]
    calls = answering(found, EndpointConnectionError(endpoint_url="x"), Answer(200, b"ok"))
    assert found.get("k")[1].read() == b"ok"
    assert calls == ["k", "k"]
    calls = answering(found, Answer(503, b""), Answer(200, b"ok"))
    assert found.get("k")[1].read() == b"ok"
    assert calls == ["k", "k"]
    calls = answering(found, Answer(429, b""), Answer(200, b"ok"))  # throttled, with no code
    assert found.get("k")[1].read() == b"ok"
    assert calls == ["k", "k"]


def test_failures_past_the_attempts_or_not_transient_are_raised(
    aws: pytest.MonkeyPatch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelapi.store.s3_objects.time.sleep", lambda _: None)
    found = objects(max_attempts=2)
    calls = answering(found, Answer(500, b""), Answer(500, b""))
    with pytest.raises(ClientError, match=r"\(500\)"):
        found.get("k")
    assert len(calls) == 2
    calls = answering(found, Answer(404, S3_ERROR))
    with pytest.raises(ClientError, match="NoSuchKey"):
        found.get("k")
    assert len(calls) == 1


def test_no_credentials_is_botocores_error(aws: pytest.MonkeyPatch) -> None:
    aws.delenv("AWS_ACCESS_KEY_ID")
    aws.delenv("AWS_SECRET_ACCESS_KEY")
    aws.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(NoCredentialsError):
        objects(max_attempts=1).get("k")


def test_a_ca_bundle_and_a_proxy_are_taken_as_a_client_takes_them(
    aws: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    aws.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "requests.pem"))
    aws.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    aws.delenv("AWS_CA_BUNDLE", raising=False)
    aws.delenv("NO_PROXY", raising=False)
    aws.delenv("no_proxy", raising=False)
    found = objects()
    assert found._http._verify == str(tmp_path / "requests.pem")
    proxy = found._http._proxy_config.proxy_url_for(found._target.url)
    assert proxy == "http://proxy.example:3128"
    aws.setenv("AWS_CA_BUNDLE", str(tmp_path / "aws.pem"))  # the configuration wins
    aws.setattr("modelapi.store.s3_objects._sessions", [])
    assert objects()._http._verify == str(tmp_path / "aws.pem")


# A small S3 on 127.0.0.1: one bucket in eu-west-1 that checks each request's SigV4 signature
# and, as S3 does, answers a request signed for another region with a redirect to its own.

BUCKET = "models-bucket"
TOKEN = "session-token-from-lambda"


@dataclass
class Seen:
    """One request the fake S3 received: its raw path, signing region and headers."""

    path: str
    region: str
    headers: dict[str, str]


class FakeS3(http.server.ThreadingHTTPServer):
    """The bucket's objects, and how a request signed for the wrong region is answered."""

    def __init__(self, redirect: str = "moved") -> None:
        super().__init__(("127.0.0.1", 0), _FakeS3Handler)
        self.url = f"http://127.0.0.1:{self.server_port}"
        self.region = "eu-west-1"
        # moved: 301 PermanentRedirect naming the region in x-amz-bucket-region;
        # malformed: 400 AuthorizationHeaderMalformed naming it in the error's Region;
        # regionless: 301 naming none; loop: 301 to eu-west-1 whatever the signature;
        # bad: 301 naming something that is no region.
        self.redirect = redirect
        self.objects: dict[str, bytes] = {}
        self.seen: list[Seen] = []


def _error(code: str, message: str, extra: str = "") -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}"
        f"</Message>{extra}<RequestId>R1</RequestId><HostId>H1</HostId></Error>"
    ).encode()


class _FakeS3Handler(http.server.BaseHTTPRequestHandler):
    server: FakeS3

    def do_GET(self) -> None:
        server = self.server
        authorization = self.headers.get("Authorization", "")
        region = authorization.split("Credential=", 1)[-1].split("/")[2:3]
        server.seen.append(Seen(self.path, "".join(region), dict(self.headers)))
        moved = f"<Endpoint>{BUCKET}.s3.{server.region}.amazonaws.com</Endpoint>"
        if not _signed_correctly(self):
            self.answer(403, _error("SignatureDoesNotMatch", "bad signature"))
        elif server.redirect == "loop" or region != [server.region]:
            if server.redirect == "malformed":
                message = f"the region is wrong; expecting '{server.region}'"
                extra = f"<Region>{server.region}</Region>"
                self.answer(400, _error("AuthorizationHeaderMalformed", message, extra))
                return
            headers = {"regionless": {}, "bad": {"x-amz-bucket-region": "eu-west-1.evil.example"}}
            header = headers.get(server.redirect, {"x-amz-bucket-region": server.region})
            self.answer(301, _error("PermanentRedirect", "use the endpoint", moved), header)
        else:
            key = unquote(self.path.removeprefix(f"/{BUCKET}/"))
            if key in server.objects:
                self.answer(200, server.objects[key])
            else:
                self.answer(404, _error("NoSuchKey", "The specified key does not exist."))

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


def _signed_correctly(request: _FakeS3Handler) -> bool:
    """Check the signature as S3 does: over the path as received and the signed headers."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    fields = dict(
        part.strip().split("=", 1)
        for part in request.headers.get("Authorization", "")
        .removeprefix("AWS4-HMAC-SHA256 ")
        .split(",")
        if "=" in part
    )
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        return False
    access_key, _, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    headers = {name: request.headers[name] for name in signed if name in request.headers}
    remade = AWSRequest(method="GET", url=f"http://{request.headers['Host']}{request.path}")
    for name, value in headers.items():
        remade.headers[name] = value
    remade.context["timestamp"] = request.headers["X-Amz-Date"]
    credentials = Credentials(access_key, "secret", request.headers.get("X-Amz-Security-Token"))
    signer = S3SigV4Auth(credentials, service, region)
    canonical = signer.canonical_request(remade)
    expected = signer.signature(signer.string_to_sign(remade, canonical), remade)
    return bool(expected == fields["Signature"])


@pytest.fixture
def fake_s3(aws: pytest.MonkeyPatch) -> Iterator[FakeS3]:
    """The fake S3 as the configured endpoint, with credentials for us-east-1 and a token."""
    server = FakeS3()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    aws.setenv("AWS_ENDPOINT_URL_S3", server.url)
    aws.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.setenv("AWS_SESSION_TOKEN", TOKEN)
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("redirect", ["moved", "malformed"])
def test_a_bucket_in_another_region_is_read_there_and_remembered(
    fake_s3: FakeS3, redirect: str
) -> None:
    fake_s3.redirect = redirect
    fake_s3.objects = {"models/m/1/manifest.json": b"{}", "models/m/1/linear.json": b"[1.5]"}
    found = objects(BUCKET, max_attempts=1)  # the redirect is not one of the attempts
    size, body = found.get("models/m/1/manifest.json")
    assert (size, body.read()) == (2, b"{}")
    assert [seen.region for seen in fake_s3.seen] == ["us-east-1", "eu-west-1"]
    assert found._target == (f"{fake_s3.url}/{BUCKET}", "s3", "eu-west-1")
    assert found.get("models/m/1/linear.json")[1].read() == b"[1.5]"
    assert [seen.region for seen in fake_s3.seen[2:]] == ["eu-west-1"]


def test_a_missing_object_in_the_other_region_is_still_missing(fake_s3: FakeS3) -> None:
    with pytest.raises(ClientError, match="NoSuchKey"):
        objects(BUCKET).get("models/m/9/manifest.json")
    assert [seen.region for seen in fake_s3.seen] == ["us-east-1", "eu-west-1"]


@pytest.mark.parametrize("redirect", ["moved", "malformed", "regionless", "loop", "bad"])
def test_a_redirect_ends_as_it_ends_for_a_botocore_client(fake_s3: FakeS3, redirect: str) -> None:
    fake_s3.redirect = redirect
    fake_s3.objects = {"k": b"data"}

    def outcome(read: Callable[[], bytes]) -> tuple[object, list[str]]:
        fake_s3.seen.clear()
        try:
            result: object = read()
        except ClientError as exc:
            result = exc.response["Error"]["Code"]
        except InvalidRegionError as exc:
            result = type(exc).__name__
        return result, [seen.region for seen in fake_s3.seen]

    settings = Config(retries={"max_attempts": 3, "mode": "standard"})
    client = new_client(settings, fake_s3.url)
    expected = outcome(lambda: client.get_object(Bucket=BUCKET, Key="k")["Body"].read())
    assert outcome(lambda: objects(BUCKET, max_attempts=3).get("k")[1].read()) == expected
    # A redirect at most once per read, and only to a region that is a host label.
    assert (
        expected
        == {
            "moved": (b"data", ["us-east-1", "eu-west-1"]),
            "malformed": (b"data", ["us-east-1", "eu-west-1"]),
            "regionless": ("PermanentRedirect", ["us-east-1"]),
            "loop": ("PermanentRedirect", ["us-east-1", "eu-west-1"]),
            "bad": ("InvalidRegionError", ["us-east-1"]),
        }[redirect]
    )


@pytest.mark.parametrize(
    ("redirect", "reason"),
    [
        (
            "regionless",
            "S3 refused to read s3://models-bucket/models/m/aliases/production:"
            " PermanentRedirect use the endpoint",
        ),
        (
            "loop",
            "S3 refused to read s3://models-bucket/models/m/aliases/production:"
            " PermanentRedirect use the endpoint",
        ),
        (
            "bad",
            "S3 failed to read s3://models-bucket/models/m/aliases/production:"
            " Provided region_name 'eu-west-1.evil.example' doesn't match",
        ),
    ],
)
def test_a_store_reports_a_failed_redirect_as_a_store_error(
    fake_s3: FakeS3, redirect: str, reason: str
) -> None:
    fake_s3.redirect = redirect
    store = S3Store(f"s3://{BUCKET}/models")
    with pytest.raises(StoreError) as info:
        store.resolve_alias("m", "production")
    assert str(info.value).startswith(reason)


def test_the_session_token_is_signed_and_sent(fake_s3: FakeS3) -> None:
    fake_s3.region = "us-east-1"
    fake_s3.objects = {"k": b"data"}
    assert objects(BUCKET).get("k")[1].read() == b"data"
    [seen] = fake_s3.seen
    assert seen.headers["X-Amz-Security-Token"] == TOKEN
    assert "x-amz-security-token" in seen.headers["Authorization"]
    assert seen.headers["X-Amz-Content-SHA256"] == hashlib.sha256(b"").hexdigest()


def test_a_wrong_signature_is_refused_by_the_fake(fake_s3: FakeS3) -> None:
    fake_s3.region = "us-east-1"
    fake_s3.objects = {"k": b"data"}
    found = objects(BUCKET, max_attempts=1)
    found._credentials = Credentials("AKIDEXAMPLE", "another secret", TOKEN)
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        found.get("k")


def test_a_key_with_spaces_and_unicode_is_sent_as_a_client_sends_it(fake_s3: FakeS3) -> None:
    key = "my models/ünï+code/a b~c.json"
    fake_s3.objects = {key: b"data"}
    assert objects(BUCKET).get(key)[1].read() == b"data"
    quoted = "/models-bucket/my%20models/%C3%BCn%C3%AF%2Bcode/a%20b~c.json"
    assert [seen.path for seen in fake_s3.seen] == [quoted, quoted]
