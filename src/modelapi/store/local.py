"""A store in a local folder.

Layout (documented in docs/STORE.md):

    <root>/<name>/<version>/manifest.json   written last: a version exists once this exists
    <root>/<name>/<version>/<artifact>      linear.json, model.onnx, model.skops, report.html
    <root>/<name>/aliases/<alias>           text file holding a version number

The version folder is claimed with mkdir, which is atomic and fails if the folder exists, so
two trainings of one name finishing at once get two distinct versions.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from modelapi.bundle import MANIFEST, Bundle, Manifest, decode_manifest, read_bundle, write_bundle
from modelapi.errors import BundleError, BundleNotFound, StoreError
from modelapi.store import check_name

__all__ = ["LocalStore"]

_ALIASES = "aliases"


class LocalStore:
    """Versions of bundles in a folder on this machine."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = str(root)

    def names(self) -> list[str]:
        """Model names with at least one complete version."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[int]:
        """Complete versions, ascending."""
        folder = self.root / check_name("model name", name)
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name) for p in folder.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file()
        )

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version."""
        folder = self.root / check_name("model name", name) / _ALIASES
        if not folder.is_dir():
            return {}
        found: dict[str, int] = {}
        for path in folder.iterdir():
            text = path.read_text().strip()
            if not path.name.startswith(".") and text.isdigit():
                found[path.name] = int(text)
        return found

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a complete version."""
        check_name("alias", alias)
        if version not in self.versions(name):
            raise BundleNotFound(f"{name}:{version} is not in {self.uri}")
        folder = self.root / name / _ALIASES
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{alias}.{os.getpid()}.tmp"
        temporary.write_text(f"{version}\n")
        os.replace(temporary, folder / alias)

    def read(self, name: str, version: int, *, serving_only: bool = False) -> Bundle:
        """Read and verify a version."""
        folder = self._version_folder(name, version)
        bundle = read_bundle(folder, serving_only=serving_only)
        self._check_identity(bundle.manifest, name, version, folder)
        return bundle

    def read_manifest(self, name: str, version: int) -> Manifest:
        """Read only a version's manifest."""
        folder = self._version_folder(name, version)
        manifest = decode_manifest((folder / MANIFEST).read_bytes(), f"{folder}/{MANIFEST}")
        self._check_identity(manifest, name, version, folder)
        return manifest

    def put(self, bundle: Bundle) -> Manifest:
        """Store a bundle as the next version of its name."""
        name = check_name("model name", bundle.manifest.name)
        folder = self.root / name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            version = self._claim(folder)
        except OSError as exc:
            raise StoreError(f"{folder}: cannot create a version here ({exc.strerror})") from None
        manifest = msgspec.structs.replace(bundle.manifest, version=version)
        write_bundle(Bundle(manifest, bundle.files), folder / str(version))
        return manifest

    def _claim(self, folder: Path) -> int:
        taken = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
        version = max(taken, default=0) + 1
        while True:
            try:
                (folder / str(version)).mkdir()
            except FileExistsError:
                version += 1
            else:
                return version

    def _version_folder(self, name: str, version: int) -> Path:
        folder = self.root / check_name("model name", name) / str(version)
        if not (folder / MANIFEST).is_file():
            raise BundleNotFound(f"{name}:{version} is not in {self.uri}")
        return folder

    @staticmethod
    def _check_identity(manifest: Manifest, name: str, version: int, folder: Path) -> None:
        if (manifest.name, manifest.version) != (name, version):
            raise BundleError(
                f"{folder}/{MANIFEST}: says {manifest.model_id}, but is stored as {name}:{version}"
            )
