"""Model stores: where versions of bundles live, and the one reference syntax to name them.

References: `name` (newest version), `name:3`, `name@production`, or a bundle folder path.

Every store follows the same protocol so that a version is never half-visible: a version is
claimed first (an atomic create that fails if it exists), its artifacts are written, and its
manifest is written last. Readers list only versions whose manifest exists. Aliases are
written after the version they name is complete. docs/STORE.md describes the layout.
"""

from __future__ import annotations

from pathlib import Path

from modelapi.bundle import MANIFEST, Bundle, read_bundle
from modelapi.errors import BundleNotFound, ConfigError

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

from modelapi.store.base import (
    MAX_ALIAS_BYTES,
    ModelRef,
    ModelStore,
    check_complete,
    check_name,
    check_version,
    is_name,
    parse_ref,
)


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
