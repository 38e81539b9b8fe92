"""The CLI's edge: usage errors are one line with a pointer to --help, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelapi", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("frobnicate",), "error: No such command 'frobnicate'. (see 'modelapi --help')"),
        (
            ("serve", "--port", "abc"),
            "error: Invalid value for '--port': 'abc' is not a valid integer."
            " (see 'modelapi serve --help')",
        ),
        (
            ("models", "copy", "diabetes"),
            "error: Missing option '--to'. (see 'modelapi models copy --help')",
        ),
    ],
)
def test_usage_errors_are_one_line(args: tuple[str, ...], expected: str) -> None:
    result = _run(*args)
    assert result.returncode == 2
    assert result.stderr.strip() == expected
    assert "Traceback" not in result.stderr


def test_help_and_version() -> None:
    result = _run("--help")
    assert result.returncode == 0
    for command in ("train", "models", "serve", "predict", "package", "import"):
        assert f"  {command} " in result.stdout
    version = _run("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("modelapi, version ")


@pytest.mark.parametrize("command", ["serve", "predict", "models", "train"])
def test_a_command_loads_only_its_own_module(command: str) -> None:
    script = (
        "import sys\n"
        "from modelapi.cli import main\n"
        f"main([{command!r}, '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('modelapi.cli.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    # Only the command's own module, and the options every command shares.
    loaded = result.stdout.strip().splitlines()[-1]
    assert loaded == str(sorted(["modelapi.cli.options", f"modelapi.cli.{command}"]))


@pytest.mark.parametrize("missing", ["numpy", "pandas", "sklearn"])
def test_training_without_the_train_extra_names_the_extra(
    missing: str, tmp_path: Path, pima_csv: Path
) -> None:
    # A serving-only install: the module is made unimportable, as it is when not installed.
    script = (
        "import sys\n"
        f"sys.modules[{missing!r}] = None\n"
        "from modelapi.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "train", str(pima_csv), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {missing} is needed here: pip install 'modelapi[train]'"
    )
    assert not (tmp_path / "s").exists(), "nothing is written"
