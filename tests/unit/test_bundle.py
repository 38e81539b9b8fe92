"""The bundle format: round trips, and every way a tampered or hostile bundle is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import (
    FORMAT_VERSION,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    Bundle,
    artifact_entry,
    decode_manifest,
    encode_manifest,
    read_bundle,
    read_bundle_from,
    write_bundle,
)
from modelapi.errors import BundleError, BundleNotFound


@pytest.fixture(scope="module")
def bundle(builtin_bundle: Bundle) -> Bundle:
    """The built-in bundle with two more artifacts, so "any artifact" means more than one."""
    files = {
        **builtin_bundle.files,
        "report.html": b"<!doctype html><title>report</title>",
        "model.skops": bytes(range(256)) * 4,
    }
    artifacts = {name: artifact_entry(data) for name, data in files.items()}
    manifest = msgspec.structs.replace(builtin_bundle.manifest, artifacts=artifacts)
    return Bundle(manifest, files)


def _edit_manifest(folder: Path, edit: Callable[[dict[str, object]], None]) -> None:
    raw = json.loads((folder / MANIFEST).read_text())
    edit(raw)
    (folder / MANIFEST).write_text(json.dumps(raw))


def test_a_written_bundle_reads_back_identical(bundle: Bundle, tmp_path: Path) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    again = read_bundle(folder)
    assert again.manifest == bundle.manifest
    assert again.files == bundle.files
    assert sorted(p.name for p in folder.iterdir()) == sorted([MANIFEST, *bundle.files])


def test_the_manifest_encoding_round_trips_and_is_stable(bundle: Bundle) -> None:
    data = encode_manifest(bundle.manifest)
    assert decode_manifest(data) == bundle.manifest
    assert encode_manifest(decode_manifest(data)) == data


def test_serving_only_reads_just_the_serving_artifact(bundle: Bundle, tmp_path: Path) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    (folder / "model.skops").write_bytes(b"damaged, but not needed to serve")
    served = read_bundle(folder, serving_only=True)
    assert set(served.files) == {bundle.manifest.serving}
    with pytest.raises(BundleError, match=r"model\.skops"):
        read_bundle(folder)


def test_serving_only_asks_the_reader_for_nothing_else(bundle: Bundle) -> None:
    stored = {MANIFEST: encode_manifest(bundle.manifest), **bundle.files}
    asked: list[tuple[str, int]] = []

    def read(name: str, max_bytes: int) -> bytes:
        asked.append((name, max_bytes))
        return stored[name]

    read_bundle_from(read, serving_only=True)
    serving = bundle.manifest.serving
    # Each with its bound: the manifest's limit, and the size the manifest gives the artifact.
    assert asked == [
        (MANIFEST, MAX_MANIFEST_BYTES),
        (serving, bundle.manifest.artifacts[serving].size),
    ]


@pytest.mark.parametrize("artifact", ["linear.json", "report.html", "model.skops"])
@pytest.mark.parametrize("position", [0, -1, 0.5])
def test_a_flipped_byte_in_any_artifact_is_refused_naming_the_file(
    bundle: Bundle, tmp_path: Path, artifact: str, position: float
) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    data = bytearray((folder / artifact).read_bytes())
    index = int(len(data) * position) if isinstance(position, float) else int(position)
    data[index] ^= 0x01
    (folder / artifact).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"^{artifact}: sha256 does not match"):
        read_bundle(folder)


def test_a_flipped_byte_in_the_serving_artifact_is_refused_when_serving(
    bundle: Bundle, tmp_path: Path
) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    path = folder / bundle.manifest.serving
    data = bytearray(path.read_bytes())
    data[10] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"linear\.json"):
        read_bundle(folder, serving_only=True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda data: data[:-1], r"size \d+ bytes, manifest says \d+"),
        (lambda data: data + b" ", r"size \d+ bytes, manifest says \d+"),
        (lambda data: b"", r"size 0 bytes"),
    ],
    ids=["truncated", "oversized", "empty"],
)
def test_a_truncated_or_oversized_artifact_is_refused(
    bundle: Bundle, tmp_path: Path, change: Callable[[bytes], bytes], reason: str
) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    path = folder / "model.skops"
    path.write_bytes(change(path.read_bytes()))
    with pytest.raises(BundleError, match=rf"model.skops: {reason}"):
        read_bundle(folder)


def test_a_missing_artifact_is_refused_naming_it(bundle: Bundle, tmp_path: Path) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    (folder / "report.html").unlink()
    with pytest.raises(BundleError, match=r"report\.html: cannot be read"):
        read_bundle(folder)


def test_a_future_format_version_is_refused(bundle: Bundle, tmp_path: Path) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    _edit_manifest(folder, lambda raw: raw.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match=r"format_version \d+ is newer .* upgrade modelapi"):
        read_bundle(folder, serving_only=True)


@pytest.mark.parametrize("value", [0, -1, "1", 1.0, None, True])
def test_a_malformed_format_version_is_refused(
    bundle: Bundle, tmp_path: Path, value: object
) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    _edit_manifest(folder, lambda raw: raw.update(format_version=value))
    with pytest.raises(BundleError, match="format_version must be a positive integer"):
        read_bundle(folder)


@pytest.mark.parametrize(
    "name",
    [
        "../x",
        "../../etc/passwd",
        "/etc/passwd",
        ".hidden",
        "a/b",
        "a\\b",
        "..",
        ".",
        "",
        "C:x",
        "x" * 200,
        "manifest.json",
        "name\x00.json",
        "ünïcode.json",
    ],
)
def test_an_artifact_name_that_is_not_a_plain_file_name_is_refused(
    bundle: Bundle, tmp_path: Path, name: str
) -> None:
    folder = write_bundle(bundle, tmp_path / "b")

    def add(raw: dict[str, object]) -> None:
        artifacts = raw["artifacts"]
        assert isinstance(artifacts, dict)
        artifacts[name] = {"sha256": hashlib.sha256(b"").hexdigest(), "size": 0}

    _edit_manifest(folder, add)
    with pytest.raises(BundleError, match="is not a plain file name"):
        read_bundle(folder, serving_only=True)


def test_a_manifest_cannot_reach_a_valid_file_outside_its_folder(
    bundle: Bundle, tmp_path: Path
) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    outside = tmp_path / "linear.json"
    outside.write_bytes(bundle.files["linear.json"])
    entry = artifact_entry(outside.read_bytes())

    def point_outside(raw: dict[str, object]) -> None:
        raw["artifacts"] = {"../linear.json": {"sha256": entry.sha256, "size": entry.size}}
        raw["serving"] = "../linear.json"

    _edit_manifest(folder, point_outside)
    with pytest.raises(BundleError, match=r"'\.\./linear\.json' is not a plain file name"):
        read_bundle(folder, serving_only=True)


def test_a_folder_without_a_manifest_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "linear.json").write_text("{}")
    with pytest.raises(BundleNotFound, match=r"no manifest\.json here"):
        read_bundle(tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "no format_version"),
        (b'{"format_version": 1}', "missing required field"),
        (b"", "not valid JSON"),
    ],
)
def test_a_malformed_manifest_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / MANIFEST).write_bytes(content)
    with pytest.raises(BundleError, match=reason):
        read_bundle(tmp_path)


def test_a_serving_artifact_that_is_not_listed_is_refused(bundle: Bundle, tmp_path: Path) -> None:
    folder = write_bundle(bundle, tmp_path / "b")
    _edit_manifest(folder, lambda raw: raw.update(serving="model.onnx"))
    with pytest.raises(BundleError, match=r"serving artifact 'model\.onnx' is not listed"):
        read_bundle(folder)


def test_writing_refuses_bytes_that_do_not_match_the_manifest(
    bundle: Bundle, tmp_path: Path
) -> None:
    files = {**bundle.files, "report.html": b"something else"}
    with pytest.raises(BundleError, match=r"report\.html: size"):
        write_bundle(Bundle(bundle.manifest, files), tmp_path / "b")
    assert not (tmp_path / "b" / MANIFEST).exists()
