"""The one reference syntax: `name`, `name:3`, `name@alias`, or a bundle folder path."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import MANIFEST, Bundle, write_bundle
from modelapi.errors import BundleNotFound, ConfigError, MissingExtra
from modelapi.store import (
    ModelRef,
    check_name,
    load_bundle,
    locate,
    open_store,
    parse_ref,
    resolve_version,
)
from modelapi.store.builtin import BUILTIN_STORE
from modelapi.store.local import LocalStore


def _renamed(bundle: Bundle, name: str) -> Bundle:
    return Bundle(msgspec.structs.replace(bundle.manifest, name=name), dict(bundle.files))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("diabetes", ModelRef("diabetes")),
        ("diabetes:3", ModelRef("diabetes", version=3)),
        ("diabetes:03", ModelRef("diabetes", version=3)),
        ("diabetes@production", ModelRef("diabetes", alias="production")),
        ("my-model_2.1", ModelRef("my-model_2.1")),
        ("m@v2.1", ModelRef("m", alias="v2.1")),
        ("3", ModelRef("3")),
        ("models/diabetes/1", ModelRef(path="models/diabetes/1")),
        ("/abs/bundle", ModelRef(path="/abs/bundle")),
        ("./diabetes", ModelRef(path="./diabetes")),
        ("../bundle", ModelRef(path="../bundle")),
        ("~/bundle", ModelRef(path="~/bundle")),
        (".\\bundle", ModelRef(path=".\\bundle")),
        ("C:\\models\\diabetes\\1", ModelRef(path="C:\\models\\diabetes\\1")),
        ("c:/models/m", ModelRef(path="c:/models/m")),
        ("models\\m", ModelRef(path="models\\m")),
        ("bundles/m:3", ModelRef(path="bundles/m:3")),
        ("bundles/m@prod", ModelRef(path="bundles/m@prod")),
        (".", ModelRef(path=".")),
        ("m@../x", ModelRef(path="m@../x")),
    ],
)
def test_references_parse(text: str, expected: ModelRef) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text", ["diabetes", "diabetes:3", "diabetes@production", "models/diabetes/1"]
)
def test_a_reference_prints_as_written(text: str) -> None:
    assert str(parse_ref(text)) == text


def test_a_plain_name_stays_a_name_even_when_a_folder_has_that_name(
    builtin_bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bundle(builtin_bundle, tmp_path / "diabetes")
    monkeypatch.chdir(tmp_path)
    assert parse_ref("diabetes") == ModelRef("diabetes")
    assert parse_ref("./diabetes") == ModelRef(path="./diabetes")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "model reference is empty"),
        ("diabetes:", "version in 'diabetes:' must be a positive integer"),
        ("diabetes:0", "must be a positive integer"),
        ("diabetes:-1", "must be a positive integer"),
        ("diabetes:1.5", "must be a positive integer"),
        ("diabetes:x", "must be a positive integer"),
        ("diabetes:\u0663", "must be a positive integer"),
        ("diabetes:" + "9" * 5000, "must be a positive integer"),
        ("diabetes:3@prod", "model name 'diabetes:3' is not valid"),
        ("diabetes@", "alias '' is not valid"),
        ("@production", "model name '' is not valid"),
        ("dia betes", "model name 'dia betes' is not valid"),
        ("a..b", "model name 'a..b' is not valid"),
        ("-flag", "model name '-flag' is not valid"),
        ("_x", "model name '_x' is not valid"),
        ("x" * 65, "is not valid"),
        ("m@prod@x", "alias 'prod@x' is not valid"),
        ("na\u00efve", "is not valid"),
        ("m\n", "is not valid"),
    ],
)
def test_bad_references_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ref(text)


def test_an_error_never_quotes_more_than_80_characters() -> None:
    with pytest.raises(ConfigError) as info:
        check_name("model name", "x" * 5000 + " ")
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    "uri", ["http://example.com/models", "ftp://x", "gs://bucket/x", "", "s3://", "s3://A_B/x"]
)
def test_an_unsupported_store_uri_is_refused(uri: str) -> None:
    with pytest.raises(ConfigError, match="store"):
        open_store(uri)


def test_an_s3_store_without_botocore_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in [name for name in sys.modules if name.split(".")[0] == "botocore"]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "botocore", None)
    with pytest.raises(MissingExtra, match=r"pip install 'modelapi\[s3\]'"):
        open_store("s3://bucket/models")


def test_a_file_uri_and_a_path_open_the_same_folder(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    assert isinstance(store, LocalStore)
    assert store.root == tmp_path


@pytest.fixture
def store(tmp_path: Path, builtin_bundle: Bundle) -> LocalStore:
    store = LocalStore(tmp_path / "models")
    for _ in range(3):
        store.put(_renamed(builtin_bundle, "m"))
    store.set_alias("m", "production", 2)
    return store


@pytest.mark.parametrize(
    ("text", "version"), [("m", 3), ("m:1", 1), ("m:3", 3), ("m@production", 2)]
)
def test_references_resolve_to_versions(store: LocalStore, text: str, version: int) -> None:
    assert resolve_version(store, parse_ref(text)) == version
    assert load_bundle(parse_ref(text), store).manifest.version == version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("m:4", r"m:4 is not in"),
        ("m@staging", r"m has no alias 'staging'"),
        ("other", r"no model named 'other'"),
        ("other:1", r"other:1 is not in"),
    ],
)
def test_unknown_references_are_not_found(store: LocalStore, text: str, message: str) -> None:
    with pytest.raises(BundleNotFound, match=message):
        resolve_version(store, parse_ref(text))
    with pytest.raises(BundleNotFound, match=message):
        load_bundle(parse_ref(text), store)


def test_a_plain_builtin_name_falls_back_to_the_shipped_model(store: LocalStore) -> None:
    found, version = locate(parse_ref("diabetes"), store)
    assert found is BUILTIN_STORE
    assert load_bundle(parse_ref("diabetes"), store).manifest.model_id == f"diabetes:{version}"
    assert load_bundle(parse_ref("diabetes"), None).manifest.name == "diabetes"


def test_a_stored_model_wins_over_the_builtin_one_of_the_same_name(
    store: LocalStore, builtin_bundle: Bundle
) -> None:
    store.put(builtin_bundle)
    found, _ = locate(parse_ref("diabetes"), store)
    assert found is store


@pytest.mark.parametrize("text", ["diabetes@production", "diabetes:7"])
def test_only_a_plain_name_falls_back_to_the_builtin_models(store: LocalStore, text: str) -> None:
    with pytest.raises(BundleNotFound):
        load_bundle(parse_ref(text), store)


def test_a_path_reference_reads_the_folder_or_its_manifest(
    builtin_bundle: Bundle, tmp_path: Path
) -> None:
    folder = write_bundle(builtin_bundle, tmp_path / "bundle")
    assert load_bundle(parse_ref(str(folder)), None).manifest == builtin_bundle.manifest
    by_manifest = load_bundle(parse_ref(str(folder / MANIFEST)), None, serving_only=True)
    assert by_manifest.manifest == builtin_bundle.manifest


def test_a_path_reference_to_no_bundle_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFound, match=r"no manifest\.json here"):
        load_bundle(parse_ref(str(tmp_path / "nothing")), None)


def test_a_path_is_not_a_name_in_a_store(store: LocalStore) -> None:
    with pytest.raises(ConfigError, match="folder path"):
        resolve_version(store, parse_ref("./m"))
