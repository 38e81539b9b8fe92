"""Serving never imports the training stack: checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

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
