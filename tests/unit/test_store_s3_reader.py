"""Reading S3 objects without botocore, and with it: the same answers, errors and limits.

When the credentials are in the environment (a Lambda function's case) the store reads with
the standard library (`s3_reader`), else through a botocore client (`s3_client`). Each test
with the `fake` fixture runs both ways against a small S3 on 127.0.0.1 that checks every
signature (tests/fake_s3.py) and must see the same outcome, down to the error message.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelapi.errors import BundleError, BundleNotFound, ConfigError, StoreError
from modelapi.store.s3 import S3Store
from modelapi.store.s3_reader import ReadSettings, S3Reader, settings_from_environment
from modelapi.store.sigv4 import Credentials
from modelapi.store.transport import DeadlinePassed, Transport, Unreachable, host_header
from tests.adversarial.s3_faults import fault_proxy
from tests.conftest import S3_READ_PATHS, use_s3_read_path
from tests.fake_s3 import BUCKET, SECRET, FakeS3, error_body, fake_s3

TOKEN = "session-token-from-lambda"
URI = f"s3://{BUCKET}/models"


# -- when the standard library reads -----------------------------------------------------------


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """Lambda's environment: credentials, a token and a region; no AWS files."""
    return {
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "AWS_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }


def test_lambdas_environment_is_read_with_the_standard_library(environ: dict[str, str]) -> None:
    assert settings_from_environment(environ) == ReadSettings(
        Credentials("ASIAEXAMPLE", "secret", "token"), "eu-west-1", None
    )
    environ.update(
        AWS_DEFAULT_REGION="ap-south-1",  # botocore's variable comes first, as botocore reads
        AWS_ENDPOINT_URL="http://other:1",
        AWS_ENDPOINT_URL_S3="http://127.0.0.1:9000",
        REQUESTS_CA_BUNDLE="/requests.pem",
        AWS_S3_US_EAST_1_REGIONAL_ENDPOINT="regional",
    )
    found = settings_from_environment(environ)
    assert found is not None
    assert (found.region, found.endpoint, found.ca_bundle) == (
        "ap-south-1",
        "http://127.0.0.1:9000",
        "/requests.pem",
    )
    assert found.regional_us_east_1
    environ.update(AWS_CA_BUNDLE="/aws.pem", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true")
    found = settings_from_environment(environ)
    assert found is not None
    assert (found.endpoint, found.ca_bundle) == (None, "/aws.pem")
    del environ["AWS_SESSION_TOKEN"], environ["AWS_REGION"], environ["AWS_DEFAULT_REGION"]
    found = settings_from_environment(environ)
    assert found is not None
    assert (found.credentials.token, found.region) == (None, "us-east-1")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"AWS_ACCESS_KEY_ID": ""}, "no access key"),
        ({"AWS_SECRET_ACCESS_KEY": ""}, "no secret key"),
        ({"AWS_PROFILE": "dev"}, "a profile, which wins over the environment's keys"),
        ({"AWS_DEFAULT_PROFILE": "dev"}, "a profile"),
        ({"AWS_CONFIG_FILE": "config"}, "a config file"),
        ({"AWS_SHARED_CREDENTIALS_FILE": "credentials"}, "a credentials file"),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "a proxy"),
        ({"https_proxy": "http://proxy:3128"}, "a proxy"),
        ({"AWS_ENDPOINT_URL_S3": "http://minio:9000", "http_proxy": "http://p:1"}, "a proxy"),
        ({"AWS_USE_FIPS_ENDPOINT": "true"}, "FIPS endpoints"),
        ({"AWS_USE_DUALSTACK_ENDPOINT": "TRUE"}, "dual-stack endpoints"),
        ({"AWS_REGION": "us-iso-east-1"}, "a partition this reader does not address"),
        ({"AWS_REGION": "eu_west_1"}, "no region"),
    ],
)
def test_botocore_reads_whatever_the_environment_alone_does_not_settle(
    environ: dict[str, str], tmp_path: Path, change: dict[str, str], why: str
) -> None:
    for name, value in change.items():
        if name.endswith("_FILE"):
            (tmp_path / value).write_text("[default]\n")
            value = str(tmp_path / value)
        environ[name] = value
    assert settings_from_environment(environ) is None, why


def test_an_endpoint_that_is_no_url_is_refused_naming_the_variable(
    environ: dict[str, str],
) -> None:
    environ["AWS_ENDPOINT_URL_S3"] = "minio:9000"
    with pytest.raises(ConfigError, match=r"AWS_ENDPOINT_URL_S3 'minio:9000' is not an endpoint"):
        settings_from_environment(environ)


def test_a_read_with_environment_credentials_imports_no_botocore(
    s3_store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelapi.store.builtin import BUILTIN_STORE

    writer = S3Store(s3_store_uri)
    writer.put(BUILTIN_STORE.read("diabetes", 1))
    writer.set_alias("diabetes", "production", 1)
    code = (
        "import sys\nfrom modelapi.store import load_bundle, open_store, parse_ref\n"
        f"bundle = load_bundle(parse_ref('diabetes@production'), open_store({s3_store_uri!r}),"
        " serving_only=True)\n"
        "print(bundle.manifest.model_id, sorted(m for m in sys.modules if 'boto' in m))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["diabetes:1", "[]"]


# -- both ways, against a fake S3 that checks signatures -------------------------------------


@pytest.fixture(params=S3_READ_PATHS)
def fake(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[FakeS3]:
    """The fake S3 as the configured endpoint, read one way or the other; us-east-1, a token."""
    with fake_s3() as server:
        for name, value in {
            "AWS_ENDPOINT_URL_S3": server.url,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        use_s3_read_path(request.param, monkeypatch, tmp_path, ("AKIDEXAMPLE", SECRET, TOKEN))
        server.read_path = request.param
        yield server


def _store(fake: FakeS3, **options: float) -> S3Store:
    store = S3Store(URI, **options)  # type: ignore[arg-type]
    assert store.endpoint == fake.url
    return store


def _outcome(read: object) -> object:
    """What a read gives: its bytes, or its error's type and message."""
    assert callable(read)
    try:
        return read()
    except (StoreError, BundleError) as exc:
        return type(exc).__name__, str(exc)


MANIFEST_URL = "s3://models-bucket/models/m/1/manifest.json"
WRAPPED = (
    b"<ErrorResponse><Error><Code>Nope</Code><Message>a &amp; b</Message></Error></ErrorResponse>"
)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (
            (404, error_body("NoSuchKey", "gone")),
            ("BundleNotFound", "m:1 is not in s3://models-bucket/models"),
        ),
        (
            (403, b""),
            (
                "StoreError",
                f"access denied (403) to read {MANIFEST_URL}: the credentials need s3:GetObject"
                " on s3://models-bucket/models/* (without s3:ListBucket, S3 also answers a"
                " missing object with access denied)",
            ),
        ),
        ((409, b"<not xml"), ("StoreError", f"S3 refused to read {MANIFEST_URL}: 409 Conflict")),
        ((400, WRAPPED), ("StoreError", f"S3 refused to read {MANIFEST_URL}: Nope a & b")),
    ],
)
def test_an_error_answer_reads_as_it_does_through_botocore(
    fake: FakeS3, answer: tuple[int, bytes], outcome: object
) -> None:
    fake.region = "us-east-1"
    fake.canned = [answer]
    assert _outcome(lambda: _store(fake, max_attempts=1).read_manifest("m", 1)) == outcome


@pytest.mark.parametrize(
    "answer",
    [(503, b""), (429, b""), (400, error_body("SlowDown", "easy"))],
    ids=["5xx", "429", "throttling code"],
)
def test_a_transient_or_throttled_failure_is_retried(
    fake: FakeS3, answer: tuple[int, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelapi.store.s3_reader._random", lambda: 0.01)  # a short back-off
    fake.region = "us-east-1"
    fake.objects = {"models/m/aliases/production": b"1\n"}
    fake.canned = [answer]
    assert _store(fake).resolve_alias("m", "production") == 1
    assert len(fake.seen) == 2
    fake.canned = [answer, answer]
    with pytest.raises(StoreError, match="S3 refused to read"):
        _store(fake).resolve_alias("m", "production")
    assert len(fake.seen) == 4  # two attempts, as configured


@pytest.mark.parametrize(
    ("redirect", "outcome", "regions"),
    [
        ("moved", 1, ["us-east-1", "eu-west-1"]),
        ("malformed", 1, ["us-east-1", "eu-west-1"]),
        (
            "regionless",
            ("StoreError", "S3 refused to read s3://models-bucket/models/m/aliases/production:"
                           " PermanentRedirect use the endpoint"),
            ["us-east-1"],
        ),
        (
            "loop",
            ("StoreError", "S3 refused to read s3://models-bucket/models/m/aliases/production:"
                           " PermanentRedirect use the endpoint"),
            ["us-east-1", "eu-west-1"],
        ),
        (
            "bad",
            ("StoreError", "S3 failed to read s3://models-bucket/models/m/aliases/production:"
                           " Provided region_name 'eu-west-1.evil.example' doesn't match a"
                           " supported format."),
            ["us-east-1"],
        ),
    ],
)  # fmt: skip
def test_a_redirect_ends_as_it_ends_for_a_botocore_client(
    fake: FakeS3, redirect: str, outcome: object, regions: list[str]
) -> None:
    # A redirect at most once per read, and only to a region that is a host label.
    fake.redirect = redirect
    fake.objects = {"models/m/aliases/production": b"1\n"}
    store = _store(fake, max_attempts=3)  # the redirect is not one of the attempts
    assert _outcome(lambda: store.resolve_alias("m", "production")) == outcome
    assert [seen.region for seen in fake.seen] == regions


def test_a_bucket_in_another_region_is_read_there_and_remembered(fake: FakeS3) -> None:
    fake.objects = {"models/m/aliases/production": b"1\n", "models/m/aliases/staging": b"2\n"}
    store = _store(fake, max_attempts=1)
    assert store.resolve_alias("m", "production") == 1
    assert store.resolve_alias("m", "staging") == 2
    assert [seen.region for seen in fake.seen] == ["us-east-1", "eu-west-1", "eu-west-1"]
    with pytest.raises(BundleNotFound, match="m:9 is not in"):
        store.read_manifest("m", 9)  # still missing there


def test_the_session_token_is_signed_and_sent(fake: FakeS3) -> None:
    fake.region = "us-east-1"
    fake.objects = {"models/m/aliases/production": b"1\n"}
    assert _store(fake).resolve_alias("m", "production") == 1
    [seen] = fake.seen
    assert seen.headers["X-Amz-Security-Token"] == TOKEN
    assert "x-amz-security-token" in seen.headers["Authorization"]


def test_a_wrong_secret_is_refused_by_the_fake(
    fake: FakeS3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake.region = "us-east-1"
    credentials = ("AKIDEXAMPLE", "another secret", TOKEN)
    use_s3_read_path(fake.read_path, monkeypatch, tmp_path, credentials)
    with pytest.raises(StoreError, match=r"access denied \(SignatureDoesNotMatch\)"):
        _store(fake, max_attempts=1).resolve_alias("m", "production")


def test_a_key_with_spaces_and_unicode_is_sent_as_a_client_sends_it(fake: FakeS3) -> None:
    fake.region = "us-east-1"
    key = "my models/ünï+code/a b~c.json"
    fake.objects = {key: b"data"}
    store = _store(fake)
    assert store._get(key, missing=BundleNotFound("k"), max_bytes=10) == b"data"
    assert [seen.path for seen in fake.seen] == [
        "/models-bucket/my%20models/%C3%BCn%C3%AF%2Bcode/a%20b~c.json"
    ]


def test_reads_share_one_kept_alive_connection(fake: FakeS3) -> None:
    fake.region = "us-east-1"
    fake.objects = {f"models/m/aliases/a{i}": b"1\n" for i in range(3)}
    store = _store(fake)
    assert [store.resolve_alias("m", f"a{i}") for i in range(3)] == [1, 1, 1]
    assert fake.connections == 1


def test_a_kept_connection_the_server_closed_is_replaced_at_once(fake: FakeS3) -> None:
    fake.region = "us-east-1"
    fake.objects = {"models/m/aliases/production": b"1\n", "models/m/aliases/staging": b"2\n"}
    fake.drop_idle = True
    store = _store(fake, max_attempts=1)  # so no retry can hide the replacement
    assert store.resolve_alias("m", "production") == 1
    assert store.resolve_alias("m", "staging") == 2
    assert fake.connections == 2


# -- the deadline and the bound, both ways ---------------------------------------------------


def test_a_dripping_answer_is_abandoned_at_the_deadline(
    fake: FakeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.region = "us-east-1"
    fake.objects = {"models/m/aliases/production": b"1\n"}
    with fault_proxy(fake.url) as proxy:
        proxy.drip_interval_s = 0.1  # well inside the read timeout: only a deadline ends it
        proxy.mode = "drip"
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        store = S3Store(URI, read_timeout_s=1, max_attempts=1, read_deadline_s=1.5)
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"did not finish a read of .* within its 1.5 s"):
            store.resolve_alias("m", "production")
        assert time.monotonic() - started < 10  # abandoned, not read to the end (60 s)
        assert proxy.dripping in (0, 1)  # the proxy notices at its next byte


def test_an_object_larger_than_expected_is_refused(
    fake: FakeS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.region = "us-east-1"
    fake.objects = {"models/m/aliases/production": b"1" * 65}
    with pytest.raises(BundleError, match=r"^production: size 65 bytes, limit 64$"):
        _store(fake).resolve_alias("m", "production")
    with fault_proxy(fake.url) as proxy:
        proxy.mode = "flood"
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)
        with pytest.raises(BundleError, match=r"^production: size over 64 bytes, limit 64$"):
            S3Store(URI).resolve_alias("m", "production")
        assert proxy.flooded < proxy.flood_bytes  # the rest was never read


# -- the transport ---------------------------------------------------------------------------


def test_a_declared_size_over_the_bound_is_refused_before_the_body_is_read(
    fake: FakeS3,
) -> None:
    fake.region = "us-east-1"
    # A gibibyte is declared and nothing sent: reading the body would wait out the timeouts.
    fake.canned = [(200, b"", {"Content-Length": str(2**30)})]
    store = _store(fake, read_timeout_s=30, max_attempts=1)
    with pytest.raises(BundleError, match=r"^production: size 1073741824 bytes, limit 64$"):
        store.resolve_alias("m", "production")


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


def test_the_transport_names_each_failure_as_botocore_does() -> None:
    transport = Transport(connect_timeout_s=1, read_timeout_s=1)

    def kind(url: str) -> str:
        with pytest.raises(Unreachable) as info:
            transport.request("GET", url, {}, deadline=time.monotonic() + 5, max_bytes=1000)
        return info.value.kind

    with fake_s3() as server, fault_proxy(server.url) as proxy:
        url = f"{proxy.url}/{BUCKET}/k"
        proxy.mode = "partial"
        assert kind(url) == "ResponseStreamingError"
        proxy.mode = "garbage"
        assert kind(url) == "ConnectionClosedError"
        proxy.mode = "silent"
        assert kind(url) == "ReadTimeoutError"
    assert kind(f"http://127.0.0.1:{_closed_port()}/k") == "EndpointConnectionError"
    with pytest.raises(DeadlinePassed):
        transport.request("GET", url, {}, deadline=time.monotonic() - 1, max_bytes=1)
    with pytest.raises(ValueError, match="must start with http"):
        transport.request("GET", "ftp://x/k", {}, deadline=time.monotonic() + 1, max_bytes=1)
    transport.close()


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 200 OK\r\nContent-Ty", b"HTTP/1.1 200 O", b"HTTP/1.0 200 OK\r\n\r\n1\n"],
    ids=["cut in the headers", "cut in the status line", "no length"],
)
def test_an_answer_of_unknown_length_is_not_taken_for_a_whole_object(answer: bytes) -> None:
    # http.client reads a head cut short as a whole one: a 200 whose body could be any part
    # of the object (an alias "12" read as "1") is refused instead.
    with socket.create_server(("127.0.0.1", 0)) as server:

        def answer_once() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(answer)

        thread = threading.Thread(target=answer_once, daemon=True)
        thread.start()
        transport = Transport(connect_timeout_s=1, read_timeout_s=1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/k"
        with pytest.raises(Unreachable) as info:
            transport.request("GET", url, {}, deadline=time.monotonic() + 5, max_bytes=10)
        assert info.value.kind == "ResponseStreamingError"
        thread.join(5)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    done = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {done.stderr[-300:]!r}")
    return cert, key


@pytest.fixture
def tls_fake(certificate: tuple[Path, Path]) -> Iterator[FakeS3]:
    """The fake S3 over TLS, with the certificate above; us-east-1."""
    import ssl

    cert, key = certificate
    with fake_s3() as server:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.region = "us-east-1"
        server.objects = {"models/m/aliases/production": b"1\n"}
        yield server


def test_tls_is_verified_against_the_ca_bundle_the_environment_names(
    tls_fake: FakeS3, certificate: tuple[Path, Path]
) -> None:
    https = tls_fake.url.replace("http://", "https://")
    cert = str(certificate[0])
    settings = ReadSettings(
        Credentials("AKIDEXAMPLE", SECRET, None), "us-east-1", https, ca_bundle=cert
    )
    key = "models/m/aliases/production"
    reader = S3Reader(BUCKET, settings, connect_timeout_s=1, read_timeout_s=1, max_attempts=1)
    assert reader.get(key, max_bytes=64, deadline_s=5) == b"1\n"
    reader.close()
    for ca_bundle, kind in [(None, "SSLError")]:
        untrusted = S3Reader(
            BUCKET, settings._replace(ca_bundle=ca_bundle), connect_timeout_s=1,
            read_timeout_s=1, max_attempts=1,
        )  # fmt: skip
        with pytest.raises(Unreachable) as info:
            untrusted.get(key, max_bytes=64, deadline_s=5)
        assert info.value.kind == kind
    missing = S3Reader(
        BUCKET, settings._replace(ca_bundle=cert + ".gone"), connect_timeout_s=1,
        read_timeout_s=1, max_attempts=1,
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"the CA bundle .* cannot be read .*AWS_CA_BUNDLE"):
        missing.get(key, max_bytes=64, deadline_s=5)


@pytest.mark.parametrize("read_path", S3_READ_PATHS)
def test_https_on_its_default_port_is_signed_for_the_host_without_it(
    tls_fake: FakeS3,
    certificate: tuple[Path, Path],
    read_path: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The endpoint says port 443; connections to it are taken to the fake's own port. The
    # signature covers "Host: 127.0.0.1", and the fake checks it over the Host it receives.
    connect = socket.create_connection

    def to_the_fake(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        host, port = address
        return connect((host, tls_fake.server_port if port == 443 else port), *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "create_connection", to_the_fake)
    for name, value in {
        "AWS_ENDPOINT_URL_S3": "https://127.0.0.1",
        "AWS_CA_BUNDLE": str(certificate[0]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    use_s3_read_path(read_path, monkeypatch, tmp_path, ("AKIDEXAMPLE", SECRET, TOKEN))
    store = S3Store(URI, max_attempts=1)
    assert store.read_path == read_path
    assert store.resolve_alias("m", "production") == 1
    assert [seen.headers["Host"] for seen in tls_fake.seen] == ["127.0.0.1"]


def test_the_host_header_leaves_out_the_schemes_default_port() -> None:
    assert host_header("https", "s3.amazonaws.com", 443) == "s3.amazonaws.com"
    assert host_header("http", "127.0.0.1", 80) == "127.0.0.1"
    assert host_header("https", "minio", 9000) == "minio:9000"
    assert host_header("http", "::1", 443) == "[::1]:443"
