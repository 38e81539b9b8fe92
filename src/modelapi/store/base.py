"""The names, references and protocol every store shares: the backends import them from here.

Kept apart from the package's `__init__`, which opens the backends, so that no backend
imports the package that imports it.
"""

from __future__ import annotations

import re
from typing import Protocol

import msgspec

from modelapi.bundle import (
    Bundle,
    Manifest,
    check_artifact_name,
    verify_artifact,
)
from modelapi.errors import BundleError, ConfigError

__all__ = [
    "MAX_ALIAS_BYTES",
    "ModelRef",
    "ModelStore",
    "check_complete",
    "check_name",
    "check_version",
    "is_name",
    "parse_ref",
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
