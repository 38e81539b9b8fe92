"""Copy versions (and aliases) of a model from one store to another, numbers and bytes kept.

Every version is read in full and verified before it is written, and written with the same
version number through the destination's normal claim protocol, so a copy that stops half-way
leaves no visible half-version. A version that is already at the destination with the same
artifacts (by sha256) is left alone; one with different artifacts is an error, because
versions are immutable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from modelapi.bundle import read_bundle
from modelapi.errors import StoreError
from modelapi.store import ModelRef, ModelStore, locate

__all__ = ["CopyStep", "copy_model"]


@dataclass(frozen=True, slots=True)
class CopyStep:
    """One thing a copy did: a version copied, a version already there, or an alias set."""

    action: Literal["copied", "present", "alias"]
    model_id: str
    alias: str | None = None

    def __str__(self) -> str:
        if self.action == "alias":
            name = self.model_id.split(":", 1)[0]
            return f"alias {name}@{self.alias} -> {self.model_id}"
        if self.action == "present":
            return f"present {self.model_id} (same sha256, left as it is)"
        return f"copied  {self.model_id}"


def copy_model(
    ref: ModelRef, source: ModelStore | None, destination: ModelStore
) -> Iterator[CopyStep]:
    """Copy what a reference names into `destination`, yielding each step as it is done.

    `name` copies every version and then every alias; `name:3` and `name@alias` copy one
    version; a folder path copies that bundle under its own name and version.
    """
    if ref.path is not None:
        bundle = read_bundle(ref.path)
        name, version = bundle.manifest.name, bundle.manifest.version
        if version in destination.versions(name):
            yield _check_same(bundle.manifest.artifacts, destination, name, version)
        else:
            destination.put(bundle, version=version)
            yield CopyStep("copied", bundle.manifest.model_id)
        return
    store, newest = locate(ref, source)
    is_whole = ref.version is None and ref.alias is None
    versions = store.versions(ref.name) if is_whole else [newest]
    present = set(destination.versions(ref.name))
    for version in versions:
        if version in present:
            wanted = store.read_manifest(ref.name, version).artifacts
            yield _check_same(wanted, destination, ref.name, version)
            continue
        stored = destination.put(store.read(ref.name, version), version=version)
        yield CopyStep("copied", stored.model_id)
    if is_whole:
        for alias, version in sorted(store.aliases(ref.name).items()):
            if destination.resolve_alias(ref.name, alias) != version:
                destination.set_alias(ref.name, alias, version)
                yield CopyStep("alias", f"{ref.name}:{version}", alias)


def _check_same(wanted: object, destination: ModelStore, name: str, version: int) -> CopyStep:
    there = destination.read_manifest(name, version).artifacts
    if there != wanted:
        raise StoreError(
            f"{name}:{version} already exists in {destination.uri} with different artifacts;"
            " versions are immutable: copy to another store or delete that version there first"
        )
    return CopyStep("present", f"{name}:{version}")
