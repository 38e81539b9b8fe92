"""require_tool: a missing tool skips a test, or fails it when MODELAPI_REQUIRE_TOOLS=1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_TOOLS_ENV, require_tool


def test_a_tool_that_is_there_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_TOOLS_ENV, "1")
    assert require_tool(sys.executable, "the test's own interpreter") == sys.executable
    assert require_tool("sh", "a shell").endswith("/sh")


def test_a_missing_tool_skips_naming_the_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(REQUIRE_TOOLS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-such-tool-3f9 is missing: install it"):
        require_tool("no-such-tool-3f9", "install it")
    with pytest.raises(pytest.skip.Exception, match="is missing"):
        require_tool(tmp_path / "bin" / "absent", "install it")


def test_a_missing_tool_fails_when_tools_are_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_TOOLS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=r"MODELAPI_REQUIRE_TOOLS=1 requires it"):
        require_tool("no-such-tool-3f9", "install it")
