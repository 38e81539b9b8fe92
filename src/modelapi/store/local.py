"""A store in a local folder.

Layout (documented in docs/STORE.md):

    <root>/<name>/<version>/manifest.json   written last: a version exists once this exists
    <root>/<name>/<version>/<artifact>      linear.json, model.onnx, model.skops, report.html
    <root>/<name>/aliases/<alias>           text file holding a version number

The version folder is claimed with mkdir, which is atomic and fails if the folder exists, so
two trainings of one name finishing at once get two distinct versions, across threads and
processes alike.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import msgspec

from modelapi.bundle import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    Bundle,
    Manifest,
    decode_manifest,
    read_bundle,
    read_file,
    write_bundle,
)
from modelapi.errors import BundleError, BundleNotFound, StoreError
from modelapi.store.base import MAX_ALIAS_BYTES, check_complete, check_name, is_name

__all__ = ["LocalStore"]

_ALIASES = "aliases"


class LocalStore:
    """Versions of bundles in a folder on this machine."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = str(root)

    def names(self) -> list[str]:
        """Model names with at least one complete version."""
        try:
            if not self.root.is_dir():
                return []
            candidates = [p.name for p in self.root.iterdir() if p.is_dir()]
        except OSError as exc:
            raise self._error("cannot be listed", exc) from exc
        return sorted(n for n in candidates if is_name(n) and self.versions(n))

    def versions(self, name: str) -> list[int]:
        """Complete versions, ascending."""
        folder = self.root / check_name("model name", name)
        try:
            if not folder.is_dir():
                return []
            return sorted(
                int(p.name)
                for p in folder.iterdir()
                if p.name.isdecimal() and p.name.isascii() and (p / MANIFEST).is_file()
            )
        except OSError as exc:
            raise self._error("cannot be listed", exc) from exc

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version."""
        folder = self.root / check_name("model name", name) / _ALIASES
        try:
            if not folder.is_dir():
                return {}
            names = sorted(p.name for p in folder.iterdir() if is_name(p.name))
        except OSError as exc:
            raise self._error("cannot be listed", exc) from exc
        found = {alias: self.resolve_alias(name, alias) for alias in names}
        return {alias: version for alias, version in found.items() if version is not None}

    def resolve_alias(self, name: str, alias: str) -> int | None:
        """The version an alias points at, or None."""
        path = self.root / check_name("model name", name) / _ALIASES / check_name("alias", alias)
        if not path.is_file():
            return None
        try:
            text = read_file(path, MAX_ALIAS_BYTES).decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise StoreError(f"{path}: cannot be read ({exc})") from exc
        return int(text) if text.isdecimal() and text.isascii() else None

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a complete version."""
        check_name("alias", alias)
        self.read_manifest(name, version)
        folder = self.root / name / _ALIASES
        # A private temporary name per writer, then an atomic rename: readers see the old or
        # the new version, never an empty file.
        temporary = folder / f".{alias}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            temporary.write_text(f"{version}\n", encoding="ascii")
            os.replace(temporary, folder / alias)
        except OSError as exc:
            raise self._error(f"alias {name}@{alias} cannot be written", exc) from exc

    def read(self, name: str, version: int, *, serving_only: bool = False) -> Bundle:
        """Read and verify a version."""
        folder = self._version_folder(name, version)
        bundle = read_bundle(folder, serving_only=serving_only)
        _check_identity(bundle.manifest, name, version, folder)
        return bundle

    def read_manifest(self, name: str, version: int) -> Manifest:
        """Read only a version's manifest."""
        folder = self._version_folder(name, version)
        data = read_file(folder / MANIFEST, MAX_MANIFEST_BYTES)
        manifest = decode_manifest(data, f"{folder}/{MANIFEST}")
        _check_identity(manifest, name, version, folder)
        return manifest

    def put(self, bundle: Bundle, *, version: int | None = None) -> Manifest:
        """Store a complete bundle as the next version of its name, or as exactly `version`."""
        name = check_name("model name", bundle.manifest.name)
        check_complete(bundle)
        folder = self.root / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            claimed = self._claim(folder) if version is None else self._claim_exact(folder, version)
        except OSError as exc:
            raise self._error("cannot hold a new version", exc) from exc
        manifest = msgspec.structs.replace(bundle.manifest, version=claimed)
        try:
            write_bundle(Bundle(manifest, bundle.files), folder / str(claimed))
        except OSError as exc:
            raise self._error(f"{name}:{claimed} cannot be written", exc) from exc
        return manifest

    def _claim(self, folder: Path) -> int:
        taken = [int(p.name) for p in folder.iterdir() if p.name.isdecimal() and p.name.isascii()]
        version = max(taken, default=0) + 1
        while True:
            try:
                (folder / str(version)).mkdir()
            except FileExistsError:
                version += 1
            else:
                return version

    def _claim_exact(self, folder: Path, version: int) -> int:
        if version < 1:
            raise StoreError(f"version {version} is not a positive integer")
        try:
            (folder / str(version)).mkdir()
        except FileExistsError:
            state = "exists" if (folder / str(version) / MANIFEST).is_file() else "is claimed"
            raise StoreError(
                f"{folder.name}:{version} {state} in {self.uri}; versions are never overwritten"
                + ("" if state == "exists" else _UNFINISHED.format(path=folder / str(version)))
            ) from None
        return version

    def _version_folder(self, name: str, version: int) -> Path:
        folder = self.root / check_name("model name", name) / str(version)
        if not (folder / MANIFEST).is_file():
            raise BundleNotFound(f"{name}:{version} is not in {self.uri}")
        return folder

    def _error(self, what: str, exc: OSError) -> StoreError:
        return StoreError(f"store {self.uri}: {what} ({exc.strerror or exc})")


_UNFINISHED = (
    " by a write that has not finished (or crashed);"
    " if no write is running, remove {path} and try again"
)


def _check_identity(manifest: Manifest, name: str, version: int, folder: Path) -> None:
    if (manifest.name, manifest.version) != (name, version):
        raise BundleError(
            f"{folder}/{MANIFEST}: says {manifest.model_id}, but is stored as {name}:{version}"
        )
