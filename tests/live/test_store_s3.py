"""The store contract, run against both stores (a local folder and S3 on a moto server), then
the S3 faults: missing bucket or key, access denied, an endpoint that is down or silent.

Every test with the `store` fixture runs three times, so the local store and the S3 store with
each of its two ways of reading (the standard library, botocore) are held to the same
behaviour; tamper helpers reach past the store to its raw files or objects. The S3 faults run
for both ways of reading too, and moto checks the signatures of the standard library's reads.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import msgspec
import pytest

from modelapi.bundle import MANIFEST, Bundle, artifact_entry
from modelapi.errors import BundleError, BundleNotFound, ConfigError, StoreError
from modelapi.store import ModelStore, open_store, parse_ref
from modelapi.store.copy import copy_model
from modelapi.store.local import LocalStore
from modelapi.store.s3 import S3Store
from tests.conftest import S3_READ_PATHS, use_s3_read_path


def _bundle(builtin: Bundle, name: str = "m", extra: bytes = b"<html>report</html>") -> Bundle:
    files = {**builtin.files, "report.html": extra}
    artifacts = {file: artifact_entry(data) for file, data in files.items()}
    manifest = msgspec.structs.replace(builtin.manifest, name=name, artifacts=artifacts)
    return Bundle(manifest, files)


@pytest.fixture
def bundle(builtin_bundle: Bundle) -> Bundle:
    return _bundle(builtin_bundle)


@pytest.fixture(params=["local", *(f"s3 {path}" for path in S3_READ_PATHS)])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ModelStore:
    if request.param == "local":
        return LocalStore(tmp_path / "models")
    uri = request.getfixturevalue("s3_store_uri")
    path = request.param.removeprefix("s3 ")
    use_s3_read_path(path, monkeypatch, tmp_path)
    store = S3Store(uri)
    assert store.read_path == path
    return store


def _write_raw(store: ModelStore, key: str, data: bytes) -> None:
    """Write a file or object under the store's root, bypassing the store."""
    if isinstance(store, LocalStore):
        path = store.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        assert isinstance(store, S3Store)
        boto3.client("s3").put_object(Bucket=store.bucket, Key=f"{store.prefix}/{key}", Body=data)


def _read_raw(store: ModelStore, key: str) -> bytes:
    if isinstance(store, LocalStore):
        return (store.root / key).read_bytes()
    assert isinstance(store, S3Store)
    response = boto3.client("s3").get_object(Bucket=store.bucket, Key=f"{store.prefix}/{key}")
    data: bytes = response["Body"].read()
    return data


def _leave_unfinished(store: ModelStore, name: str, version: int) -> None:
    """What a write killed before its manifest leaves behind: a claim and some artifacts."""
    if isinstance(store, LocalStore):
        (store.root / name / str(version)).mkdir(parents=True)
    else:
        _write_raw(store, f"{name}/{version}/.claim", b"{}")
    _write_raw(store, f"{name}/{version}/linear.json", b"{}")


# -- the contract, for both stores ---------------------------------------------------------


def test_an_empty_store_holds_nothing(store: ModelStore) -> None:
    assert store.names() == []
    assert store.versions("m") == []
    assert store.aliases("m") == {}
    assert store.resolve_alias("m", "production") is None
    with pytest.raises(BundleNotFound, match=r"m:1 is not in"):
        store.read("m", 1)


def test_puts_number_versions_and_read_back_verified(store: ModelStore, bundle: Bundle) -> None:
    stored = [store.put(bundle).version for _ in range(3)]
    assert stored == [1, 2, 3]
    assert store.names() == ["m"]
    assert store.versions("m") == [1, 2, 3]
    again = store.read("m", 2)
    assert again.files == bundle.files
    assert again.manifest == msgspec.structs.replace(bundle.manifest, version=2)
    assert store.read_manifest("m", 2) == again.manifest
    assert set(store.read("m", 2, serving_only=True).files) == {bundle.manifest.serving}


def test_each_name_has_its_own_numbers(store: ModelStore, builtin_bundle: Bundle) -> None:
    store.put(_bundle(builtin_bundle, "a"))
    store.put(_bundle(builtin_bundle, "a"))
    assert store.put(_bundle(builtin_bundle, "b")).version == 1
    assert store.names() == ["a", "b"]


def test_an_exact_version_is_created_once_and_never_overwritten(
    store: ModelStore, builtin_bundle: Bundle
) -> None:
    assert store.put(_bundle(builtin_bundle), version=7).version == 7
    assert store.versions("m") == [7]
    assert store.put(_bundle(builtin_bundle)).version == 8
    with pytest.raises(StoreError, match=r"m:7 exists in .*never overwritten"):
        store.put(_bundle(builtin_bundle, extra=b"other bytes"), version=7)
    assert store.read("m", 7).files["report.html"] == b"<html>report</html>"


def test_a_partial_bundle_is_not_stored(store: ModelStore, bundle: Bundle) -> None:
    serving_only = Bundle(bundle.manifest, {"linear.json": bundle.files["linear.json"]})
    with pytest.raises(BundleError, match=r"report\.html were not read"):
        store.put(serving_only)
    tampered = Bundle(bundle.manifest, {**bundle.files, "report.html": b"<html>Report</html>"})
    with pytest.raises(BundleError, match=r"report\.html: sha256 does not match"):
        store.put(tampered)
    assert store.names() == []


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", ""])
def test_a_bad_model_name_is_refused(store: ModelStore, bundle: Bundle, name: str) -> None:
    renamed = Bundle(msgspec.structs.replace(bundle.manifest, name=name), bundle.files)
    with pytest.raises(ConfigError, match="model name"):
        store.put(renamed)
    with pytest.raises(ConfigError, match="model name"):
        store.versions(name)


def test_a_claimed_but_unfinished_version_is_invisible(store: ModelStore, bundle: Bundle) -> None:
    store.put(bundle)
    _leave_unfinished(store, "m", 2)
    assert store.versions("m") == [1]
    assert store.names() == ["m"]
    with pytest.raises(BundleNotFound, match=r"m:2 is not in"):
        store.read("m", 2)
    with pytest.raises(BundleNotFound):
        store.set_alias("m", "production", 2)
    assert store.put(bundle).version == 3
    with pytest.raises(StoreError, match=r"m:2 is claimed .* has not finished .* try again"):
        store.put(bundle, version=2)
    assert store.versions("m") == [1, 3]


def test_a_name_with_only_unfinished_versions_is_not_listed(store: ModelStore) -> None:
    _leave_unfinished(store, "ghost", 1)
    assert store.names() == []
    assert store.versions("ghost") == []


def test_aliases_promote_move_and_roll_back(store: ModelStore, bundle: Bundle) -> None:
    for _ in range(3):
        store.put(bundle)
    store.set_alias("m", "production", 1)
    store.set_alias("m", "staging", 3)
    assert store.aliases("m") == {"production": 1, "staging": 3}
    store.set_alias("m", "production", 3)
    assert store.resolve_alias("m", "production") == 3
    store.set_alias("m", "production", 2)
    assert store.aliases("m") == {"production": 2, "staging": 3}
    assert store.read("m", store.resolve_alias("m", "production") or 0).manifest.version == 2


def test_an_alias_only_points_at_an_existing_version(store: ModelStore, bundle: Bundle) -> None:
    store.put(bundle)
    with pytest.raises(BundleNotFound, match=r"m:2 is not in"):
        store.set_alias("m", "production", 2)
    with pytest.raises(BundleNotFound, match=r"other:1 is not in"):
        store.set_alias("other", "production", 1)
    with pytest.raises(ConfigError, match="alias"):
        store.set_alias("m", "../production", 1)
    assert store.aliases("m") == {}


def test_concurrent_puts_of_one_name_get_distinct_versions(
    store: ModelStore, bundle: Bundle
) -> None:
    n_threads, n_puts = 4, 3
    barrier = threading.Barrier(n_threads)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        own = open_store(store.uri)  # a store per writer, as separate processes would have
        barrier.wait()
        try:
            for _ in range(n_puts):
                results.append(own.put(bundle).version)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(results) == list(range(1, n_threads * n_puts + 1))
    assert store.versions("m") == sorted(results)
    for version in results:
        assert store.read("m", version).manifest.version == version


@pytest.mark.parametrize("file", ["linear.json", "report.html"])
def test_a_flipped_byte_in_a_stored_artifact_is_refused(
    store: ModelStore, bundle: Bundle, file: str
) -> None:
    store.put(bundle)
    data = bytearray(_read_raw(store, f"m/1/{file}"))
    data[len(data) // 2] ^= 0x04
    _write_raw(store, f"m/1/{file}", bytes(data))
    with pytest.raises(BundleError, match=rf"{file}: sha256 does not match"):
        store.read("m", 1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [(lambda d: d[:-3], "size"), (lambda d: d + b"x" * 1000, "size"), (lambda d: b"", "size 0")],
    ids=["truncated", "oversized", "empty"],
)
def test_a_stored_artifact_of_the_wrong_size_is_refused(
    store: ModelStore, bundle: Bundle, change: object, reason: str
) -> None:
    store.put(bundle)
    assert callable(change)
    _write_raw(store, "m/1/linear.json", change(_read_raw(store, "m/1/linear.json")))
    with pytest.raises(BundleError, match=rf"linear\.json: {reason} .*manifest says"):
        store.read("m", 1, serving_only=True)


def test_a_manifest_moved_to_another_version_is_refused(store: ModelStore, bundle: Bundle) -> None:
    store.put(bundle)
    for file, data in bundle.files.items():
        _write_raw(store, f"m/5/{file}", data)
    _write_raw(store, f"m/5/{MANIFEST}", _read_raw(store, f"m/1/{MANIFEST}"))
    with pytest.raises(BundleError, match=r"says m:1, but is stored as m:5"):
        store.read("m", 5)


def test_a_stored_future_format_is_refused(store: ModelStore, bundle: Bundle) -> None:
    store.put(bundle)
    raw = json.loads(_read_raw(store, f"m/1/{MANIFEST}"))
    raw["format_version"] = 99
    _write_raw(store, f"m/1/{MANIFEST}", json.dumps(raw).encode())
    with pytest.raises(BundleError, match="format_version 99 is newer"):
        store.read("m", 1, serving_only=True)


# -- copying between stores ----------------------------------------------------------------


def test_copy_local_to_s3_and_back_keeps_versions_aliases_and_checksums(
    tmp_path: Path, s3_store_uri: str, builtin_bundle: Bundle
) -> None:
    local = LocalStore(tmp_path / "a")
    for extra in (b"one", b"two", b"three"):
        local.put(_bundle(builtin_bundle, extra=extra))
    _leave_unfinished(local, "m", 4)
    local.put(_bundle(builtin_bundle, extra=b"five"))
    local.set_alias("m", "production", 2)
    remote = open_store(s3_store_uri)
    steps = list(copy_model(parse_ref("m"), local, remote))
    assert [str(s) for s in steps] == [
        "copied  m:1",
        "copied  m:2",
        "copied  m:3",
        "copied  m:5",
        "alias m@production -> m:2",
    ]
    back = LocalStore(tmp_path / "b")
    list(copy_model(parse_ref("m"), remote, back))
    for copy in (remote, back):
        assert copy.versions("m") == [1, 2, 3, 5]
        assert copy.aliases("m") == {"production": 2}
        for version in (1, 2, 3, 5):
            assert copy.read("m", version).manifest == local.read_manifest("m", version)
    assert (tmp_path / "b" / "m" / "5" / "report.html").read_bytes() == b"five"


def test_copying_again_is_a_no_op_and_a_different_version_is_an_error(
    tmp_path: Path, s3_store_uri: str, builtin_bundle: Bundle
) -> None:
    local = LocalStore(tmp_path / "a")
    local.put(_bundle(builtin_bundle))
    remote = open_store(s3_store_uri)
    list(copy_model(parse_ref("m"), local, remote))
    assert [s.action for s in copy_model(parse_ref("m"), local, remote)] == ["present"]
    local.put(_bundle(builtin_bundle, extra=b"newer"))
    assert [str(s) for s in copy_model(parse_ref("m:2"), local, remote)] == ["copied  m:2"]
    other = LocalStore(tmp_path / "c")
    other.put(_bundle(builtin_bundle, extra=b"something else"))
    with pytest.raises(StoreError, match=r"m:1 already exists in s3://.* different artifacts"):
        list(copy_model(parse_ref("m:1"), other, remote))


def test_copying_an_alias_copies_its_version_only(
    tmp_path: Path, s3_store_uri: str, builtin_bundle: Bundle
) -> None:
    local = LocalStore(tmp_path / "a")
    for _ in range(3):
        local.put(_bundle(builtin_bundle))
    local.set_alias("m", "production", 2)
    remote = open_store(s3_store_uri)
    assert [str(s) for s in copy_model(parse_ref("m@production"), local, remote)] == ["copied  m:2"]
    assert remote.versions("m") == [2]
    assert remote.aliases("m") == {}


# -- S3 specifics and faults ---------------------------------------------------------------


@pytest.mark.usefixtures("s3_read_path")
def test_the_uri_is_normalised_and_an_empty_prefix_works(s3_bucket: str, bundle: Bundle) -> None:
    assert S3Store(f"s3://{s3_bucket}//a//b/").uri == f"s3://{s3_bucket}/a/b"
    root = S3Store(f"s3://{s3_bucket}")
    root.put(bundle)
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert f"m/1/{MANIFEST}" in keys
    assert root.versions("m") == [1]


def test_serving_reads_one_object_per_file_and_needs_no_client(
    s3_read_path: str, s3_store_uri: str, bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = S3Store(s3_store_uri)
    writer.put(bundle)
    writer.set_alias("m", "production", 1)
    keys: list[str] = []
    original = S3Store._get

    def counting(self: S3Store, key: str, **options: object) -> bytes:
        keys.append(key)
        return original(self, key, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(S3Store, "_get", counting)
    store = S3Store(s3_store_uri)
    version = store.resolve_alias("m", "production")
    assert version == 1
    assert (
        store.read("m", version, serving_only=True).files["linear.json"]
        == (bundle.files["linear.json"])
    )
    assert keys == [
        "models/m/aliases/production",
        "models/m/1/manifest.json",
        "models/m/1/linear.json",
    ]
    # A client is made only to list or write, or to read with credentials from elsewhere.
    assert (store._client_made is None) == (s3_read_path == "standard library")


def test_a_version_number_taken_by_another_writer_is_skipped(
    s3_store_uri: str, bundle: Bundle
) -> None:
    store = S3Store(s3_store_uri)
    store.put(bundle)
    # Another writer claimed 2 after this one listed: the conditional create refuses it.
    listed = store._list  # list as if before the other writer's claim
    store._list = lambda prefix: [  # type: ignore[method-assign]
        key for key in listed(prefix) if not key.startswith("2/")
    ]
    _write_raw(store, "m/2/.claim", b"{}")
    assert store.put(bundle).version == 3


@pytest.mark.usefixtures("s3_read_path")
def test_a_missing_bucket_is_a_store_error(aws_env: str, bundle: Bundle) -> None:
    store = S3Store("s3://modelapi-no-such-bucket/models")
    for action in (store.names, lambda: store.read("m", 1), lambda: store.put(bundle)):
        with pytest.raises(StoreError, match=r"bucket 'modelapi-no-such-bucket' does not exist"):
            action()


@pytest.mark.usefixtures("s3_read_path")
def test_a_missing_object_is_not_found(s3_store_uri: str) -> None:
    store = S3Store(s3_store_uri)
    with pytest.raises(BundleNotFound, match=r"m:3 is not in s3://"):
        store.read_manifest("m", 3)
    assert store.resolve_alias("m", "production") is None
    with pytest.raises(BundleNotFound, match=r"m:3 is not in s3://"):
        store.read("m", 3, serving_only=True)


def _deny(bucket: str, action: str, resource: str) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": action,
                "Resource": f"arn:aws:s3:::{bucket}/{resource}",
            }
        ],
    }
    boto3.client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


@pytest.mark.usefixtures("s3_read_path")
def test_access_denied_on_read_is_a_store_error(
    s3_bucket: str, s3_store_uri: str, bundle: Bundle
) -> None:
    store = S3Store(s3_store_uri)
    store.put(bundle)
    _deny(s3_bucket, "s3:GetObject", "*")
    with pytest.raises(StoreError, match=r"access denied .* to read s3://.*need s3:GetObject"):
        store.read("m", 1, serving_only=True)


def test_a_write_that_stops_before_its_manifest_leaves_no_version(
    s3_bucket: str, s3_store_uri: str, bundle: Bundle
) -> None:
    store = S3Store(s3_store_uri)
    store.put(bundle)
    _deny(s3_bucket, "s3:PutObject", f"*/{MANIFEST}")
    with pytest.raises(StoreError, match=r"access denied .* to write .*need s3:PutObject"):
        store.put(bundle)
    assert _read_raw(store, "m/2/linear.json") == bundle.files["linear.json"]
    assert store.versions("m") == [1]
    boto3.client("s3").delete_bucket_policy(Bucket=s3_bucket)
    assert store.put(bundle).version == 3


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.usefixtures("s3_read_path")
def test_an_endpoint_that_is_down_is_a_store_error(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    store = S3Store("s3://some-bucket/models")
    with pytest.raises(StoreError, match=rf"cannot reach the S3 endpoint {endpoint}"):
        store.versions("m")
    with pytest.raises(StoreError, match="cannot reach"):
        store.read("m", 1, serving_only=True)


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A socket that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    server.close()


@pytest.mark.usefixtures("s3_read_path")
def test_a_silent_endpoint_times_out_as_a_store_error(
    aws_env: str, silent_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", silent_endpoint)
    store = S3Store("s3://some-bucket/models", read_timeout_s=0.2)
    with pytest.raises(StoreError, match=r"cannot reach .*ReadTimeoutError"):
        store.read("m", 1, serving_only=True)


def test_boto3_faults_keep_their_cause(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(StoreError) as info:
        S3Store("s3://some-bucket/models").names()
    assert type(info.value.__cause__).__name__ == "EndpointConnectionError"


@pytest.mark.parametrize(
    "uri", ["s3://", "s3://UPPER/x", "s3://a/x", "s3://b..c/x", "s3://bucket-ok/../x"]
)
def test_a_bad_s3_uri_is_refused(aws_env: str, uri: str) -> None:
    with pytest.raises(ConfigError, match="store"):
        S3Store(uri)


# -- moto checks the signatures ------------------------------------------------------------


def _moto_auth(endpoint: str, free_actions: str) -> None:
    """Have moto check signatures and IAM permissions after `free_actions` more requests."""
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=free_actions.encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


@pytest.fixture
def role_credentials(aws_env: str) -> Iterator[tuple[str, str, str]]:
    """Temporary credentials of a role allowed every S3 action (a Lambda function's kind),
    with moto checking each request's signature, session token and permissions."""
    iam = boto3.client("iam", endpoint_url=aws_env)
    name = f"reader-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"AWS": "*"}}]}  # fmt: skip
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                     "Resource": "*"}]}  # fmt: skip
    iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=json.dumps(allow))
    sts = boto3.client("sts", endpoint_url=aws_env)
    found = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="lambda")["Credentials"]
    _moto_auth(aws_env, "0")
    try:
        yield found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"]
    finally:
        _moto_auth(aws_env, "inf")


def test_moto_checks_and_accepts_the_standard_librarys_signature_and_session_token(
    s3_store_uri: str,
    bundle: Bundle,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    writer = S3Store(s3_store_uri)
    writer.put(bundle)
    writer.set_alias("m", "production", 1)
    access_key, secret_key, token = request.getfixturevalue("role_credentials")
    use_s3_read_path("standard library", monkeypatch, tmp_path, (access_key, secret_key, token))
    store = S3Store(s3_store_uri)
    assert store.read_path == "standard library"
    assert store.resolve_alias("m", "production") == 1
    assert store.read("m", 1).files == bundle.files
    for wrong, code in [
        ((access_key, "wrong", token), "SignatureDoesNotMatch"),
        ((access_key, secret_key, token + "0"), "InvalidToken"),
    ]:
        use_s3_read_path("standard library", monkeypatch, tmp_path, wrong)
        with pytest.raises(StoreError, match=rf"access denied \({code}\) to read"):
            S3Store(s3_store_uri).read("m", 1, serving_only=True)
