"""Settings: defaults, MODELAPI_* variables, and errors that name the variable."""

from __future__ import annotations

import pytest

from modelapi.config import Settings
from modelapi.errors import ConfigError


def test_defaults_serve_the_builtin_model_on_localhost() -> None:
    settings = Settings.from_env({})
    assert (settings.model, settings.host, settings.port) == ("diabetes", "127.0.0.1", 8000)
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.reload_interval_s == 30.0
    assert settings.api_key is None
    assert settings.access_log is False


def test_environment_overrides_each_field() -> None:
    settings = Settings.from_env(
        {
            "MODELAPI_MODEL": "diabetes@production",
            "MODELAPI_STORE": "s3://bucket/models",
            "MODELAPI_PORT": "9000",
            "MODELAPI_WORKERS": "4",
            "MODELAPI_MAX_BODY_BYTES": "2048",
            "MODELAPI_API_KEY": "s3cret",
            "MODELAPI_RELOAD_INTERVAL_S": "0",
            "MODELAPI_STORE_DEADLINE_S": "7.5",
            "MODELAPI_ACCESS_LOG": "yes",
            "MODELAPI_LOG_LEVEL": "WARNING",
            "MODELAPI_EXTRA_FIELDS": " Forbid",
        }
    )
    assert settings == Settings(
        model="diabetes@production",
        store="s3://bucket/models",
        port=9000,
        workers=4,
        max_body_bytes=2048,
        api_key="s3cret",
        reload_interval_s=0.0,
        store_deadline_s=7.5,
        access_log=True,
        log_level="warning",
        extra_fields="forbid",
    )


def test_empty_variables_are_ignored() -> None:
    assert Settings.from_env({"MODELAPI_PORT": "", "MODELAPI_MODEL": ""}) == Settings()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MODELAPI_PORT", "eighty", "MODELAPI_PORT must be an integer in 0-65535"),
        ("MODELAPI_PORT", "70000", "MODELAPI_PORT must be an integer in 0-65535"),
        ("MODELAPI_WORKERS", "0", "MODELAPI_WORKERS must be an integer in 1-512"),
        ("MODELAPI_MAX_BODY_BYTES", "-1", "MODELAPI_MAX_BODY_BYTES must be a positive integer"),
        ("MODELAPI_RELOAD_INTERVAL_S", "nan", "MODELAPI_RELOAD_INTERVAL_S must be a number"),
        ("MODELAPI_STORE_DEADLINE_S", "0", "MODELAPI_STORE_DEADLINE_S must be a number of sec"),
        ("MODELAPI_ACCESS_LOG", "maybe", "MODELAPI_ACCESS_LOG must be one of"),
        ("MODELAPI_LOG_LEVEL", "loud", "MODELAPI_LOG_LEVEL must be one of"),
        ("MODELAPI_EXTRA_FIELDS", "allow", "MODELAPI_EXTRA_FIELDS must be ignore or forbid"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        Settings.from_env({name: value})


def test_replace_keeps_unset_flags_and_checks_values() -> None:
    settings = Settings().replace(port=9001, host=None)
    assert (settings.port, settings.host) == (9001, "127.0.0.1")
    # Flags are named as the user typed them, not as the variable of the same setting.
    with pytest.raises(ConfigError, match=r"^--port must be an integer in 0-65535"):
        Settings().replace(port=-5)
    with pytest.raises(ConfigError, match=r"^--reload-interval-s must be"):
        Settings().replace(reload_interval_s=-1)
