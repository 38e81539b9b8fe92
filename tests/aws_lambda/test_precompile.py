"""Byte code in the Lambda zip: written by an interpreter of the target version, never stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelapi.deploy.bytecode import compile_sources, find_interpreter
from tests.conftest import require_tool

PYTHON_312 = find_interpreter("3.12")


def test_no_interpreter_for_an_unknown_version() -> None:
    assert find_interpreter("2.9") is None
    assert find_interpreter("2.9", "/nonexistent/python") is None


def test_the_running_interpreter_is_found_for_its_own_version() -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert find_interpreter(version, sys.executable) == sys.executable


def test_pyc_files_are_unchecked_hash_for_the_target_version(tmp_path: Path) -> None:
    if PYTHON_312 is None:
        require_tool("python3.12", "the Lambda runtime's Python 3.12 (pyenv install 3.12)")
    assert PYTHON_312 is not None
    compiled = compile_sources(
        PYTHON_312, {"pkg/__init__.py": b"", "pkg/mod.py": b"ANSWER = 42\n", "pkg/data.json": b"{}"}
    )
    assert sorted(compiled) == [
        "pkg/__pycache__/__init__.cpython-312.pyc",
        "pkg/__pycache__/mod.cpython-312.pyc",
    ]
    magic = subprocess.run(
        [
            PYTHON_312,
            "-c",
            "import importlib.util,sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pyc = compiled["pkg/__pycache__/mod.cpython-312.pyc"]
    assert pyc[:4].hex() == magic
    assert int.from_bytes(pyc[4:8], "little") == 0b01  # hash-based, not checked against the source

    # Only the byte code, with no source beside it, still imports in the target Python.
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    for name, data in compiled.items():
        (tmp_path / name).write_bytes(data)
    for name in ("__init__", "mod"):
        (tmp_path / "pkg" / f"{name}.py").write_text("raise SystemExit('source was read')\n")
    result = subprocess.run(
        [
            PYTHON_312,
            "-I",
            "-S",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import pkg.mod; print(pkg.mod.ANSWER)",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "42", result.stderr
