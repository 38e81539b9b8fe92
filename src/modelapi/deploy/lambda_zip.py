"""The AWS Lambda package: a zip of the slim runtime for one model, plus its deploy templates.

The zip holds modelapi's serving modules (found by following their imports from
`modelapi.aws_lambda` and the served format's module, so the CLI, training code, the client,
exporters and other formats never get in: `modules`), the wheels
the model's format needs at run time built for the Lambda runtime (manylinux, CPython of the
target version and architecture, never this machine's: `wheels`), and optionally the bundle
itself (with, for a large tree model, its generated code compiled for the target:
`precompile`). boto3 is not packaged: the Lambda Python runtime provides it. Entries are sorted and
time-stamped 1980-01-01, so the same inputs give the same bytes.

Beside the zip go `template.yaml` (AWS SAM) and `serverless.yml` (Serverless Framework v3),
both granting read access to the model's keys only (`deploy_templates`).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelapi._version import __version__
from modelapi.bundle import Bundle, write_bundle
from modelapi.deploy.bytecode import compile_sources, find_interpreter
from modelapi.deploy.modules import PACKAGE_ROOT, module_file, runtime_modules
from modelapi.deploy.precompile import precompiled_entries
from modelapi.deploy.stacks import check_store_for_lambda, write_templates
from modelapi.deploy.target import LambdaTarget, check_built_for, wheel_tags
from modelapi.deploy.wheels import install_wheels, requirements_for
from modelapi.errors import PackagingError
from modelapi.formats import FORMATS, format_of

# The target, module, wheel and template names are re-exported: they were first defined here.
__all__ = [
    "MAX_UNZIPPED_BYTES",
    "MAX_ZIPPED_BYTES",
    "LambdaPackage",
    "LambdaTarget",
    "build_lambda_zip",
    "check_store_for_lambda",
    "requirements_for",
    "runtime_modules",
    "unpack_lambda_zip",
    "write_templates",
]

# Lambda's limits for a zip deployment package: zipped when uploaded in the API call itself
# (not through S3), and unzipped always.
MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024
_EMBEDDED_FOLDER = "modelapi-model"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Installer records that name this machine or the tool, not the package.
_SKIPPED_DIST_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


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


def build_lambda_zip(
    bundle: Bundle,
    out_dir: Path,
    *,
    target: LambdaTarget | None = None,
    embed: bool = False,
    cache_dir: Path | None = None,
    compile_with: str | None = None,
    direct_upload: bool = False,
) -> LambdaPackage:
    """Build `out_dir/lambda.zip` for a bundle's format.

    The unzipped size is always held to Lambda's 250 MB; the zipped size to 50 MB only with
    `direct_upload` (the zip sent in the API call itself, as `aws lambda update-function-code
    --zip-file` does): SAM and the Serverless Framework upload it to S3 first, where that quota
    does not apply. Raises PackagingError when wheels cannot be fetched, do not fit the target,
    or the zip would be past the limits of its upload path.
    """
    target = target or LambdaTarget()
    serving = bundle.manifest.serving
    requirements = requirements_for(serving)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="modelapi-lambda-") as scratch:
        site = install_wheels(requirements, target, Path(scratch) / "site", cache_dir)
        entries: dict[str, Path | bytes] = {}
        for path in _files(site):
            entries[path.relative_to(site).as_posix()] = path
        check_built_for(
            target,
            entries,
            [
                (name, wheel_tags(_read_text(source)))
                for name, source in entries.items()
                if name.endswith(".dist-info/WHEEL")
            ],
        )
        for module in runtime_modules(*_packaged_formats(serving, embed), s3=not embed):
            source = module_file(module)
            assert source is not None
            entries[source.relative_to(PACKAGE_ROOT.parent).as_posix()] = source
        entries["modelapi/py.typed"] = b""
        entries[f"modelapi-{__version__}.dist-info/METADATA"] = (
            f"Metadata-Version: 2.1\nName: modelapi\nVersion: {__version__}\n".encode()
        )
        python = find_interpreter(target.python, compile_with)
        compiled = compile_sources(python, entries) if python is not None else {}
        entries.update(compiled)
        if embed:
            # The embedded model's tree code, compiled for the target (its cold start's bulk).
            entries.update(precompiled_entries(bundle, python))
            folder = write_bundle(bundle, Path(scratch) / _EMBEDDED_FOLDER)
            for path in _files(folder):
                entries[f"{_EMBEDDED_FOLDER}/{path.relative_to(folder).as_posix()}"] = path
        unzipped = sum(_size(source) for source in entries.values())
        if unzipped > MAX_UNZIPPED_BYTES:
            raise PackagingError(_too_big("unzipped", unzipped, MAX_UNZIPPED_BYTES, entries))
        zip_path = out_dir / "lambda.zip"
        _write_zip(zip_path, entries)
    zipped = zip_path.stat().st_size
    if direct_upload and zipped > MAX_ZIPPED_BYTES:
        zip_path.unlink()
        raise PackagingError(_too_big("zipped", zipped, MAX_ZIPPED_BYTES, entries))
    return LambdaPackage(
        zip_path, zipped, unzipped, len(entries), tuple(requirements), embed, bool(compiled)
    )


def _packaged_formats(serving: str, embed: bool) -> list[str]:
    """The formats whose modules a zip carries: its model's alone when the model is embedded.

    A zip reading its model from S3 carries every format that the same wheels serve, so that an
    alias moved to a version in another such format (a forest after a linear model) still loads.
    """
    if embed:
        return [serving]
    wheels = set(format_of(serving).wheels)
    return [f.file_name for f in FORMATS if set(f.wheels) <= wheels]


def unpack_lambda_zip(package: LambdaPackage, folder: Path) -> list[str]:
    """Unpack the zip's files into `folder`, as Lambda lays them out in /var/task.

    `osls invoke local` and serverless-offline import the handler from the service folder and
    never open the artifact, so `modelapi package lambda --local` puts them beside the
    templates (over the files of an earlier unpack). Returns the top-level names written.
    """
    with zipfile.ZipFile(package.zip_path) as archive:
        archive.extractall(folder)
        return sorted({name.split("/", 1)[0] for name in archive.namelist()})


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


def _read_text(source: Path | bytes) -> str:
    data = source if isinstance(source, bytes) else source.read_bytes()
    return data.decode("utf-8", "replace")


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
    if kind == "zipped":
        fix = "upload it through S3 (sam deploy and serverless deploy do), serve a linear model"
    else:
        fix = "serve a linear model"
    return (
        f"lambda.zip would be {_mb(size)} {kind}, over Lambda's {_mb(limit)} limit"
        f" (largest unzipped: {listed}); {fix}, or deploy a container image"
    )


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"
