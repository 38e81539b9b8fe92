"""The Lambda handler reads its model from S3 once per execution environment, and survives S3.

Every test runs for both ways the store reads objects: with the standard library (the
credentials in the environment, as Lambda gives them) and through botocore.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from pathlib import Path

import pytest

from modelapi.aws_lambda import LambdaHandler
from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.store import open_store
from modelapi.store.s3 import S3Store
from tests.adversarial.s3_faults import fault_proxy
from tests.aws_lambda.events import load_event
from tests.conftest import use_s3_read_path

PREDICT_EVENT = "http_v2_default_predict.json"

pytestmark = pytest.mark.usefixtures("s3_read_path")


@pytest.fixture
def s3_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the S3 store's reads and writes by operation, whichever way it sends them."""
    from botocore.client import BaseClient

    calls: Counter[str] = Counter()
    original = BaseClient._make_api_call
    original_get = S3Store._get
    original_list = S3Store._list

    def counting(self: BaseClient, operation: str, params: dict[str, object]) -> object:
        if operation not in ("GetObject", "ListObjectsV2"):  # counted below
            calls[operation] += 1
        return original(self, operation, params)

    def counting_get(self: S3Store, key: str, **options: object) -> bytes:
        calls["GetObject"] += 1
        return original_get(self, key, **options)  # type: ignore[arg-type]

    def counting_list(self: S3Store, prefix: str) -> list[str]:
        calls["ListObjectsV2"] += 1
        return original_list(self, prefix)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    monkeypatch.setattr(S3Store, "_get", counting_get)
    monkeypatch.setattr(S3Store, "_list", counting_list)
    return calls


def push(bundle: Bundle, store_uri: str, alias: str = "production") -> int:
    store = open_store(store_uri)
    version = store.put(bundle).version
    store.set_alias(bundle.manifest.name, alias, version)
    return version


def make_handler(store_uri: str, **settings: object) -> LambdaHandler:
    base = Settings(model="diabetes@production", store=store_uri)
    return LambdaHandler(base.replace(**settings), embedded_model=Path("/nonexistent/bundle"))


def invoke(handler: LambdaHandler, file: str = PREDICT_EVENT) -> dict[str, object]:
    answer = handler.handle(load_event(file))
    assert isinstance(answer, dict)
    return answer


def reason(answer: dict[str, object]) -> str:
    body = json.loads(str(answer["body"]))
    assert body["error"] == "model_unavailable"
    return str(body["details"][0]["reason"])


def test_two_invocations_read_the_model_once(
    s3_store_uri: str, builtin_bundle: Bundle, s3_calls: Counter[str]
) -> None:
    push(builtin_bundle, s3_store_uri)
    handler = make_handler(s3_store_uri)
    first = invoke(handler)
    assert first["statusCode"] == 200
    assert first["headers"]["x-model-version"] == "diabetes:1"  # type: ignore[index]
    after_first = s3_calls.copy()
    assert after_first["GetObject"] >= 2  # the alias, the manifest, the artifact
    second = invoke(handler)
    assert second["statusCode"] == 200
    assert second["body"] == first["body"]
    assert s3_calls == after_first


def test_missing_bucket_is_503_then_recovers(
    aws_env: str, builtin_bundle: Bundle, s3_calls: Counter[str]
) -> None:
    import boto3

    bucket = f"modelapi-late-{time.monotonic_ns() % 10**9}"
    handler = make_handler(f"s3://{bucket}/models")
    answer = invoke(handler)
    assert answer["statusCode"] == 503
    assert bucket in reason(answer)
    boto3.client("s3").create_bucket(Bucket=bucket)
    push(builtin_bundle, f"s3://{bucket}/models")
    assert invoke(handler)["statusCode"] == 200


def test_missing_model_is_503_then_recovers(s3_store_uri: str, builtin_bundle: Bundle) -> None:
    handler = make_handler(s3_store_uri)
    health = invoke(handler, "rest_v1_health.json")
    answer = invoke(handler)
    assert health["statusCode"] == 503
    assert answer["statusCode"] == 503
    assert "production" in reason(answer)
    push(builtin_bundle, s3_store_uri)
    assert invoke(handler)["statusCode"] == 200
    assert invoke(handler, "rest_v1_health.json")["statusCode"] == 200


def test_access_denied_is_503_then_recovers(
    s3_bucket: str, s3_store_uri: str, builtin_bundle: Bundle
) -> None:
    import boto3

    push(builtin_bundle, s3_store_uri)
    statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject"}
    policy = {
        "Version": "2012-10-17",
        "Statement": [{**statement, "Resource": f"arn:aws:s3:::{s3_bucket}/*"}],
    }
    admin = boto3.client("s3")
    admin.put_bucket_policy(Bucket=s3_bucket, Policy=json.dumps(policy))
    handler = make_handler(s3_store_uri)
    answer = invoke(handler)
    assert answer["statusCode"] == 503
    assert "access denied" in reason(answer)
    assert "to read s3://" in reason(answer)
    admin.delete_bucket_policy(Bucket=s3_bucket)
    assert invoke(handler)["statusCode"] == 200


@pytest.mark.parametrize("redirect", ["moved", "malformed"])
def test_a_bucket_in_another_region_is_served_then_a_redirect_loop_is_503(
    builtin_bundle: Bundle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redirect: str,
    s3_read_path: str,
) -> None:
    from modelapi.store.local import LocalStore
    from tests.fake_s3 import BUCKET, SECRET, fake_s3

    local = LocalStore(tmp_path / "models")
    local.put(builtin_bundle)
    local.set_alias("diabetes", "production", 1)
    with fake_s3(redirect) as s3:  # the bucket is in eu-west-1, the function in us-east-1
        for file in local.root.rglob("*"):
            if file.is_file():
                s3.objects[f"models/{file.relative_to(local.root).as_posix()}"] = file.read_bytes()
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        use_s3_read_path(s3_read_path, monkeypatch, tmp_path, ("ASIAEXAMPLE", SECRET, "token"))
        assert invoke(make_handler(f"s3://{BUCKET}/models"))["statusCode"] == 200
        assert {seen.region for seen in s3.seen} == {"us-east-1", "eu-west-1"}
        s3.redirect = "loop"
        answer = invoke(make_handler(f"s3://{BUCKET}/models"))
    assert answer["statusCode"] == 503
    assert "PermanentRedirect" in reason(answer)


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (yet)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_endpoint_down_is_503_then_recovers(
    s3_store_uri: str,
    builtin_bundle: Bundle,
    free_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.server import ThreadedMotoServer

    push(builtin_bundle, s3_store_uri)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port}")
    handler = make_handler(s3_store_uri)
    started = time.monotonic()
    answer = invoke(handler)
    assert answer["statusCode"] == 503
    assert "cannot reach" in reason(answer)
    assert time.monotonic() - started < 60  # bounded retries, not the default minutes
    # The endpoint comes back (moto servers in one process share their buckets).
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port, verbose=False)
    server.start()
    try:
        assert invoke(handler)["statusCode"] == 200
    finally:
        server.stop()


def test_ping_needs_no_model(s3_store_uri: str) -> None:
    handler = make_handler(s3_store_uri)
    assert invoke(handler, "rest_v1_ping.json")["statusCode"] == 200


def test_alias_move_is_served_after_the_reload_interval(
    s3_store_uri: str, builtin_bundle: Bundle
) -> None:
    push(builtin_bundle, s3_store_uri)
    handler = make_handler(s3_store_uri, reload_interval_s=0.05)
    assert invoke(handler)["headers"]["x-model-version"] == "diabetes:1"  # type: ignore[index]
    push(builtin_bundle, s3_store_uri)  # version 2 becomes production
    deadline = time.monotonic() + 10
    while served(handler) != "diabetes:2" and time.monotonic() < deadline:
        time.sleep(0.06)
    assert served(handler) == "diabetes:2"


def served(handler: LambdaHandler) -> object:
    headers = invoke(handler)["headers"]
    assert isinstance(headers, dict)
    return headers["x-model-version"]


def test_a_reload_from_a_dripping_s3_never_holds_an_answer(
    s3_store_uri: str,
    builtin_bundle: Bundle,
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    push(builtin_bundle, s3_store_uri)
    with fault_proxy(aws_env) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        handler = make_handler(s3_store_uri, reload_interval_s=0.05, store_deadline_s=3)
        assert served(handler) == "diabetes:1"
        proxy.mode = "drip"  # the reload's read of the alias gets a byte every 2 s
        deadline = time.monotonic() + 10
        while proxy.dripping == 0:
            assert time.monotonic() < deadline, "no reload started"
            served(handler)
        for _ in range(20):
            # Answered with the loaded version at once: not after the drip's 3 s deadline.
            started = time.monotonic()
            assert served(handler) == "diabetes:1"
            assert time.monotonic() - started < 1
        deadline = time.monotonic() + 15
        while "within its 3 s deadline" not in caplog.text:  # the drip is abandoned
            assert time.monotonic() < deadline, "the dripping read was never abandoned"
            time.sleep(0.05)
        proxy.mode = "pass"
        push(builtin_bundle, s3_store_uri)
        deadline = time.monotonic() + 20
        while served(handler) != "diabetes:2":
            assert time.monotonic() < deadline, "the promoted version was never served"
            time.sleep(0.05)
