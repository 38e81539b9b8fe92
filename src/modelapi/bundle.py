"""The bundle: a folder with `manifest.json` and the artifact files it lists with their sha256.

FORMAT_VERSION is bumped whenever a reader of the old layout could misread the new one; a
bundle from a newer modelapi is refused instead of being half-understood. There has been one
layout so far (version 1), so there are no readers of older ones yet: when the layout changes,
the reader of the old one goes beside this module, one module per version, with its tests.

Reading checks the format version and the size and sha256 of every artifact it reads before
anything from it is used, and artifact names are plain file names: a manifest cannot point a
reader outside its own folder. No file is read past what it may hold: the manifest's declared
size for an artifact (itself at most MAX_ARTIFACT_BYTES), MAX_MANIFEST_BYTES for the manifest;
a larger file is refused before its contents are read.
"""

# Annotations stay objects here (no `from __future__ import annotations`): msgspec reads the
# Structs' annotations at their first decode, and evaluating strings then costs milliseconds of
# every cold start.

import hashlib
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import msgspec

from modelapi.errors import BundleError, BundleNotFound
from modelapi.schema import Feature, Target

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "MAX_ARTIFACT_BYTES",
    "MAX_MANIFEST_BYTES",
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
    "read_file",
    "size_error",
    "verify_artifact",
    "write_bundle",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# The training report every trained version carries (served at /model/report).
REPORT_FILE = "report.html"
# The largest manifest and the largest artifact a bundle may have; every read is bounded by
# them, so a damaged or hostile store cannot make a process hold more.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024
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


def size_error(name: str, size: int | None, max_bytes: int, *, declared: bool) -> BundleError:
    """The error for a file over what it may hold (`size` None: known only to be over).

    `declared` says `max_bytes` is the size the manifest gives the file, not a limit.
    """
    found = f"size {size} bytes" if size is not None else f"size over {max_bytes} bytes"
    expected = f"manifest says {max_bytes}" if declared else f"limit {max_bytes}"
    return BundleError(f"{name}: {found}, {expected}")


def read_bundle_from(
    read: Callable[[str, int], bytes], *, serving_only: bool = False, where: str = ""
) -> Bundle:
    """Read a bundle through `read(file_name, max_bytes) -> bytes`; verify every artifact read.

    `read` returns at most `max_bytes` + 1 bytes (or raises BundleError for a larger file):
    MAX_MANIFEST_BYTES for the manifest, the manifest's size for an artifact. Serving reads
    only the artifact it answers from (`serving_only`); everything else reads all.
    """
    manifest = decode_manifest(read(MANIFEST, MAX_MANIFEST_BYTES), where + MANIFEST)
    wanted = [manifest.serving] if serving_only else list(manifest.artifacts)
    files: dict[str, bytes] = {}
    for name in wanted:
        check_artifact_name(name)
        size = manifest.artifacts[name].size
        if not 0 <= size <= MAX_ARTIFACT_BYTES:
            raise BundleError(
                f"{where}{MANIFEST}: {name} is said to hold {size} bytes; an artifact holds"
                f" 0 to {MAX_ARTIFACT_BYTES} bytes (MAX_ARTIFACT_BYTES)"
            )
        data = read(name, size)
        verify_artifact(manifest, name, data)
        files[name] = data
    return Bundle(manifest, files)


def read_bundle(path: str | os.PathLike[str], *, serving_only: bool = False) -> Bundle:
    """Read and verify a bundle folder."""
    folder = Path(path)
    if not (folder / MANIFEST).is_file():
        raise BundleNotFound(f"{folder}: no {MANIFEST} here; is this a bundle folder?")

    def read(name: str, max_bytes: int) -> bytes:
        return read_file(folder / name, max_bytes, declared=name != MANIFEST)

    return read_bundle_from(read, serving_only=serving_only, where=f"{folder}/")


def read_file(path: Path, max_bytes: int, *, declared: bool = False) -> bytes:
    """A file's bytes, refused unread when it is larger than `max_bytes` (at most + 1 read).

    Raises BundleError naming the file; `declared` as in size_error.
    """
    try:
        # Non-blocking, so that a named pipe posing as a file cannot hold the open.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise BundleError(f"{path}: cannot be read ({exc.strerror})") from None
    with open(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise BundleError(f"{path}: not a regular file")
        if status.st_size > max_bytes:
            raise size_error(path.name, status.st_size, max_bytes, declared=declared)
        try:
            # One byte past the size, so that a file grown since is still refused; never more
            # (read(n) takes n bytes of memory before it reads).
            return handle.read(status.st_size + 1)
        except OSError as exc:
            raise BundleError(f"{path}: cannot be read ({exc.strerror})") from None


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
