"""Settings, read once at each edge (CLI, ASGI app factory, Lambda import) and passed down.

This is the only module that reads `os.environ`. Precedence everywhere: flag > env > default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

import msgspec

from modelapi.errors import ConfigError

__all__ = ["ENV_PREFIX", "MIN_KEY_CHARS", "Settings"]

ENV_PREFIX = "MODELAPI_"
# A shorter key gets a warning at start-up: 16 random characters are about 80 bits or more.
MIN_KEY_CHARS = 16
_T = TypeVar("_T")


class Settings(msgspec.Struct, frozen=True):
    """Everything a serving process can be told; every field has a MODELAPI_<NAME> variable."""

    model: str = "diabetes"
    store: str = "./models"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 1024 * 1024
    max_batch_rows: int = 10_000
    api_key: str | None = None
    reload_interval_s: float = 30.0
    # Seconds each read of an S3 store may take, all attempts included; None: 20 s.
    store_deadline_s: float | None = None
    access_log: bool = False
    log_level: str = "info"
    # Answers computed from a request (predictions, errors) larger than this are refused.
    max_answer_bytes: int = 16 * 1024 * 1024
    # HTTP server limits (`modelapi serve`); the Lambda runtime and API Gateway have their own.
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_timeout_s: float = 5.0
    max_connections: int = 1024
    max_pipelined_requests: int = 32
    # "ignore": a request field or CSV column that is not a feature is ignored (and named in
    # the X-Ignored-Fields header), as pydantic and FastAPI do; "forbid": refused with a 422.
    extra_fields: str = "ignore"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read MODELAPI_* variables; raise ConfigError naming the variable on a bad value."""
        values: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            name = ENV_PREFIX + field.name.upper()
            raw = environ.get(name)
            # An empty variable is unset, except the key: an empty key must not open the API.
            if raw is None or (raw == "" and field.name != "api_key"):
                continue
            values[field.name] = _PARSERS[field.name](name, raw)
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some command-line flags applied; None is an unset flag.

        A bad value raises ConfigError naming the flag (`--workers`), not the variable.
        """
        kept = {key: value for key, value in changes.items() if value is not None}
        for key, value in kept.items():
            _PARSERS[key]("REF" if key == "model" else "--" + key.replace("_", "-"), str(value))
        return msgspec.structs.replace(self, **kept)

    def warnings(self) -> list[str]:
        """What start-up should warn about: settings that work but are weak."""
        if self.api_key is not None and len(self.api_key) < MIN_KEY_CHARS:
            return [
                f"{ENV_PREFIX}API_KEY is shorter than {MIN_KEY_CHARS} characters and can be"
                " guessed; use a random one (openssl rand -hex 32)"
            ]
        return []


def _ranged(
    kind: Callable[[str], _T], low: float, high: float, what: str
) -> Callable[[str, str], _T]:
    def parse(name: str, raw: str) -> _T:
        try:
            value = kind(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be {what}") from None
        if not low <= value <= high:  # type: ignore[operator]
            raise ConfigError(f"{name} must be {what}")
        return value

    return parse


def _text(name: str, raw: str) -> str:
    return raw


def _api_key(name: str, raw: str) -> str:
    # Printable ASCII only: an HTTP server reads header bytes as latin-1 and Lambda events as
    # UTF-8, so any other character would match on one adapter and not on the other. Spaces
    # are trimmed from header values, so a key holding one could never match either.
    if not raw.strip():
        raise ConfigError(
            f"{name} is set but empty, which would leave every route open: set a key of at"
            f" least {MIN_KEY_CHARS} characters (openssl rand -hex 32), or unset {name}"
        )
    if not all("!" <= char <= "~" for char in raw):
        raise ConfigError(
            f"{name} must be printable ASCII without spaces (letters, digits, punctuation);"
            " use a random one (openssl rand -hex 32)"
        )
    return raw


def _flag(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be one of 1, 0, true, false, yes, no, on, off")


def _log_level(name: str, raw: str) -> str:
    lowered = raw.strip().lower()
    if lowered not in {"critical", "error", "warning", "info", "debug"}:
        raise ConfigError(f"{name} must be one of critical, error, warning, info, debug")
    return lowered


def _extra_fields(name: str, raw: str) -> str:
    lowered = raw.strip().lower()
    if lowered not in {"ignore", "forbid"}:
        raise ConfigError(f"{name} must be ignore or forbid")
    return lowered


_PARSERS: dict[str, Callable[[str, str], object]] = {
    "model": _text,
    "store": _text,
    "host": _text,
    "port": _ranged(int, 0, 65535, "an integer in 0-65535"),
    "workers": _ranged(int, 1, 512, "an integer in 1-512"),
    "max_body_bytes": _ranged(int, 1, 2**40, "a positive integer (bytes)"),
    "max_batch_rows": _ranged(int, 1, 2**31, "a positive integer"),
    "api_key": _api_key,
    "reload_interval_s": _ranged(
        float, 0, 86400 * 365, "a number of seconds >= 0 (0 turns reloading off)"
    ),
    "store_deadline_s": _ranged(float, 0.1, 3600, "a number of seconds in 0.1-3600"),
    "access_log": _flag,
    "log_level": _log_level,
    "max_answer_bytes": _ranged(int, 1024, 2**40, "an integer >= 1024 (bytes)"),
    "max_header_bytes": _ranged(int, 1024, 2**24, "an integer in 1024-16777216 (bytes)"),
    "max_headers": _ranged(int, 1, 10_000, "an integer in 1-10000"),
    "header_timeout_s": _ranged(float, 0.1, 3600, "a number of seconds in 0.1-3600"),
    "body_timeout_s": _ranged(float, 0.1, 3600, "a number of seconds in 0.1-3600"),
    "keep_alive_timeout_s": _ranged(float, 0.1, 3600, "a number of seconds in 0.1-3600"),
    "max_connections": _ranged(int, 1, 1_000_000, "an integer in 1-1000000"),
    "max_pipelined_requests": _ranged(int, 1, 10_000, "an integer in 1-10000"),
    "extra_fields": _extra_fields,
}
