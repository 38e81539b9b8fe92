"""Byte code for a Lambda package, compiled by an interpreter of the target Python version.

Lambda's /var/task is read-only, so Python cannot cache byte code there: without `.pyc` files in
the zip every cold start compiles modelapi and msgspec again (about half of an embedded cold
start). The magic number in a `.pyc` is per Python version, so only an interpreter of the
target version can write them; when none is found, the package is built without them.
Unchecked-hash `.pyc` files are used because the zip's fixed timestamps would otherwise make
the source-mtime check fail.

The sources stay in the zip beside their byte code, on purpose: a traceback in CloudWatch then
quotes the failing line, not only its number, and a zip built without a target interpreter
still works. Byte code alone (sourceless `.pyc` files in place of the `.py` ones) would make
the Pima zip about 115 KB smaller, and measured no faster to start.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["compile_sources", "find_interpreter"]

_TASK_ROOT = "/var/task"


def find_interpreter(version: str, explicit: str | None = None) -> str | None:
    """A working `python{version}` (explicit path, PATH, then pyenv's versions), or None."""
    candidates: list[str] = [explicit] if explicit else []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates.extend(
        str(p) for p in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    )
    for candidate in candidates:
        if _reports_version(candidate, version):
            return candidate
    return None


def _reports_version(python: str, version: str) -> bool:
    try:
        result = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0 and result.stdout.strip() == version


def compile_sources(python: str, sources: Mapping[str, Path | bytes]) -> dict[str, bytes]:
    """Compile the `.py` entries of a package; return archive name -> `.pyc` bytes.

    `sources` maps archive names (e.g. `modelapi/service.py`) to their content. Tracebacks name
    the files as Lambda sees them, under /var/task.
    """
    with tempfile.TemporaryDirectory(prefix="modelapi-pyc-") as scratch:
        root = Path(scratch)
        for name, source in sources.items():
            if not name.endswith(".py"):
                continue
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source if isinstance(source, bytes) else source.read_bytes())
        result = subprocess.run(
            [
                python,
                "-I",
                "-m",
                "compileall",
                "-q",
                "--invalidation-mode",
                "unchecked-hash",
                "-s",
                str(root),
                "-p",
                _TASK_ROOT,
                str(root),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            return {}
        return {path.relative_to(root).as_posix(): path.read_bytes() for path in _pycs(root)}


def _pycs(root: Path) -> Iterator[Path]:
    yield from sorted(root.rglob("__pycache__/*.pyc"))
