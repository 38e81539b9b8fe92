"""The wheels a serving format needs at run time, fetched for the Lambda runtime.

Wheels are built for the target (manylinux, CPython of the target version and architecture),
never for this machine, with uv when it is there and pip otherwise. A cache folder keyed on
the target and the requirements saves fetching them again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

from modelapi.deploy.target import LambdaTarget
from modelapi.errors import MissingExtra, PackagingError
from modelapi.formats import format_of

__all__ = ["install_wheels", "requirements_for"]


def requirements_for(serving: str) -> list[str]:
    """The wheels a serving format needs, pinned to the versions installed here when known."""
    pinned = []
    for name in format_of(serving).wheels:
        try:
            pinned.append(f"{name}=={installed_version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def install_wheels(
    requirements: list[str], target: LambdaTarget, scratch: Path, cache_dir: Path | None
) -> Path:
    """Install `requirements` for `target` into a folder (cached in `cache_dir`); return it.

    Raises PackagingError when they cannot be fetched, MissingExtra when neither uv nor pip is
    there to fetch them.
    """
    key = hashlib.sha256(f"{target.python} {target.arch} {sorted(requirements)}".encode())
    cached = cache_dir / key.hexdigest()[:24] if cache_dir is not None else None
    if cached is not None and (cached / ".complete").is_file():
        return cached
    dest = scratch if cached is None else cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
    shutil.rmtree(dest, ignore_errors=True)
    command = _installer(target, dest, requirements)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise PackagingError(
            f"could not fetch wheels for python{target.python} {target.arch} "
            f"({', '.join(requirements)}); is PyPI reachable? {' '.join(tail)}"
        )
    shutil.rmtree(dest / "bin", ignore_errors=True)
    if cached is None:
        return dest
    (dest / ".complete").write_text("")
    try:
        dest.rename(cached)
    except OSError:  # another build filled the cache first; use theirs
        shutil.rmtree(dest, ignore_errors=True)
    return cached


def _installer(target: LambdaTarget, dest: Path, requirements: list[str]) -> list[str]:
    uv = shutil.which("uv")
    if uv is None and importlib.util.find_spec("uv") is not None:
        uv_command = [sys.executable, "-m", "uv"]
    else:
        uv_command = [uv] if uv else []
    if uv_command:
        return [
            *uv_command,
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--python-platform",
            f"{target.machine}-manylinux2014",
            "--python-version",
            target.python,
            "--target",
            str(dest),
            *requirements,
        ]
    if importlib.util.find_spec("pip") is not None:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--platform",
            f"manylinux2014_{target.machine}",
            "--python-version",
            target.python,
            "--target",
            str(dest),
            *requirements,
        ]
    raise MissingExtra(
        "fetching wheels for the Lambda runtime needs uv or pip: pip install uv (or use a"
        " virtual environment that has pip)"
    )
