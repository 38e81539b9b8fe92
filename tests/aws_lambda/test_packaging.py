"""`modelapi package lambda`: a small, deterministic zip of the slim runtime for the target."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from modelapi.bundle import Bundle
from modelapi.cli import main
from modelapi.deploy import lambda_zip as packaging
from modelapi.deploy import wheels
from modelapi.deploy.lambda_zip import (
    MAX_ZIPPED_BYTES,
    LambdaPackage,
    LambdaTarget,
    build_lambda_zip,
    runtime_modules,
)
from modelapi.errors import BundleError, MissingExtra, PackagingError
from tests.aws_lambda.conftest import modelapi_sources

FORBIDDEN_TOP_LEVEL = {"numpy", "sklearn", "scipy", "pandas", "click", "boto3", "botocore"}
FORBIDDEN_MODELAPI = (
    "modelapi/cli/",
    "modelapi/training/",
    "modelapi/deploy/",
    "modelapi/scoring/",
)


def names(package: LambdaPackage) -> list[str]:
    with zipfile.ZipFile(package.zip_path) as archive:
        return archive.namelist()


def test_zip_holds_the_slim_runtime_only(embedded_zip: LambdaPackage) -> None:
    entries = names(embedded_zip)
    tops = {name.split("/", 1)[0] for name in entries}
    assert not tops & FORBIDDEN_TOP_LEVEL
    assert not [n for n in entries if n.startswith(FORBIDDEN_MODELAPI)]
    assert "modelapi/aws_lambda/__init__.py" in entries
    assert "modelapi/store/local.py" in entries
    assert "modelapi-model/manifest.json" in entries
    assert "modelapi-model/linear.json" in entries
    # Byte code only for the target Python, and only beside a source file that is in the zip.
    for name in (n for n in entries if "__pycache__" in n or n.endswith(".pyc")):
        folder, _, file = name.rpartition("/__pycache__/")
        module, _, tag = file.partition(".")
        assert tag == "cpython-312.pyc", name
        assert f"{folder}/{module}.py" in entries, name
    shared = [n for n in entries if n.endswith(".so")]
    assert shared
    assert all("cpython-312-x86_64-linux-gnu" in n for n in shared)
    assert embedded_zip.zipped_bytes < 1024 * 1024
    assert embedded_zip.requirements == tuple(
        r for r in embedded_zip.requirements if "msgspec" in r
    )


def test_s3_zip_has_no_model(s3_zip: LambdaPackage) -> None:
    assert not [n for n in names(s3_zip) if n.startswith("modelapi-model/")]


def test_s3_zip_carries_every_format_its_wheels_serve(s3_zip: LambdaPackage) -> None:
    # The alias may move to a pipeline.json version: msgspec serves it too, onnxruntime is not here.
    formats = {n for n in modelapi_sources(s3_zip) if n.startswith("modelapi/formats/")}
    assert {"modelapi/formats/linear.py", "modelapi/formats/pipeline/compiler.py"} <= formats
    assert not [n for n in formats if n.startswith("modelapi/formats/pipeline/sklearn_")]
    assert "modelapi/formats/onnx.py" not in formats
    assert "modelapi/client.py" not in modelapi_sources(s3_zip)


def test_zip_is_deterministic(
    embedded_zip: LambdaPackage, builtin_bundle: Bundle, wheel_cache: Path, tmp_path: Path
) -> None:
    again = build_lambda_zip(builtin_bundle, tmp_path, embed=True, cache_dir=wheel_cache)
    assert again.zip_path.read_bytes() == embedded_zip.zip_path.read_bytes()
    with zipfile.ZipFile(again.zip_path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_arm64_gets_aarch64_wheels(
    builtin_bundle: Bundle, wheel_cache: Path, tmp_path: Path
) -> None:
    target = LambdaTarget("3.12", "arm64")
    built = build_lambda_zip(builtin_bundle, tmp_path, target=target, cache_dir=wheel_cache)
    shared = [n for n in names(built) if n.endswith(".so")]
    assert shared
    assert all("cpython-312-aarch64-linux-gnu" in n for n in shared)


def test_runtime_modules_follow_imports_and_skip_the_cli() -> None:
    modules = runtime_modules()
    assert {"modelapi.aws_lambda", "modelapi.service", "modelapi.store.s3"} <= set(modules)
    never = {"modelapi.cli", "modelapi.deploy", "modelapi.scoring", "modelapi.training"}
    assert not [m for m in modules if ".".join(m.split(".")[:2]) in never]
    assert "modelapi.formats.skops" not in modules
    # Imported by name (a string), not by an import statement: found all the same.
    lazy = {
        "modelapi.routes.openapi",
        "modelapi.routes.swagger",
        "modelapi.routes.page",
        "modelapi.routes.v2",
    }
    assert lazy <= set(modules)
    # Without a served format, the modules of every one.
    assert {f"modelapi.formats.{name}" for name in ("base", "linear", "onnx")} <= set(modules)
    assert "modelapi.client" not in modules
    assert not [m for m in modules if m.startswith("modelapi.formats.pipeline.sklearn_")]


def test_each_format_packages_its_own_modules_and_no_exporter() -> None:
    linear = runtime_modules("linear.json")
    assert {"modelapi.formats", "modelapi.formats.base", "modelapi.formats.linear"} <= set(linear)
    assert not [
        m for m in linear if m.startswith(("modelapi.formats.pipeline", "modelapi.formats.onnx"))
    ]
    pipeline = runtime_modules("pipeline.json")
    assert {
        "modelapi.formats.pipeline",
        "modelapi.formats.pipeline.model",
        "modelapi.formats.pipeline.compiler",
        "modelapi.formats.pipeline.validation",
    } <= set(pipeline)
    assert not [m for m in pipeline if m.startswith("modelapi.formats.pipeline.sklearn_")]
    assert not {"modelapi.formats.linear", "modelapi.formats.onnx"} & set(pipeline)
    onnx = runtime_modules("model.onnx")
    assert "modelapi.formats.onnx" in onnx
    assert not [
        m for m in onnx if m.startswith(("modelapi.formats.pipeline", "modelapi.formats.linear"))
    ]
    for modules in (linear, pipeline, onnx):
        assert "modelapi.client" not in modules
        # The same core beside each format's own modules.
        assert set(linear) - {"modelapi.formats.linear"} <= set(modules)
    with pytest.raises(BundleError, match="unknown serving format"):
        runtime_modules("model.pkl")


def test_only_a_package_reading_s3_carries_the_s3_store() -> None:
    s3_only = {
        "modelapi.store.s3",
        "modelapi.store.s3_client",
        "modelapi.store.s3_errors",
        "modelapi.store.s3_reader",
        "modelapi.store.sigv4",
        "modelapi.store.transport",
        "modelapi.extras",  # botocore, for the credential sources the reader leaves to it
    }
    reading_s3 = set(runtime_modules("linear.json"))
    embedded = set(runtime_modules("linear.json", s3=False))
    assert s3_only <= reading_s3
    assert reading_s3 - embedded == s3_only
    assert {"modelapi.store", "modelapi.store.local", "modelapi.store.base"} <= embedded


def test_a_linear_zip_carries_no_other_format_and_no_client(embedded_zip: LambdaPackage) -> None:
    sources = modelapi_sources(embedded_zip)
    assert {n for n in sources if n.startswith("modelapi/formats/")} == {
        "modelapi/formats/__init__.py",
        "modelapi/formats/base.py",
        "modelapi/formats/linear.py",
    }
    assert "modelapi/client.py" not in sources
    assert "modelapi/service.py" in sources
    # The embedded model is all it serves (it wins over MODELAPI_STORE): no S3 store.
    assert not [n for n in sources if n.startswith(("modelapi/store/s3", "modelapi/store/sigv4"))]


def test_a_zip_reading_s3_carries_the_s3_store(s3_zip: LambdaPackage) -> None:
    sources = modelapi_sources(s3_zip)
    assert {"modelapi/store/s3.py", "modelapi/store/s3_reader.py", "modelapi/store/sigv4.py"} <= (
        sources
    )
    assert not [n for n in names(s3_zip) if n.startswith("modelapi-model/")]


def test_too_big_is_refused_naming_what(
    builtin_bundle: Bundle, wheel_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MAX_ZIPPED_BYTES == 50 * 1024 * 1024
    monkeypatch.setattr(packaging, "MAX_ZIPPED_BYTES", 10_000)
    with pytest.raises(PackagingError, match=r"zipped, over Lambda's .* limit .*msgspec"):
        build_lambda_zip(builtin_bundle, tmp_path, cache_dir=wheel_cache, direct_upload=True)
    assert not (tmp_path / "lambda.zip").exists()
    # Uploaded through S3 (the templates' way), the zipped size has no 50 MB quota.
    built = build_lambda_zip(builtin_bundle, tmp_path, cache_dir=wheel_cache)
    assert built.zipped_bytes > 10_000
    monkeypatch.setattr(packaging, "MAX_UNZIPPED_BYTES", 10_000)
    with pytest.raises(PackagingError, match="unzipped"):
        build_lambda_zip(builtin_bundle, tmp_path, cache_dir=wheel_cache)


def test_no_installer_names_the_fix(
    builtin_bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wheels.shutil, "which", lambda name: None)
    monkeypatch.setattr(wheels.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtra, match="pip install uv"):
        build_lambda_zip(builtin_bundle, tmp_path)


def test_unknown_wheel_is_a_packaging_error(
    builtin_bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        packaging, "requirements_for", lambda serving: ["msgspec==0.0.0.does-not-exist"]
    )
    with pytest.raises(PackagingError, match=r"msgspec==0\.0\.0\.does-not-exist has no wheel"):
        build_lambda_zip(builtin_bundle, tmp_path)


def test_cli_builds_zip_and_templates(
    tmp_path: Path, wheel_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dist"
    code = main(
        [
            "package",
            "lambda",
            "diabetes",
            "-o",
            str(out),
            "--store",
            str(tmp_path / "empty-store"),
            "--cache-dir",
            str(wheel_cache),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert {p.name for p in out.iterdir()} == {
        "lambda.zip",
        "template.yaml",
        "serverless.yml",
        "package.json",
        ".npmrc",
    }
    assert "embedding diabetes:1" in printed
    size_kb = (out / "lambda.zip").stat().st_size / 1024
    assert f"{size_kb:.0f} KB zipped" in printed
