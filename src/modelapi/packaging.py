"""The AWS Lambda package: a zip of the slim runtime for one model, plus its deploy templates.

The zip holds modelapi's serving modules (found by following their imports from
`modelapi.aws_lambda`, so the CLI and training code never get in), the wheels the model's
format needs at run time built for the Lambda runtime (manylinux, CPython of the target version
and architecture, never this machine's), and optionally the bundle itself. boto3 is not
packaged: the Lambda Python runtime provides it. Entries are sorted and time-stamped 1980-01-01,
so the same inputs give the same bytes.

Beside the zip go `template.yaml` (AWS SAM) and `serverless.yml` (Serverless Framework v3),
both granting read access to the model's keys only.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Literal

from modelapi import __version__
from modelapi.bundle import Bundle, write_bundle
from modelapi.errors import ConfigError, MissingExtra, PackagingError
from modelapi.precompile import compile_sources, find_interpreter

__all__ = [
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIPPED_BYTES",
    "LambdaPackage",
    "LambdaTarget",
    "build_lambda_zip",
    "check_store_for_lambda",
    "requirements_for",
    "runtime_modules",
    "write_templates",
]

# Lambda's limits for a zip deployment package (direct upload / S3, and unzipped).
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
Arch = Literal["x86_64", "arm64"]

_PACKAGE_ROOT = Path(__file__).resolve().parent
_ENTRY_MODULES = ("modelapi.aws_lambda", "modelapi.store.local", "modelapi.store.s3")
# Reached only through lazy imports that serving never runs (`modelapi.train()` and the CLI):
# the training stack is never packaged.
_NEVER_PACKAGED = (
    "modelapi.cli",
    "modelapi.data",
    "modelapi.importing",
    "modelapi.packaging",
    "modelapi.report",
    "modelapi.training",
    "modelapi.formats.export",
    "modelapi.formats.skops",
)
# Modules the predictor imports by name for one serving format, and the wheels they need.
_FORMAT_MODULES = {"model.onnx": ("modelapi.formats.onnx",)}
_FORMAT_REQUIREMENTS = {
    "linear.json": ("msgspec",),
    "model.onnx": ("msgspec", "onnxruntime", "numpy"),
}
_EMBEDDED_FOLDER = "modelapi-model"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_TEMPLATES = _PACKAGE_ROOT / "templates"
_PREFIX = re.compile(r"([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)?")
# Installer records that name this machine or the tool, not the package.
_SKIPPED_DIST_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


@dataclass(frozen=True, slots=True)
class LambdaTarget:
    """The Lambda runtime a package is built for."""

    python: str = "3.12"
    arch: Arch = "x86_64"

    @property
    def machine(self) -> str:
        """The manylinux machine name: x86_64 or aarch64."""
        return "aarch64" if self.arch == "arm64" else "x86_64"


@dataclass(frozen=True, slots=True)
class LambdaPackage:
    """A built package: where it is, its sizes, and what went in."""

    zip_path: Path
    zipped_bytes: int
    unzipped_bytes: int
    n_files: int
    requirements: tuple[str, ...]
    embedded: bool
    precompiled: bool = False


def runtime_modules(serving: str = "linear.json") -> list[str]:
    """The modelapi modules a Lambda serving `serving` imports, found by following imports."""
    wanted = [*_ENTRY_MODULES, *_FORMAT_MODULES.get(serving, ())]
    seen: set[str] = set()
    while wanted:
        name = wanted.pop()
        path = _module_file(name)
        if name in seen or path is None or _is_never_packaged(name):
            continue
        seen.add(name)
        parent = name.rpartition(".")[0]
        if parent:
            wanted.append(parent)
        wanted.extend(_imports_of(path, name))
    return sorted(seen)


def requirements_for(serving: str) -> list[str]:
    """The wheels a serving format needs, pinned to the versions installed here when known."""
    names = _FORMAT_REQUIREMENTS.get(serving)
    if names is None:
        raise PackagingError(f"{serving}: no Lambda runtime is known for this serving format")
    pinned = []
    for name in names:
        try:
            pinned.append(f"{name}=={installed_version(name)}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def build_lambda_zip(
    bundle: Bundle,
    out_dir: Path,
    *,
    target: LambdaTarget | None = None,
    embed: bool = False,
    cache_dir: Path | None = None,
    compile_with: str | None = None,
) -> LambdaPackage:
    """Build `out_dir/lambda.zip` for a bundle's format.

    Raises PackagingError when wheels cannot be fetched or the zip would be past Lambda's limits.
    """
    target = target or LambdaTarget()
    serving = bundle.manifest.serving
    requirements = requirements_for(serving)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="modelapi-lambda-") as scratch:
        site = _install(requirements, target, Path(scratch) / "site", cache_dir)
        entries: dict[str, Path | bytes] = {}
        for path in _files(site):
            entries[path.relative_to(site).as_posix()] = path
        for module in runtime_modules(serving):
            source = _module_file(module)
            assert source is not None
            entries[source.relative_to(_PACKAGE_ROOT.parent).as_posix()] = source
        entries["modelapi/py.typed"] = b""
        entries[f"modelapi-{__version__}.dist-info/METADATA"] = (
            f"Metadata-Version: 2.1\nName: modelapi\nVersion: {__version__}\n".encode()
        )
        python = find_interpreter(target.python, compile_with)
        compiled = compile_sources(python, entries) if python is not None else {}
        entries.update(compiled)
        if embed:
            folder = write_bundle(bundle, Path(scratch) / _EMBEDDED_FOLDER)
            for path in _files(folder):
                entries[f"{_EMBEDDED_FOLDER}/{path.relative_to(folder).as_posix()}"] = path
        unzipped = sum(_size(source) for source in entries.values())
        if unzipped > MAX_UNZIPPED_BYTES:
            raise PackagingError(_too_big("unzipped", unzipped, MAX_UNZIPPED_BYTES, entries))
        zip_path = out_dir / "lambda.zip"
        _write_zip(zip_path, entries)
    zipped = zip_path.stat().st_size
    if zipped > MAX_ZIPPED_BYTES:
        zip_path.unlink()
        raise PackagingError(_too_big("zipped", zipped, MAX_ZIPPED_BYTES, entries))
    return LambdaPackage(
        zip_path, zipped, unzipped, len(entries), tuple(requirements), embed, bool(compiled)
    )


def _is_never_packaged(name: str) -> bool:
    return any(name == never or name.startswith(never + ".") for never in _NEVER_PACKAGED)


def _module_file(name: str) -> Path | None:
    relative = Path(*name.split(".")[1:])
    for candidate in (_PACKAGE_ROOT / relative / "__init__.py", _PACKAGE_ROOT / f"{relative}.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports_of(path: Path, module: str) -> Iterator[str]:
    tree = ast.parse(path.read_bytes(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            node.body = []  # typing-only imports are not loaded at run time
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "modelapi")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            if base.split(".")[0] == "modelapi":
                yield base
                yield from (f"{base}.{a.name}" for a in node.names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


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


def _install(
    requirements: list[str], target: LambdaTarget, scratch: Path, cache_dir: Path | None
) -> Path:
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


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if (
            path.is_file()
            and "__pycache__" not in parts
            and path.suffix != ".pyc"
            and not parts[0].startswith(".")
            and not (parts[0].endswith(".dist-info") and path.name in _SKIPPED_DIST_FILES)
        ):
            yield path


def _size(source: Path | bytes) -> int:
    return len(source) if isinstance(source, bytes) else source.stat().st_size


def _write_zip(zip_path: Path, entries: dict[str, Path | bytes]) -> None:
    temporary = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            source = entries[name]
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            # Readable by the runtime's user; shared libraries also executable.
            mode = 0o755 if ".so" in Path(name).suffixes else 0o644
            info.external_attr = (0o100000 | mode) << 16
            data = source if isinstance(source, bytes) else source.read_bytes()
            archive.writestr(info, data, compresslevel=9)
    os.replace(temporary, zip_path)


def _too_big(kind: str, size: int, limit: int, entries: dict[str, Path | bytes]) -> str:
    by_top: dict[str, int] = {}
    for name, source in entries.items():
        top = name.split("/", 1)[0]
        by_top[top] = by_top.get(top, 0) + _size(source)
    biggest = sorted(by_top.items(), key=lambda item: -item[1])[:3]
    listed = ", ".join(f"{name} {_mb(n)}" for name, n in biggest)
    return (
        f"lambda.zip would be {_mb(size)} {kind}, over Lambda's {_mb(limit)} limit"
        f" (largest unzipped: {listed}); serve a linear model, or deploy a container image"
    )


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def check_store_for_lambda(store_uri: str) -> tuple[str, str]:
    """Split an `s3://bucket/prefix` store into (bucket, prefix); refuse anything else."""
    if not store_uri.startswith("s3://"):
        raise ConfigError(f"store {store_uri[:80]!r} is not an s3:// store that Lambda can read")
    bucket, _, prefix = store_uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ConfigError("the store needs a bucket name, as in s3://bucket/models")
    return bucket, prefix.strip("/")


def write_templates(
    out_dir: Path,
    *,
    model_ref: str,
    model_name: str,
    store_uri: str | None,
    target: LambdaTarget | None = None,
    zip_name: str = "lambda.zip",
    memory_mb: int = 256,
) -> list[Path]:
    """Write template.yaml (AWS SAM) and serverless.yml (v3) for the zip; None = embedded model."""
    target = target or LambdaTarget()
    bucket, prefix = check_store_for_lambda(store_uri) if store_uri else ("", "")
    if not _PREFIX.fullmatch(prefix):
        raise ConfigError(
            f"store prefix {prefix[:80]!r} cannot be used in an IAM policy: use letters, digits,"
            " '_', '.', '-' and '/' only"
        )
    keys = f"{prefix}/{model_name}" if prefix else model_name
    environment = [f"    MODELAPI_MODEL: {json.dumps(model_ref)}"]
    iam = ""
    if store_uri:
        environment.append(f"    MODELAPI_STORE: {json.dumps(f's3://{bucket}/{prefix}')}")
        iam = _SERVERLESS_IAM.format(
            objects=json.dumps(f"arn:aws:s3:::{bucket}/{keys}/*"),
            bucket=json.dumps(f"arn:aws:s3:::{bucket}"),
            prefix=json.dumps(f"{keys}/*"),
        )
    values = {
        "model_ref": model_ref,
        "model_name": model_name,
        "bucket": bucket,
        "prefix": prefix,
        "service": "modelapi-" + re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-"),
        "runtime": f"python{target.python}",
        "arch": target.arch,
        "zip_name": zip_name,
        "memory_mb": str(memory_mb),
        "environment": "\n".join(environment),
        "iam": iam,
    }
    written = []
    for name in ("template.yaml", "serverless.yml"):
        text = (_TEMPLATES / name).read_text()
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        if "{{" in text:
            raise PackagingError(f"{name}: a placeholder was left unfilled; this is a bug")
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written


# Same statements as template.yaml: this model's keys only, listing limited to them too.
_SERVERLESS_IAM = """  iam:
    role:
      statements:
        - Effect: Allow
          Action: s3:GetObject
          Resource: {objects}
        - Effect: Allow
          Action: s3:ListBucket
          Resource: {bucket}
          Condition:
            StringLike:
              s3:prefix: {prefix}
"""
