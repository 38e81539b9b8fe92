"""Model stores: where versions of bundles live, and the one reference syntax to name them.

References: `name` (newest version), `name:3`, `name@production`, or a bundle folder path.

Every store follows the same protocol so that a version is never half-visible: a version is
claimed first (an atomic create that fails if it exists), its artifacts are written, and its
manifest is written last. Readers list only versions whose manifest exists. Aliases are
written after the version they name is complete.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelapi.bundle import MANIFEST, Bundle, Manifest, read_bundle
from modelapi.errors import BundleNotFound, ConfigError

__all__ = [
    "ModelRef",
    "ModelStore",
    "check_name",
    "load_bundle",
    "open_store",
    "parse_ref",
    "resolve_version",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(kind: str, value: str) -> str:
    """Refuse a model or alias name that is not 1-64 letters, digits, `_`, `.` or `-`."""
    if not _NAME.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{kind} {value[:80]!r} is not valid: use 1-64 letters, digits, '_', '.' or '-'"
        )
    return value


@dataclass(frozen=True, slots=True)
class ModelRef:
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
    """Parse `name`, `name:3`, `name@alias` or a folder path (anything with a `/`, or a folder)."""
    if os.sep in text or "/" in text or (Path(text) / MANIFEST).is_file():
        return ModelRef(path=text)
    if "@" in text:
        name, alias = text.split("@", 1)
        return ModelRef(check_name("model name", name), alias=check_name("alias", alias))
    if ":" in text:
        name, version = text.split(":", 1)
        if not version.isdigit() or int(version) < 1:
            raise ConfigError(f"version in {text[:80]!r} must be a positive integer, as in name:3")
        return ModelRef(check_name("model name", name), version=int(version))
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

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at an existing version (create or move it)."""
        ...

    def read(self, name: str, version: int, *, serving_only: bool = False) -> Bundle:
        """Read and verify a version; `serving_only` reads just the serving artifact."""
        ...

    def read_manifest(self, name: str, version: int) -> Manifest:
        """Read only the manifest of a version."""
        ...

    def put(self, bundle: Bundle) -> Manifest:
        """Store a bundle as the next version of its name; return the manifest as stored."""
        ...


def open_store(uri: str) -> ModelStore:
    """Open a store from a URI: a folder path, `file://PATH`, or `s3://bucket/prefix`."""
    if uri.startswith("s3://"):
        from modelapi.store.s3 import S3Store

        return S3Store(uri)
    if "://" in uri and not uri.startswith("file://"):
        raise ConfigError(
            f"store {uri[:80]!r} is not supported: use a folder path or s3://bucket/prefix"
        )
    from modelapi.store.local import LocalStore

    return LocalStore(uri.removeprefix("file://"))


def resolve_version(store: ModelStore, ref: ModelRef) -> int:
    """The version a reference names in a store; raise BundleNotFound if there is none."""
    if ref.version is not None:
        if ref.version not in store.versions(ref.name):
            raise BundleNotFound(f"{ref.name}:{ref.version} is not in {store.uri}")
        return ref.version
    if ref.alias is not None:
        version = store.aliases(ref.name).get(ref.alias)
        if version is None:
            raise BundleNotFound(f"{ref.name} has no alias {ref.alias!r} in {store.uri}")
        return version
    versions = store.versions(ref.name)
    if not versions:
        raise BundleNotFound(f"no model named {ref.name!r} in {store.uri}")
    return versions[-1]


def load_bundle(ref: ModelRef, store: ModelStore | None, *, serving_only: bool = False) -> Bundle:
    """Read the bundle a reference names: a folder, a store version, or a built-in model.

    A plain name that the store does not hold falls back to the models shipped with modelapi,
    so `modelapi serve` answers on a fresh install.
    """
    if ref.path is not None:
        return read_bundle(ref.path, serving_only=serving_only)
    if store is not None:
        try:
            version = resolve_version(store, ref)
        except BundleNotFound:
            if not _is_builtin_candidate(ref, store):
                raise
        else:
            return store.read(ref.name, version, serving_only=serving_only)
    from modelapi.store.builtin import BUILTIN_STORE

    return BUILTIN_STORE.read(
        ref.name, resolve_version(BUILTIN_STORE, ref), serving_only=serving_only
    )


def _is_builtin_candidate(ref: ModelRef, store: ModelStore) -> bool:
    from modelapi.store.builtin import BUILTIN_STORE

    return (
        ref.alias is None
        and ref.version is None
        and not store.versions(ref.name)
        and bool(BUILTIN_STORE.versions(ref.name))
    )
