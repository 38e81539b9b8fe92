"""S3Objects: the endpoint, signing and errors a botocore S3 client would have, without one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from modelapi.store.s3_objects import S3Objects


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
    assert found._url == "https://models-bucket.s3.eu-west-1.amazonaws.com"
    assert (found._signing_name, found._signing_region) == ("s3", "eu-west-1")
    assert found.endpoint == "https://s3.eu-west-1.amazonaws.com"
    assert found.configured_endpoint is None


def test_a_dotted_bucket_is_path_style_over_https(aws: pytest.MonkeyPatch) -> None:
    assert objects("models.example")._url == "https://s3.eu-west-1.amazonaws.com/models.example"


def test_a_configured_endpoint_is_path_style(aws: pytest.MonkeyPatch) -> None:
    aws.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    found = objects()
    assert found._url == "http://127.0.0.1:9000/models-bucket"
    assert found.endpoint == found.configured_endpoint == "http://127.0.0.1:9000"


def test_the_config_file_is_read_as_a_client_reads_it(
    aws: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-south-1\ns3 =\n  addressing_style = path\n")
    aws.setenv("AWS_CONFIG_FILE", str(config))
    aws.delenv("AWS_DEFAULT_REGION")
    assert objects()._url == "https://s3.ap-south-1.amazonaws.com/models-bucket"


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

    def send(key: str) -> Answer:
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
