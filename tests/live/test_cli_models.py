"""`modelapi models ...` through real subprocesses, against a local folder and S3 on moto."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import msgspec
import pytest

from modelapi.bundle import MANIFEST, Bundle, artifact_entry, encode_manifest, write_bundle
from modelapi.store import open_store
from modelapi.store.local import LocalStore


def _bundle(builtin: Bundle, name: str = "m", extra: bytes = b"<html>report</html>") -> Bundle:
    files = {**builtin.files, "report.html": extra}
    artifacts = {file: artifact_entry(data) for file, data in files.items()}
    manifest = msgspec.structs.replace(builtin.manifest, name=name, artifacts=artifacts)
    return Bundle(manifest, files)


@dataclass(frozen=True)
class World:
    """Stores prepared once for the module, and the environment the CLI runs with."""

    root: Path
    local: str
    s3: str
    env: dict[str, str]


def _env(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODELAPI_"))}
    env.update(
        AWS_ENDPOINT_URL_S3=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def _client(env: dict[str, str]) -> object:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"])


def _new_bucket(env: dict[str, str]) -> str:
    name = f"modelapi-cli-{uuid.uuid4().hex[:12]}"
    _client(env).create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


@pytest.fixture(scope="module")
def world(
    moto_endpoint: str, builtin_bundle: Bundle, tmp_path_factory: pytest.TempPathFactory
) -> World:
    root = tmp_path_factory.mktemp("cli")
    env = _env(moto_endpoint)
    local = LocalStore(root / "models")
    local.put(_bundle(builtin_bundle))
    local.put(_bundle(builtin_bundle, extra=b"<html>second</html>"))
    local.set_alias("m", "production", 1)
    s3 = f"s3://{_new_bucket(env)}/models"
    return World(root, str(root / "models"), s3, env)


def run(
    world: World, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelapi", "models", *args],
        capture_output=True,
        text=True,
        cwd=cwd or world.root,
        env=env or world.env,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def test_list_shows_names_versions_newest_and_aliases(world: World) -> None:
    lines = ok(run(world, "list", "--store", world.local)).splitlines()
    assert lines[0].split() == ["NAME", "VERSIONS", "NEWEST", "ALIASES"]
    assert lines[1].split() == ["m", "1-2", "2", "production=1"]


def test_the_store_comes_from_the_flag_the_environment_or_the_default(world: World) -> None:
    env = {**world.env, "MODELAPI_STORE": world.local}
    assert ok(run(world, "list", env=env)).splitlines()[1].startswith("m ")
    assert ok(run(world, "list", cwd=world.root)).splitlines()[1].startswith("m ")
    empty = world.root / "empty"
    empty.mkdir(exist_ok=True)
    assert ok(run(world, "list", "--store", str(empty), env=env)) == f"no models in {empty}\n"


def test_show_prints_the_manifest_as_tables(world: World) -> None:
    manifest = LocalStore(world.local).read_manifest("m", 2)
    out = ok(run(world, "show", "m", "--store", world.local))
    assert out.splitlines()[0].split() == ["model", "m:2", f"({world.local})"]
    for feature in manifest.features:
        assert f"{feature.column} " in out
        assert f" {feature.key} " in out
    assert re.search(r"\n  Glucose +glucose +integer +0 \.\. 199\n", out)
    assert re.search(r"\n  accuracy +0\.7835497835497836\n", out)
    for file, entry in manifest.artifacts.items():
        assert re.search(rf"\n  {re.escape(file)} +{entry.size} B +{entry.sha256}\n", out)
    assert "classes     0, 1" in out
    assert f"report      {Path(world.local) / 'm' / '2' / 'report.html'}" in out


def test_show_names_the_aliases_of_the_version(world: World) -> None:
    out = ok(run(world, "show", "m@production", "--store", world.local))
    assert out.splitlines()[0].split()[1] == "m:1"
    assert "aliases     production" in out


def test_show_json_prints_the_manifest(world: World) -> None:
    out = ok(run(world, "show", "m:1", "--json", "--store", world.local))
    manifest = LocalStore(world.local).read_manifest("m", 1)
    assert json.loads(out) == json.loads(encode_manifest(manifest))


def test_show_a_folder_and_the_builtin_model(world: World, builtin_bundle: Bundle) -> None:
    folder = world.root / "models" / "m" / "1"
    assert ok(run(world, "show", str(folder), "--verify")).splitlines()[0].split()[1] == "m:1"
    out = ok(run(world, "show", "diabetes", "--store", str(world.root / "empty")))
    assert out.splitlines()[0].startswith(f"model       {builtin_bundle.manifest.model_id}")
    assert "(built-in models)" in out.splitlines()[0]


def test_alias_promotes_and_rolls_back(
    world: World, tmp_path: Path, builtin_bundle: Bundle
) -> None:
    store = LocalStore(tmp_path / "models")
    for _ in range(3):
        store.put(_bundle(builtin_bundle))
    uri = str(store.root)
    assert ok(run(world, "alias", "m", "2", "production", "--store", uri)) == (
        "m@production -> m:2\n"
    )
    assert ok(run(world, "alias", "m", "3", "production", "--store", uri)) == (
        "m@production -> m:3 (was m:2)\n"
    )
    assert store.resolve_alias("m", "production") == 3
    ok(run(world, "alias", "m", "2", "production", "--store", uri))
    assert store.aliases("m") == {"production": 2}
    assert "m:2" in ok(run(world, "show", "m@production", "--store", uri)).splitlines()[0]


def test_copy_local_to_s3_and_back_keeps_versions_and_checksums(
    world: World, tmp_path: Path, aws_env: str
) -> None:
    s3 = f"s3://{_new_bucket(world.env)}/team/models"
    out = ok(run(world, "copy", "m", "--to", s3, "--store", world.local))
    assert out.splitlines() == [
        f"copying m to {s3}",
        "  copied  m:1",
        "  copied  m:2",
        "  alias m@production -> m:1",
    ]
    assert ok(run(world, "list", "--store", s3)).splitlines()[1].split() == [
        "m",
        "1-2",
        "2",
        "production=1",
    ]
    again = ok(run(world, "copy", "m", "--to", s3, "--store", world.local))
    assert "  present m:1 (same sha256, left as it is)" in again.splitlines()
    back = tmp_path / "back"
    ok(run(world, "copy", "m", "--to", str(back), "--store", s3))
    source = LocalStore(world.local)
    for version in (1, 2):
        assert LocalStore(back).read("m", version).manifest == source.read_manifest("m", version)
    assert LocalStore(back).aliases("m") == {"production": 1}
    remote = open_store(s3)
    assert remote.read_manifest("m", 2).artifacts == source.read_manifest("m", 2).artifacts


def test_copy_the_builtin_model_and_a_folder(world: World, tmp_path: Path) -> None:
    destination = tmp_path / "dest"
    out = ok(run(world, "copy", "diabetes", "--to", str(destination), "--store", world.local))
    assert out.splitlines()[1] == "  copied  diabetes:1"
    out = ok(run(world, "copy", str(world.root / "models" / "m" / "2"), "--to", str(destination)))
    assert out.splitlines()[1] == "  copied  m:2"
    assert open_store(str(destination)).names() == ["diabetes", "m"]


# -- every error path: one line, exit code 1, no traceback ---------------------------------


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def broken(world: World, builtin_bundle: Bundle) -> dict[str, str]:
    """Stores and folders that fail in one way each."""
    tampered = write_bundle(_bundle(builtin_bundle), world.root / "tampered")
    (tampered / "report.html").write_bytes(b"<html>REPORT</html>")
    future = write_bundle(_bundle(builtin_bundle), world.root / "future")
    raw = json.loads((future / MANIFEST).read_text())
    raw["format_version"] = 99
    (future / MANIFEST).write_text(json.dumps(raw))
    different = LocalStore(world.root / "different")
    different.put(_bundle(builtin_bundle, extra=b"<html>not the same</html>"))
    denied = _new_bucket(world.env)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in world.env.items():
            patch.setenv(key, value)
        open_store(f"s3://{denied}/models").put(_bundle(builtin_bundle))
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{denied}/*",
            }
        ],
    }
    _client(world.env).put_bucket_policy(Bucket=denied, Policy=json.dumps(policy))  # type: ignore[attr-defined]
    return {
        "local": world.local,
        "tampered": str(tampered),
        "future": str(future),
        "different": str(different.root),
        "denied": f"s3://{denied}/models",
        "down": f"http://127.0.0.1:{_closed_port()}",
    }


ERRORS = [
    (["show", "nope", "--store", "{local}"], r"no model named 'nope' in "),
    (["show", "m:9", "--store", "{local}"], r"m:9 is not in "),
    (["show", "m@staging", "--store", "{local}"], r"m has no alias 'staging' in "),
    (["show", "bad name", "--store", "{local}"], r"model name 'bad name' is not valid"),
    (["show", "m:x", "--store", "{local}"], r"version in 'm:x' must be a positive integer"),
    (["show", "", "--store", "{local}"], r"model reference is empty"),
    (["show", "./nothing"], r"nothing: no manifest\.json here"),
    (["show", "{tampered}", "--verify"], r"report\.html: sha256 does not match"),
    (["show", "{future}"], r"format_version 99 is newer than this modelapi reads"),
    (["list", "--store", "http://example.com/x"], r"store 'http://example\.com/x' is not"),
    (["list", "--store", "./no-such-folder"],
     r"no store at \./no-such-folder: the folder does not exist \('modelapi train DATA --store"),
    (["list", "--store", "s3://Bad_Bucket/x"], r"does not name a valid S3 bucket"),
    (["alias", "m", "9", "production", "--store", "{local}"], r"m:9 is not in "),
    (["alias", "m", "x", "production", "--store", "{local}"], r"must be a positive integer"),
    (["alias", "m", "1", "../p", "--store", "{local}"], r"alias '\.\./p' is not valid"),
    (["alias", "nope", "1", "production", "--store", "{local}"], r"nope:1 is not in "),
    (["copy", "m", "--to", "s3://modelapi-missing-bucket/x", "--store", "{local}"],
     r"bucket 'modelapi-missing-bucket' does not exist"),
    (["copy", "m:1", "--to", "{different}", "--store", "{local}"],
     r"m:1 already exists in .* with different artifacts"),
    (["copy", "m", "--to", "gs://elsewhere", "--store", "{local}"], r"is not supported"),
    (["show", "m", "--store", "{denied}"], r"access denied .* need s3:GetObject"),
    (["list", "--store", "s3://some-bucket/x", "@down"], r"cannot reach the S3 endpoint"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_an_error_is_one_line_and_exit_code_1(
    world: World, broken: dict[str, str], args: list[str], message: str
) -> None:
    env = world.env
    if "@down" in args:
        args = [a for a in args if a != "@down"]
        env = {**env, "AWS_ENDPOINT_URL_S3": broken["down"]}
    result = run(world, *(a.format(**broken) for a in args), env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
