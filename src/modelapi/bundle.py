"""The bundle: a folder with `manifest.json` and the artifact files it lists with their sha256.

FORMAT_VERSION is bumped whenever a reader of the old layout could misread the new one; a
bundle from a newer modelapi is refused instead of being half-understood. There has been one
layout so far (version 1), so there are no readers of older ones yet: when the layout changes,
the reader of the old one goes beside this module, one module per version, with its tests.

Reading checks the format version and the size and sha256 of every artifact it reads before
anything from it is used, and artifact names are plain file names: a manifest cannot point a
reader outside its own folder.
"""

# Annotations stay objects here (no `from __future__ import annotations`): msgspec reads the
# Structs' annotations at their first decode, and evaluating strings then costs milliseconds of
# every cold start.

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import msgspec

from modelapi.errors import BundleError, BundleNotFound
from modelapi.schema import Feature, Target

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "REPORT_FILE",
    "Artifact",
    "Bundle",
    "DataInfo",
    "Label",
    "Manifest",
    "Task",
    "artifact_entry",
    "check_artifact_name",
    "decode_manifest",
    "encode_manifest",
    "read_bundle",
    "read_bundle_from",
    "verify_artifact",
    "write_bundle",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# The training report every trained version carries (served at /model/report).
REPORT_FILE = "report.html"
_ARTIFACT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

Label = int | float | str
Task = Literal["classification", "regression"]


class Artifact(msgspec.Struct, frozen=True):
    """A file of the bundle, pinned by its sha256 and size in bytes."""

    sha256: str
    size: int


class DataInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the model was trained on."""

    sha256: str
    n_rows: int
    source: str = ""


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The contents of `manifest.json`."""

    format_version: int
    name: str
    version: int
    created_at: str
    task: Task
    estimator: str
    target: Target
    features: tuple[Feature, ...]
    serving: str
    artifacts: dict[str, Artifact]
    classes: tuple[Label, ...] | None = None
    metrics: dict[str, object] = msgspec.field(default_factory=dict)
    data: DataInfo | None = None
    library_versions: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """`name:version`, as in the X-Model-Version header."""
        return f"{self.name}:{self.version}"


class Bundle(msgspec.Struct, frozen=True):
    """A manifest and the bytes of the artifacts that were read (all, or the serving one)."""

    manifest: Manifest
    files: dict[str, bytes] = msgspec.field(default_factory=dict)


def check_artifact_name(name: str) -> str:
    """Refuse any artifact name that is not a plain file name (no `/`, `..` or hidden files)."""
    if not _ARTIFACT_NAME.fullmatch(name) or name in {".", ".."} or name == MANIFEST:
        raise BundleError(f"{MANIFEST}: artifact name {name[:80]!r} is not a plain file name")
    return name


def encode_manifest(manifest: Manifest) -> bytes:
    """Serialize a manifest as indented, key-ordered JSON (diff-friendly, stable)."""
    return msgspec.json.format(msgspec.json.encode(manifest, order="sorted"), indent=2) + b"\n"


def decode_manifest(data: bytes, where: str = MANIFEST) -> Manifest:
    """Parse and check a manifest; raise BundleError naming the file on any problem."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise BundleError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict) or "format_version" not in raw:
        raise BundleError(f"{where}: not a modelapi manifest (no format_version)")
    version = raw["format_version"]
    if type(version) is not int or version < 1:
        raise BundleError(f"{where}: format_version must be a positive integer")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{where}: format_version {version} is newer than this modelapi reads"
            f" ({FORMAT_VERSION}): upgrade modelapi"
        )
    try:
        manifest = msgspec.convert(raw, Manifest)
    except msgspec.ValidationError as exc:
        raise BundleError(f"{where}: {exc}") from None
    for name in manifest.artifacts:
        check_artifact_name(name)
    if manifest.serving not in manifest.artifacts:
        raise BundleError(f"{where}: serving artifact {manifest.serving!r} is not listed")
    return manifest


def verify_artifact(manifest: Manifest, name: str, data: bytes) -> None:
    """Check an artifact's size and sha256 against the manifest; raise BundleError naming it."""
    expected = manifest.artifacts.get(name)
    if expected is None:
        raise BundleError(f"{name}: not listed in {MANIFEST}")
    if len(data) != expected.size:
        raise BundleError(f"{name}: size {len(data)} bytes, manifest says {expected.size}")
    if hashlib.sha256(data).hexdigest() != expected.sha256:
        raise BundleError(f"{name}: sha256 does not match {MANIFEST}; the file was changed")


def read_bundle_from(
    read: Callable[[str], bytes], *, serving_only: bool = False, where: str = ""
) -> Bundle:
    """Read a bundle through `read(file_name) -> bytes`; verify every artifact read.

    Serving reads only the artifact it answers from (`serving_only`); everything else reads all.
    """
    manifest = decode_manifest(read(MANIFEST), where + MANIFEST)
    wanted = [manifest.serving] if serving_only else list(manifest.artifacts)
    files: dict[str, bytes] = {}
    for name in wanted:
        check_artifact_name(name)
        data = read(name)
        verify_artifact(manifest, name, data)
        files[name] = data
    return Bundle(manifest, files)


def read_bundle(path: str | os.PathLike[str], *, serving_only: bool = False) -> Bundle:
    """Read and verify a bundle folder."""
    folder = Path(path)
    if not (folder / MANIFEST).is_file():
        raise BundleNotFound(f"{folder}: no {MANIFEST} here; is this a bundle folder?")

    def read(name: str) -> bytes:
        try:
            return (folder / name).read_bytes()
        except OSError as exc:
            raise BundleError(f"{folder / name}: cannot be read ({exc.strerror})") from None

    return read_bundle_from(read, serving_only=serving_only, where=f"{folder}/")


def write_bundle(bundle: Bundle, path: str | os.PathLike[str]) -> Path:
    """Write a bundle into a new or empty folder: artifacts first, the manifest last.

    A reader treats a folder without a manifest as absent, so a crash mid-way never leaves
    something that looks like a complete bundle.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in bundle.files.items():
        check_artifact_name(name)
        verify_artifact(bundle.manifest, name, data)
        _write_atomic(folder / name, data)
    _write_atomic(folder / MANIFEST, encode_manifest(bundle.manifest))
    return folder


def _write_atomic(target: Path, data: bytes) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def artifact_entry(data: bytes) -> Artifact:
    """The manifest entry for an artifact's bytes."""
    return Artifact(hashlib.sha256(data).hexdigest(), len(data))
