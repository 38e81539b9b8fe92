"""Model stores: where versions of bundles live, and the one reference syntax to name them.

References: `name` (newest version), `name:3`, `name@production`, or a bundle folder path.

Every store follows the same protocol so that a version is never half-visible: a version is
claimed first (an atomic create that fails if it exists), its artifacts are written, and its
manifest is written last. Readers list only versions whose manifest exists. Aliases are
written after the version they name is complete. docs/STORE.md describes the layout.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import msgspec

from modelapi.bundle import (
    MANIFEST,
    Bundle,
    Manifest,
    check_artifact_name,
    read_bundle,
    verify_artifact,
)
from modelapi.errors import BundleError, BundleNotFound, ConfigError

__all__ = [
    "MAX_ALIAS_BYTES",
    "ModelRef",
    "ModelStore",
    "check_complete",
    "check_name",
    "check_version",
    "is_name",
    "load_bundle",
    "locate",
    "open_store",
    "parse_ref",
    "resolve_version",
]

# An alias holds a version number and a newline: anything longer is refused unread.
MAX_ALIAS_BYTES = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_VERSION = re.compile(r"[0-9]{1,9}")
# A reference that starts like a path, or contains a separator of any platform, is a path.
_PATH_START = (".", "~", "/", "\\")
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")


def check_name(kind: str, value: str) -> str:
    """Refuse a model or alias name that is not 1-64 letters, digits, `_`, `.` or `-`."""
    if not is_name(value):
        raise ConfigError(
            f"{kind} {value[:80]!r} is not valid: use 1-64 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit"
        )
    return value


def is_name(text: str) -> bool:
    """Whether a text is a valid model or alias name (see check_name)."""
    return bool(_NAME.fullmatch(text)) and ".." not in text


def check_version(text: str, where: str) -> int:
    """Parse a version number (a positive integer); raise ConfigError naming `where`."""
    if not _VERSION.fullmatch(text) or int(text) < 1:
        raise ConfigError(f"version in {where[:80]!r} must be a positive integer, as in name:3")
    return int(text)


class ModelRef(msgspec.Struct, frozen=True):
    """A parsed reference: a name with a version or alias, or a bundle folder path."""

    name: str = ""
    version: int | None = None
    alias: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        if self.path is not None:
            return self.path
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str) -> ModelRef:
    """Parse `name`, `name:3`, `name@alias`, or a bundle folder path.

    A path is anything with `/` or `\\`, a drive letter, or a leading `.` or `~`; write
    `./diabetes` for a folder that is named like a model. The parse never looks at the file
    system, so the same text means the same thing in every directory.
    """
    if not text:
        raise ConfigError("model reference is empty: use name, name:3, name@alias or a folder")
    if text.startswith(_PATH_START) or "/" in text or "\\" in text or _DRIVE.match(text):
        return ModelRef(path=text)
    if "@" in text:
        name, alias = text.split("@", 1)
        return ModelRef(check_name("model name", name), alias=check_name("alias", alias))
    if ":" in text:
        name, version = text.split(":", 1)
        return ModelRef(check_name("model name", name), version=check_version(version, text))
    return ModelRef(check_name("model name", text))


class ModelStore(Protocol):
    """A place holding immutable, integer-numbered versions of named bundles."""

    uri: str

    def names(self) -> list[str]:
        """Model names that have at least one complete version, sorted."""
        ...

    def versions(self, name: str) -> list[int]:
        """Complete versions of a model, ascending; [] when there are none."""
        ...

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version for a model."""
        ...

    def resolve_alias(self, name: str, alias: str) -> int | None:
        """The version an alias points at, or None; reads only that alias."""
        ...

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at an existing complete version (create or move it)."""
        ...

    def read(self, name: str, version: int, *, serving_only: bool = False) -> Bundle:
        """Read and verify a version; `serving_only` reads just the serving artifact."""
        ...

    def read_manifest(self, name: str, version: int) -> Manifest:
        """Read only the manifest of a version."""
        ...

    def put(self, bundle: Bundle, *, version: int | None = None) -> Manifest:
        """Store a complete bundle as a new version; return the manifest as stored.

        With `version=None` the next free number is claimed; with a number, exactly that
        version is created (copies keep their numbers), and an existing one is refused.
        """
        ...


def check_complete(bundle: Bundle) -> None:
    """Refuse to store a bundle whose files are not exactly its manifest's verified artifacts."""
    manifest = bundle.manifest
    missing = sorted(set(manifest.artifacts) - set(bundle.files))
    if missing:
        raise BundleError(
            f"{manifest.model_id}: artifacts {', '.join(missing)} were not read;"
            " read the bundle in full (not serving-only) before storing it"
        )
    for name, data in bundle.files.items():
        check_artifact_name(name)
        verify_artifact(manifest, name, data)


def open_store(uri: str, *, read_deadline_s: float | None = None) -> ModelStore:
    """Open a store from a URI: a folder path, `file://PATH`, or `s3://bucket/prefix`.

    `read_deadline_s` bounds each read of an S3 store, all its attempts included (None: the
    store's default, 20 s); a folder is read without one.
    """
    if uri.startswith("s3://"):
        from modelapi.store.s3 import S3Store

        if read_deadline_s is None:
            return S3Store(uri)
        return S3Store(uri, read_deadline_s=read_deadline_s)
    if "://" in uri and not uri.startswith("file://"):
        raise ConfigError(
            f"store {uri[:80]!r} is not supported: use a folder path or s3://bucket/prefix"
        )
    if not uri:
        raise ConfigError("store is empty: use a folder path or s3://bucket/prefix")
    from modelapi.store.local import LocalStore

    return LocalStore(uri.removeprefix("file://"))


def resolve_version(store: ModelStore, ref: ModelRef) -> int:
    """The version a reference names in a store; raise BundleNotFound if there is none."""
    if ref.path is not None:
        raise ConfigError(f"{ref.path[:80]!r} is a folder path, not a name in a store")
    if ref.version is not None:
        if ref.version not in store.versions(ref.name):
            raise BundleNotFound(f"{ref.name}:{ref.version} is not in {store.uri}")
        return ref.version
    if ref.alias is not None:
        version = store.resolve_alias(ref.name, ref.alias)
        if version is None:
            raise BundleNotFound(f"{ref.name} has no alias {ref.alias!r} in {store.uri}")
        return version
    versions = store.versions(ref.name)
    if not versions:
        raise BundleNotFound(f"no model named {ref.name!r} in {store.uri}")
    return versions[-1]


def locate(ref: ModelRef, store: ModelStore | None) -> tuple[ModelStore, int]:
    """The store and version a name reference points at.

    A plain name that the store does not hold falls back to the models shipped with modelapi,
    so `modelapi serve` answers on a fresh install. Store faults are raised, never hidden by
    the fallback.
    """
    from modelapi.store.builtin import BUILTIN_STORE

    if store is not None:
        try:
            return store, resolve_version(store, ref)
        except BundleNotFound:
            is_plain = ref.alias is None and ref.version is None
            if not (is_plain and BUILTIN_STORE.versions(ref.name)):
                raise
    return BUILTIN_STORE, resolve_version(BUILTIN_STORE, ref)


def load_bundle(ref: ModelRef, store: ModelStore | None, *, serving_only: bool = False) -> Bundle:
    """Read the bundle a reference names: a folder, a store version, or a built-in model."""
    if ref.path is not None:
        path = Path(ref.path).expanduser()
        if path.name == MANIFEST and path.is_file():
            path = path.parent
        return read_bundle(path, serving_only=serving_only)
    if store is not None and ref.version is not None:
        # An exact version needs no listing: reading it proves it exists (BundleNotFound if
        # not), which saves a request on a cold start and needs no s3:ListBucket.
        return store.read(ref.name, ref.version, serving_only=serving_only)
    found, version = locate(ref, store)
    return found.read(ref.name, version, serving_only=serving_only)
