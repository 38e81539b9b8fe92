"""Serving never imports the training stack: checked in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TRAINING_MODULES = (
    "sklearn",
    "pandas",
    "numpy",
    "scipy",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "skops",
    "matplotlib",
    "modelapi.training.workflow",
    "modelapi.training.data",
    "modelapi.training.report",
    "modelapi.training.export",
    "modelapi.training.pickle_import",
)
SERVING_MODULES = ("modelapi", "modelapi.service", "modelapi.app", "modelapi.aws_lambda")


@pytest.mark.parametrize("module", SERVING_MODULES)
def test_serving_modules_load_no_training_code(module: str) -> None:
    script = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        "from modelapi.source import ModelSource\n"
        "ModelSource('diabetes', '/nonexistent-store').get()\n"
        f"print(sorted(m for m in {TRAINING_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _served_modules(script: str) -> list[str]:
    """The modelapi format and client modules in sys.modules after `script` ran, fresh."""
    listed = (
        "import sys\n"
        f"{script}\n"
        "print(sorted(m for m in sys.modules"
        " if m.startswith(('modelapi.formats', 'modelapi.client'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", listed], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    found: list[str] = ast.literal_eval(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize("module", SERVING_MODULES)
def test_serving_a_linear_model_imports_its_format_alone_and_no_client(module: str) -> None:
    found = _served_modules(
        f"import importlib; importlib.import_module({module!r})\n"
        "from modelapi.source import ModelSource\n"
        "assert ModelSource('diabetes', '/nonexistent-store').get().manifest.serving"
        " == 'linear.json'"
    )
    assert found == ["modelapi.formats", "modelapi.formats.base", "modelapi.formats.linear"]


def test_the_client_is_imported_when_first_named() -> None:
    found = _served_modules(
        "import modelapi\n"
        "assert 'modelapi.client' not in sys.modules\n"
        "from modelapi import AsyncClient, Client\n"
        "import modelapi.client\n"
        "assert Client is modelapi.client.Client and AsyncClient is modelapi.client.AsyncClient\n"
        "assert modelapi.Client is Client"
    )
    assert found == ["modelapi.client", "modelapi.client.batches"]


def test_serving_a_pipeline_model_imports_no_exporter_and_no_other_format(
    pipeline_store: Path,
) -> None:
    found = _served_modules(
        "import modelapi.aws_lambda\n"
        "from modelapi.source import ModelSource\n"
        f"predictor = ModelSource('forest', {str(pipeline_store)!r}).get()\n"
        "assert predictor.manifest.serving == 'pipeline.json'\n"
        "row = [0.0] * len(predictor.manifest.features)\n"
        "assert predictor.predict([row])"
    )
    assert "modelapi.formats.pipeline.compiler" in found
    assert not [m for m in found if m.startswith("modelapi.formats.pipeline.sklearn_")]
    assert "modelapi.formats.linear" not in found
    assert "modelapi.formats.onnx" not in found
    assert "modelapi.client" not in found


@pytest.fixture(scope="module")
def pipeline_store(pima_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from modelapi.training.data import load_dataset
    from modelapi.training.workflow import train

    result = train(
        load_dataset(pima_csv), model="random_forest", params={"n_estimators": 3}, name="forest"
    )
    assert result.manifest.serving == "pipeline.json"
    store = tmp_path_factory.mktemp("store")
    result.store(str(store))
    return store
