"""The wheels a serving format needs at run time, fetched for the Lambda runtime.

Wheels are fetched for the target, never for this machine: CPython of the target version, the
target architecture, and every manylinux tag the runtime's glibc accepts (up to manylinux_2_34
on Amazon Linux 2023, manylinux_2_26 on Amazon Linux 2), with uv when it is there and pip
otherwise. A cache folder keyed on the target and the requirements saves fetching them again.
When a requirement has no such wheel, the error names it, the tag asked for and the runtimes
that do have one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

from modelapi.deploy.target import ARCHES, PYTHON_VERSIONS, LambdaTarget
from modelapi.errors import MissingExtra, PackagingError
from modelapi.formats import format_of

__all__ = ["install_wheels", "platform_options", "requirements_for"]

# The glibc minor versions uv's --python-platform knows as manylinux_2_X targets.
_UV_GLIBC_MINORS = (17, 28, 31, 32, 33, 34)


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
        raise PackagingError(_why_not(requirements, target, result))
    shutil.rmtree(dest / "bin", ignore_errors=True)
    if cached is None:
        return dest
    (dest / ".complete").write_text("")
    try:
        dest.rename(cached)
    except OSError:  # another build filled the cache first; use theirs
        shutil.rmtree(dest, ignore_errors=True)
    return cached


def platform_options(target: LambdaTarget, installer: str) -> list[str]:
    """The platform options for `installer` (uv or pip): every manylinux the target accepts.

    uv expands `manylinux_2_X` to every older tag itself, but knows a fixed list of glibc
    versions (2.17, then 2.28 and later), so it is asked for the newest one not past the
    target's. pip expands nothing: it gets each `manylinux_2_Y` up to the target's glibc and
    the legacy aliases of manylinux_2_17, 2_12 and 2_5.
    """
    major, minor = target.glibc
    machine = target.machine
    if installer == "uv":
        known = max(m for m in _UV_GLIBC_MINORS if m <= minor)
        return ["--python-platform", f"{machine}-manylinux_{major}_{known}"]
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, 4, -1)]
    tags += [f"manylinux{legacy}_{machine}" for legacy in ("2014", "2010", "1")]
    return [option for tag in tags for option in ("--platform", tag)]


def _why_not(
    requirements: list[str], target: LambdaTarget, failed: subprocess.CompletedProcess[str]
) -> str:
    """Name the requirements that have no wheel for `target` and the runtimes that have one."""
    missing = [r for r in requirements if not _has_wheel(r, target)]
    if not missing:
        tail = " ".join((failed.stderr or failed.stdout).strip().splitlines()[-5:])
        return f"could not fetch wheels for {target.describe()} ({', '.join(requirements)}): {tail}"
    reasons = []
    for requirement in missing:
        working = _runtimes_with_wheel(requirement, target)
        if working:
            names = ", ".join(t.runtime for t in working)
            fix = (
                f"{names} on {working[0].arch} would work:"
                f" package with --python {working[0].python} --arch {working[0].arch}"
            )
        else:
            fix = (
                "no Lambda Python runtime has one (or the index cannot be reached): pin a"
                " version that ships manylinux wheels, or deploy a container image"
            )
        reasons.append(
            f"{requirement} has no wheel for {target.describe()}: it needs"
            f" {target.python_tag} with {target.platform_tag} or older; {fix}"
        )
    return "; ".join(reasons)


def _runtimes_with_wheel(requirement: str, target: LambdaTarget) -> list[LambdaTarget]:
    """The other runtimes with a wheel of `requirement`: on this architecture, else the other."""
    for arch in sorted(ARCHES, key=lambda arch: arch != target.arch):
        working = [
            LambdaTarget(python, arch)
            for python in PYTHON_VERSIONS
            if (python, arch) != (target.python, target.arch)
            and _has_wheel(requirement, LambdaTarget(python, arch))
        ]
        if working:
            return working
    return []


def _has_wheel(requirement: str, target: LambdaTarget) -> bool:
    with tempfile.TemporaryDirectory(prefix="modelapi-probe-") as scratch:
        command = _installer(target, Path(scratch), [requirement])
        command.insert(command.index("install") + 1, "--dry-run")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.returncode == 0


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
            *platform_options(target, "uv"),
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
            *platform_options(target, "pip"),
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
