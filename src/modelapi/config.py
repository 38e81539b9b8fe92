"""Settings, read once at each edge (CLI, ASGI app factory, Lambda import) and passed down.

This is the only module that reads `os.environ`. Precedence everywhere: flag > env > default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar

import msgspec

from modelapi.errors import ConfigError

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "MODELAPI_"
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
    access_log: bool = False
    log_level: str = "info"
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
            if raw is None or raw == "":
                continue
            values[field.name] = _PARSERS[field.name](name, raw)
        return cls(**values)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some fields changed; None values are ignored (an unset flag)."""
        kept = {key: value for key, value in changes.items() if value is not None}
        for key, value in kept.items():
            _PARSERS[key](ENV_PREFIX + key.upper(), str(value))
        return msgspec.structs.replace(self, **kept)


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
    "api_key": _text,
    "reload_interval_s": _ranged(
        float, 0, 86400 * 365, "a number of seconds >= 0 (0 turns reloading off)"
    ),
    "access_log": _flag,
    "log_level": _log_level,
    "extra_fields": _extra_fields,
}
