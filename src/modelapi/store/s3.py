"""A store in an S3 bucket, or in anything that speaks the S3 API.

Same layout and protocol as the local store (docs/STORE.md), under `s3://bucket/prefix`:

    <prefix>/<name>/<version>/.claim          created with If-None-Match: * (claims the number)
    <prefix>/<name>/<version>/<artifact>      the artifact files
    <prefix>/<name>/<version>/manifest.json   written last: a version exists once this exists
    <prefix>/<name>/aliases/<alias>           text holding a version number

A version number is claimed with a conditional PutObject (`If-None-Match: *`) on its claim
key: S3 lets exactly one writer create a key that way, so two trainings of one name finishing
at once get two distinct versions. Credentials and the endpoint (`AWS_ENDPOINT_URL_S3`) come
from botocore's own configuration chain (boto3's), never from modelapi settings.

Objects are read on the standard library when the credentials are in the environment and
nothing else needs botocore (`s3_reader`: a Lambda function's case, whose cold start is then
spared botocore's imports), else through a botocore client (`s3_client`); listing and writing
make a client on first use. Every read has a deadline over all its attempts (`read_deadline_s`,
20 s, plus a second per MiB of an artifact's declared size) and a bound on its size, refused
before its body is read when S3 declares more.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from modelapi.bundle import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    Bundle,
    Manifest,
    decode_manifest,
    encode_manifest,
    read_bundle_from,
    size_error,
)
from modelapi.errors import BundleError, BundleNotFound, ConfigError, ModelapiError, StoreError
from modelapi.store.base import MAX_ALIAS_BYTES, check_complete, check_name, is_name
from modelapi.store.s3_errors import Where, error_code, store_error, too_slow
from modelapi.store.s3_reader import S3Reader, settings_from_environment
from modelapi.store.transport import DeadlinePassed, TooLarge

if TYPE_CHECKING:
    from modelapi.store.s3_client import S3Client

__all__ = ["READ_DEADLINE_S", "S3Store"]

# Every read (one object or one listing, all its attempts and a redirect) ends within this,
# plus a second per MiB an artifact is declared to hold: a drip of bytes cannot hold a read.
READ_DEADLINE_S = 20.0
_SECONDS_PER_BYTE = 1 / (1024 * 1024)
# A page of ListObjectsV2 holds at most 1000 keys of at most 1024 bytes each.
_MAX_PAGE_BYTES = 16 * 1024 * 1024

_ALIASES = "aliases"
_CLAIM = ".claim"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_VERSION_KEY = re.compile(r"([0-9]{1,9})/")
_MAX_CLAIM_TRIES = 1000
# S3 answers 409 when two conditional writes of one key overlap; AWS says to retry.
_CONFLICT_RETRIES = 5


class S3Store:
    """Versions of bundles under `s3://bucket/prefix`."""

    def __init__(
        self,
        uri: str,
        *,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 5.0,
        max_attempts: int = 2,
        read_deadline_s: float = READ_DEADLINE_S,
    ) -> None:
        self.bucket, self.prefix = _parse_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.read_deadline_s = read_deadline_s
        self._root = f"{self.prefix}/" if self.prefix else ""
        # Bounded timeouts and few retries: a dead endpoint must fail in seconds, not minutes,
        # because a serving process reports it (503) and retries later on its own.
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._max_attempts = max_attempts
        self._client_made: S3Client | None = None
        self._reader: S3Reader | None = None
        settings = settings_from_environment()
        if settings is not None:
            self._reader = S3Reader(
                self.bucket,
                settings,
                connect_timeout_s=connect_timeout_s,
                read_timeout_s=read_timeout_s,
                max_attempts=max_attempts,
            )
            self.endpoint: str = self._reader.endpoint
        else:
            self.endpoint = self._s3_client.endpoint
        # Which way objects are read: "standard library", or "botocore" (any other setup).
        self.read_path = "standard library" if self._reader is not None else "botocore"
        self._where = Where(self.bucket, self.uri, self.endpoint)

    @property
    def _s3_client(self) -> S3Client:
        """The botocore client, made on first use (at once when it reads objects too)."""
        if self._client_made is None:
            from modelapi.store.s3_client import S3Client

            try:
                # The endpoint the store resolved when it was opened, as its reads use.
                self._client_made = S3Client(
                    connect_timeout_s=self._connect_timeout_s,
                    read_timeout_s=self._read_timeout_s,
                    max_attempts=self._max_attempts,
                    endpoint_url=self._reader.endpoint_url if self._reader is not None else None,
                )
            except ModelapiError:
                raise
            except Exception as exc:  # botocore raises ValueError and its own types for bad setup.
                raise ConfigError(f"S3 client for {self.uri} cannot be created: {exc}") from exc
        return self._client_made

    @property
    def _client(self) -> Any:
        """The botocore client for listing and writing."""
        return self._s3_client.client

    def names(self) -> list[str]:
        """Model names with at least one complete version."""
        found = set()
        for key in self._list(self._root):
            name, _, rest = key.partition("/")
            if _version_of_manifest(rest) is not None and is_name(name):
                found.add(name)
        return sorted(found)

    def versions(self, name: str) -> list[int]:
        """Complete versions, ascending."""
        keys = self._list(self._name_root(name))
        return sorted(v for v in map(_version_of_manifest, keys) if v is not None)

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version."""
        names = [a for a in self._list(self._name_root(name) + f"{_ALIASES}/") if is_name(a)]
        found = {alias: self.resolve_alias(name, alias) for alias in sorted(names)}
        return {alias: version for alias, version in found.items() if version is not None}

    def resolve_alias(self, name: str, alias: str) -> int | None:
        """The version an alias points at, or None; one GetObject."""
        key = self._name_root(name) + f"{_ALIASES}/{check_name('alias', alias)}"
        try:
            data = self._get(
                key, missing=BundleNotFound(f"{name}@{alias}"), max_bytes=MAX_ALIAS_BYTES
            )
        except BundleNotFound:
            return None
        text = data.decode("ascii", "replace").strip()
        return int(text) if text.isdigit() and text.isascii() else None

    def set_alias(self, name: str, alias: str, version: int) -> None:
        """Point an alias at a complete version."""
        key = self._name_root(name) + f"{_ALIASES}/{check_name('alias', alias)}"
        self.read_manifest(name, version)
        self._put(key, f"{version}\n".encode())

    def read(self, name: str, version: int, *, serving_only: bool = False) -> Bundle:
        """Read and verify a version: one GetObject for the manifest and one per artifact."""
        base = self._version_root(name, version)
        manifest_bytes = self._get_manifest(name, version)

        def read(file: str, max_bytes: int) -> bytes:
            if file == MANIFEST:
                return manifest_bytes
            missing = BundleError(
                f"{name}:{version}: artifact {file} is missing from {self.uri}; the version"
                " is damaged, copy it again from its source"
            )
            return self._get(base + file, missing=missing, max_bytes=max_bytes, declared=True)

        bundle = read_bundle_from(read, serving_only=serving_only, where=self._url(base))
        self._check_identity(bundle.manifest, name, version)
        return bundle

    def read_manifest(self, name: str, version: int) -> Manifest:
        """Read only a version's manifest."""
        where = f"{self._url(self._version_root(name, version))}{MANIFEST}"
        manifest = decode_manifest(self._get_manifest(name, version), where)
        self._check_identity(manifest, name, version)
        return manifest

    def put(self, bundle: Bundle, *, version: int | None = None) -> Manifest:
        """Store a complete bundle as the next version of its name, or as exactly `version`."""
        name = check_name("model name", bundle.manifest.name)
        check_complete(bundle)
        claimed = self._claim(name) if version is None else self._claim_exact(name, version)
        manifest = msgspec.structs.replace(bundle.manifest, version=claimed)
        base = self._version_root(name, claimed)
        for file, data in bundle.files.items():
            self._put(base + file, data)
        if not self._create(base + MANIFEST, encode_manifest(manifest)):
            raise StoreError(f"{name}:{claimed} was completed by another writer in {self.uri}")
        return manifest

    def _claim(self, name: str) -> int:
        taken = set()
        for key in self._list(self._name_root(name)):
            match = _VERSION_KEY.match(key)
            if match:
                taken.add(int(match.group(1)))
        version = max(taken, default=0) + 1
        for _ in range(_MAX_CLAIM_TRIES):
            if self._create(self._version_root(name, version) + _CLAIM, _claim_body()):
                return version
            version += 1
        raise StoreError(f"no free version of {name} in {self.uri} after {_MAX_CLAIM_TRIES} tries")

    def _claim_exact(self, name: str, version: int) -> int:
        if version < 1:
            raise StoreError(f"version {version} is not a positive integer")
        base = self._version_root(name, version)
        if self._create(base + _CLAIM, _claim_body()):
            return version
        if version in self.versions(name):
            raise StoreError(
                f"{name}:{version} exists in {self.uri}; versions are never overwritten"
            )
        raise StoreError(
            f"{name}:{version} is claimed in {self.uri} by a write that has not finished"
            f" (or crashed); if no write is running, delete {self._url(base)} and try again"
        )

    def _check_identity(self, manifest: Manifest, name: str, version: int) -> None:
        if (manifest.name, manifest.version) != (name, version):
            raise BundleError(
                f"{self._url(self._version_root(name, version))}{MANIFEST}: says"
                f" {manifest.model_id}, but is stored as {name}:{version}"
            )

    def _get_manifest(self, name: str, version: int) -> bytes:
        missing = BundleNotFound(f"{name}:{version} is not in {self.uri}")
        key = self._version_root(name, version) + MANIFEST
        return self._get(key, missing=missing, max_bytes=MAX_MANIFEST_BYTES)

    def _name_root(self, name: str) -> str:
        return f"{self._root}{check_name('model name', name)}/"

    def _version_root(self, name: str, version: int) -> str:
        return f"{self._name_root(name)}{version}/"

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _list(self, prefix: str) -> list[str]:
        """Keys under a prefix, relative to it (every page, all within the read deadline)."""
        keys: list[str] = []
        client = self._s3_client
        try:
            with client.reading(time.monotonic() + self.read_deadline_s, _MAX_PAGE_BYTES):
                pages = client.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix
                )
                for page in pages:
                    keys.extend(item["Key"][len(prefix) :] for item in page.get("Contents", ()))
        except DeadlinePassed:
            raise too_slow("list", self._url(prefix), self.read_deadline_s, self._where) from None
        except Exception as exc:
            raise self._translate(exc, "list", self._url(prefix), missing=None) from exc
        return keys

    def _get(
        self, key: str, *, missing: ModelapiError, max_bytes: int, declared: bool = False
    ) -> bytes:
        """An object's bytes, at most `max_bytes` of them (refused before reading if S3 says more).

        `declared` says `max_bytes` is the manifest's size of the file, which also gives the
        read a second of deadline per MiB.
        """
        deadline_s = self.read_deadline_s + (max_bytes * _SECONDS_PER_BYTE if declared else 0)
        try:
            if self._reader is not None:
                return self._reader.get(key, max_bytes=max_bytes, deadline_s=deadline_s)
            return self._s3_client.get(self.bucket, key, max_bytes=max_bytes, deadline_s=deadline_s)
        except TooLarge as exc:
            raise size_error(
                key.rsplit("/", 1)[-1], exc.size, max_bytes, declared=declared
            ) from None
        except DeadlinePassed:
            raise too_slow("read", self._url(key), deadline_s, self._where) from None
        except ModelapiError:
            raise
        except Exception as exc:
            raise self._translate(exc, "read", self._url(key), missing=missing) from exc

    def _translate(
        self, exc: Exception, action: str, target: str, *, missing: ModelapiError | None
    ) -> ModelapiError:
        return store_error(exc, action, target, self._where, missing=missing)

    def _put(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except Exception as exc:
            raise self._translate(exc, "write", self._url(key), missing=None) from exc

    def _create(self, key: str, data: bytes) -> bool:
        """Create an object only if the key is free; return False when it already exists."""
        for attempt in range(_CONFLICT_RETRIES + 1):
            try:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            except Exception as exc:
                code = error_code(exc)
                if code == "PreconditionFailed":
                    return False
                if code == "ConditionalRequestConflict" and attempt < _CONFLICT_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise self._translate(exc, "write", self._url(key), missing=None) from exc
            return True
        raise AssertionError("unreachable")  # pragma: no cover


def _parse_uri(uri: str) -> tuple[str, str]:
    bucket, _, path = uri.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"store {uri[:80]!r} does not name a valid S3 bucket: use s3://bucket/prefix"
        )
    prefix = "/".join(part for part in path.split("/") if part)
    if any(part in {".", ".."} for part in prefix.split("/")):
        raise ConfigError(f"store {uri[:80]!r}: the prefix may not contain '.' or '..' parts")
    return bucket, prefix


def _version_of_manifest(key: str) -> int | None:
    number, _, rest = key.partition("/")
    if rest == MANIFEST and number.isdigit() and number.isascii() and len(number) <= 9:
        return int(number)
    return None


def _claim_body() -> bytes:
    claimed_at = datetime.now(UTC).isoformat(timespec="seconds")
    return msgspec.json.encode({"claimed_at": claimed_at})
