"""Install what the benchmark needs: wrk, the peers, boto3 for Lambda, a serving install.

Everything goes under benchmarks/.work/ (never committed). A stamp file holds the hash of
what an install was made from, so a rerun reuses it and a changed pin rebuilds it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BASELINES",
    "LAMBDA_PYTHON",
    "Peer",
    "ensure_lambda_runtime",
    "ensure_peer",
    "ensure_wrk",
    "folder_bytes",
    "serving_install",
    "site_packages",
    "uv",
]

BASELINES = Path(__file__).resolve().parent / "baselines"
LAMBDA_PYTHON = Path(
    os.environ.get("MODELAPI_LAMBDA_PYTHON", "/root/.pyenv/versions/3.12.1/bin/python3.12")
)


def uv() -> list[str]:
    """The uv command: on PATH, else as a module of the system python3."""
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed: {(done.stderr or done.stdout).strip()[-800:]}")


def _stamp(folder: Path, *parts: str) -> tuple[Path, str]:
    return folder / ".bench-stamp", hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _is_current(folder: Path, *parts: str) -> bool:
    stamp, digest = _stamp(folder, *parts)
    return stamp.is_file() and stamp.read_text() == digest


def _mark_current(folder: Path, *parts: str) -> None:
    stamp, digest = _stamp(folder, *parts)
    stamp.write_text(digest)


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian's packages when it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise RuntimeError("wrk is missing and apt-get is not here: install wrk, then rerun")
    print("installing wrk (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        subprocess.run(command, env=env, check=True, capture_output=True)
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return found


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer's virtualenv and the model it serves, saved in the peer's own format."""

    name: str
    venv: Path
    model: Path

    def executable(self, name: str) -> str:
        """The path of a command the virtualenv installed (uvicorn, mlserver, bentoml)."""
        return str(self.venv / "bin" / name)


# Each peer's model file (or store) in its virtualenv, and the format pima_train.py writes.
_MODELS = {
    "naive": ("finalized_model.pkl", "pickle"),
    "mlserver": ("model.joblib", "joblib"),
    "bentoml": ("bentoml-home", "bentoml"),
}


def ensure_peer(work: Path, name: str, data: Path) -> Peer:
    """A peer's virtualenv (from baselines/requirements-NAME.txt) and its model, trained on `data`.

    The virtualenv is kept between runs while its pins are unchanged; the model is trained
    again on every run, as the contract trains it.
    """
    venv = work / name
    requirements = BASELINES / f"requirements-{name}.txt"
    python = venv / "bin" / "python"
    pins = requirements.read_text() + "\ncompiled"
    if not _is_current(venv, pins):
        print(f"creating the {name} peer's virtualenv...", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        _run([*uv(), "venv", "-q", "--python", sys.executable, str(venv)], f"uv venv ({name})")
        # Byte-compiled at install, so no cold start pays for compiling.
        install = [*uv(), "pip", "install", "-q", "--compile-bytecode", "--python", str(python)]
        _run([*install, "-r", str(requirements)], f"installing the {name} peer")
        _mark_current(venv, pins)
    file_name, kind = _MODELS[name]
    model = venv / file_name
    script = BASELINES / "pima_train.py"
    _run([str(python), str(script), str(data), kind, str(model)], f"training the {name} model")
    return Peer(name, venv, model)


def ensure_lambda_runtime(work: Path) -> Path:
    """A folder holding boto3 alone for CPython 3.12, byte-compiled as Lambda's runtime has it."""
    folder = work / "lambda-runtime"
    if _is_current(folder, "boto3", str(LAMBDA_PYTHON)):
        return folder
    print("installing boto3 for the Lambda runtime folder...", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    _run(
        [
            *uv(),
            "pip",
            "install",
            "-q",
            "--only-binary",
            ":all:",
            "--python-platform",
            "x86_64-manylinux2014",
            "--python-version",
            "3.12",
            "--target",
            str(folder),
            "--compile-bytecode",
            "--python",
            str(LAMBDA_PYTHON),
            "boto3",
        ],
        "installing boto3 for Python 3.12",
    )
    _mark_current(folder, "boto3", str(LAMBDA_PYTHON))
    return folder


def folder_bytes(folder: Path) -> int:
    """The total size of the files under a folder (symbolic links not followed)."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def site_packages(venv: Path) -> Path:
    """The site-packages folder of a virtualenv."""
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages under {venv}")
    return found[0]


def serving_install(work: Path, repo: Path) -> dict[str, object]:
    """Install `modelapi[server]` alone into a new virtualenv; its size and packages."""
    venv = work / "serving-install"
    shutil.rmtree(venv, ignore_errors=True)
    _run([*uv(), "venv", "-q", "--python", sys.executable, str(venv)], "uv venv (serving)")
    python = venv / "bin" / "python"
    _run(
        [*uv(), "pip", "install", "-q", "--python", str(python), f"{repo}[server]"],
        "installing modelapi[server]",
    )
    listed = subprocess.run(
        [*uv(), "pip", "list", "--python", str(python), "--format", "freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    site = site_packages(venv)
    return {"site_packages_bytes": folder_bytes(site), "packages": sorted(listed)}
