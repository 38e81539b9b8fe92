"""Session fixtures for the Lambda package tests: wheels are fetched once and cached."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from modelapi.bundle import Bundle
from modelapi.deploy.lambda_zip import LambdaPackage, build_lambda_zip
from modelapi.training.workflow import TrainResult

LAMBDA_PYTHON = Path("/root/.pyenv/versions/3.12.1/bin/python3.12")


def modelapi_sources(package: LambdaPackage) -> set[str]:
    """The modelapi source files in a zip, byte code counted as the file it was compiled from."""
    with zipfile.ZipFile(package.zip_path) as archive:
        listed = archive.namelist()
    sources = set()
    for name in listed:
        folder, _, compiled = name.rpartition("/__pycache__/")
        if name.startswith("modelapi/"):
            sources.add(f"{folder}/{compiled.partition('.')[0]}.py" if folder else name)
    return sources


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runtime wheels fetched for the Lambda target, kept for the session."""
    return tmp_path_factory.mktemp("lambda-wheels")


@pytest.fixture(scope="session")
def embedded_zip(
    builtin_bundle: Bundle, wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> LambdaPackage:
    """lambda.zip for the shipped model, embedded."""
    out = tmp_path_factory.mktemp("dist-embedded")
    return build_lambda_zip(builtin_bundle, out, embed=True, cache_dir=wheel_cache)


@pytest.fixture(scope="session")
def s3_zip(
    builtin_bundle: Bundle, wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> LambdaPackage:
    """lambda.zip for the shipped model's format, reading the model from S3."""
    out = tmp_path_factory.mktemp("dist-s3")
    return build_lambda_zip(builtin_bundle, out, embed=False, cache_dir=wheel_cache)


@pytest.fixture(scope="session")
def boto3_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding boto3 and its dependencies for CPython 3.12, as Lambda's runtime does.

    Byte-compiled like the runtime's copy, so a cold start does not count compiling botocore.
    """
    folder = tmp_path_factory.mktemp("lambda-runtime-boto3")
    uv = shutil.which("uv")
    command = [uv] if uv else [sys.executable, "-m", "uv"]
    subprocess.run(
        [
            *command,
            "pip",
            "install",
            "--quiet",
            "--only-binary",
            ":all:",
            "--python-platform",
            "x86_64-manylinux2014",
            "--python-version",
            "3.12",
            "--target",
            str(folder),
            *(
                ["--compile-bytecode", "--python", str(LAMBDA_PYTHON)]
                if LAMBDA_PYTHON.exists()
                else []
            ),
            "boto3",
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    return folder


@pytest.fixture(scope="session")
def onnx_forest(pima_csv: Path) -> TrainResult:
    """A small model trained on the Pima data, served from model.onnx.

    Forests are served from pipeline.json now; a scaled neural network is outside it.
    """
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import modelapi

    frame = pd.read_csv(pima_csv)
    X, y = frame.drop(columns="Outcome"), frame["Outcome"]
    network = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=2000, random_state=0)
    model = make_pipeline(
        ColumnTransformer([("scaled", StandardScaler(), list(X.columns))]), network
    )
    result = modelapi.save(model.fit(X, y), X, name="diabetes", store=None, y_sample=y)
    assert result.manifest.serving == "model.onnx"
    return result


@pytest.fixture(scope="session")
def onnx_zip(
    onnx_forest: TrainResult, wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> LambdaPackage:
    """lambda.zip for the forest, embedded with its served file only, as the CLI reads it."""
    manifest = onnx_forest.manifest
    served = Bundle(manifest, {"model.onnx": onnx_forest.bundle.files["model.onnx"]})
    out = tmp_path_factory.mktemp("dist-onnx")
    return build_lambda_zip(served, out, embed=True, cache_dir=wheel_cache)


@pytest.fixture(scope="session")
def ric_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """boto3 and awslambdaric (the dev lock's version) for CPython 3.12: Lambda's /var/runtime."""
    from benchmarks.lambda_ric import ensure_ric_runtime

    return ensure_ric_runtime(tmp_path_factory.mktemp("ric-runtime") / "runtime", LAMBDA_PYTHON)


@pytest.fixture(scope="session")
def local_project(wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`modelapi package lambda diabetes --local` output with the npm tools beside it."""
    from tests.aws_lambda.serverless_project import build_local_project, require_npm_tools

    require_npm_tools()
    root = tmp_path_factory.mktemp("local-project")
    return build_local_project(root / "dist", root / "empty-store", wheel_cache)
