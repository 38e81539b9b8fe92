"""The uvicorn options `modelapi serve` runs with."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
import uvicorn

from modelapi.cli.serve import run_server
from modelapi.config import Settings
from modelapi.server_limits import LimitedHttpToolsProtocol, ServerLimits


class _Server:
    """Stands in for uvicorn.Server: keeps the config and returns instead of serving."""

    configs: ClassVar[list[uvicorn.Config]] = []

    def __init__(self, config: uvicorn.Config) -> None:
        self.configs.append(config)

    def run(self, sockets: list[socket.socket]) -> None:
        return None


@pytest.mark.parametrize("access_log", [False, True])
def test_forwarded_headers_are_read_only_for_the_access_log(
    access_log: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the built-in model, whatever ./models holds
    monkeypatch.setattr(uvicorn, "Server", _Server)
    _Server.configs.clear()
    run_server(Settings(port=0, access_log=access_log, reload_interval_s=0))
    (config,) = _Server.configs
    options: dict[str, Any] = vars(config)
    assert options["proxy_headers"] is access_log
    assert options["access_log"] is access_log
    # uvicorn's httptools protocol, with the connection limits of the settings.
    assert (options["http"], options["loop"]) == (LimitedHttpToolsProtocol, "uvloop")
    # (The connection cap may be lowered to fit the descriptor limit; the rest is as set.)
    expected = ServerLimits.of(Settings())
    assert options["limits"].max_connections <= expected.max_connections
    assert msgspec.structs.replace(options["limits"], max_connections=0) == (
        msgspec.structs.replace(expected, max_connections=0)
    )
    assert options["timeout_keep_alive"] == Settings().keep_alive_timeout_s


def test_the_start_up_line_says_a_model_is_built_in(tmp_path: Path) -> None:
    from modelapi.cli.serve import _served
    from modelapi.source import ModelSource

    store = str(tmp_path / "models")
    source = ModelSource("diabetes", store)
    assert source.load()
    settings = Settings(store=store)
    assert _served(source, settings) == f"diabetes:1 (built in: {store} has no model diabetes)"
    missing = ModelSource("nosuchmodel", store)
    assert not missing.load()
    assert missing.is_missing
    assert _served(missing, settings) == "nosuchmodel (not loaded yet; the log says why)"
