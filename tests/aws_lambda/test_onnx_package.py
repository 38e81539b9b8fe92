"""An ONNX-served model packaged for Lambda answers in a fresh Python 3.12, as in /var/task.

Like the linear package's test: the zip is unpacked into an empty folder and run by
`python3.12 -I -S` with only that folder, boto3 alone and the standard library on the path.
The wheels (onnxruntime, numpy) are the manylinux_2_28 ones Amazon Linux 2023 loads; the
answers are scikit-learn's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelapi.deploy.lambda_zip import LambdaPackage
from modelapi.training.workflow import TrainResult
from tests.aws_lambda.conftest import LAMBDA_PYTHON, modelapi_sources
from tests.aws_lambda.events import CONTRACT_ROW, load_event
from tests.aws_lambda.test_fresh_process import unzip
from tests.conftest import require_tool


@pytest.fixture(autouse=True)
def lambda_python() -> None:
    require_tool(LAMBDA_PYTHON, "the Lambda runtime's Python 3.12 (pyenv install 3.12)")


RUNNER = """
import json, sys
task_root, runtime_dir = sys.argv[1:3]
sys.path[:0] = [task_root, runtime_dir]
from modelapi import aws_lambda
events = json.load(sys.stdin)
answers = [aws_lambda.predict(event, None) for event in events]
files = [getattr(m, "__file__", None) or "" for m in list(sys.modules.values())]
print(json.dumps({"answers": answers, "files": files, "stdlib": sys.prefix}))
"""


def test_onnx_package_carries_the_onnx_format_alone(onnx_zip: LambdaPackage) -> None:
    sources = modelapi_sources(onnx_zip)
    assert {n for n in sources if n.startswith("modelapi/formats/")} == {
        "modelapi/formats/__init__.py",
        "modelapi/formats/base.py",
        "modelapi/formats/onnx.py",
    }
    assert "modelapi/client.py" not in sources


def test_onnx_package_answers_as_scikit_learn(
    onnx_zip: LambdaPackage,
    onnx_forest: TrainResult,
    boto3_only: Path,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    entries_top = {p.name for p in unzip(onnx_zip, tmp_path / "task").iterdir()}
    assert {"onnxruntime", "numpy", "msgspec", "modelapi", "modelapi-model"} <= entries_top
    assert not entries_top & {"sklearn", "scipy", "pandas", "skl2onnx", "onnx", "boto3"}
    sls = load_event("direct_body_sls_invoke.json")
    rest = load_event("rest_v1_predict.json")
    contract = json.loads(CONTRACT_ROW)
    events: list[Any] = [sls, rest, contract, [contract, contract]]
    result = subprocess.run(
        [str(LAMBDA_PYTHON), "-I", "-S", "-c", RUNNER, str(tmp_path / "task"), str(boto3_only)],
        input=json.dumps(events),
        cwd=tmp_path / "task",
        env={"PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "LANG": "en_US.UTF-8"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    roots = (str(tmp_path / "task"), str(boto3_only), out["stdlib"])
    assert [f for f in out["files"] if f and not f.startswith(roots)] == []
    assert any("/task/onnxruntime/" in f for f in out["files"])
    sls_answer, rest_answer, plain, batch = out["answers"]
    assert sls_answer["statusCode"] == rest_answer["statusCode"] == 200
    rows = [
        json.loads(sls["body"]),
        json.loads(rest["body"]),
        contract,
        contract,
        contract,
    ]
    answered = [
        json.loads(sls_answer["body"]),
        json.loads(rest_answer["body"]),
        plain,
        *batch,
    ]
    features = onnx_forest.manifest.features
    frame = pd.DataFrame([{f.column: row[f.key] for f in features} for row in rows])
    estimator: Any = onnx_forest.estimator
    expected = estimator.predict_proba(frame)
    assert [a["outcome"] for a in answered] == [int(v) for v in estimator.predict(frame)]
    for answer, probabilities in zip(answered, expected, strict=True):
        # ONNX computes the model in float32: equal to scikit-learn's float64 to about 1e-6.
        assert answer["probabilities"]["1"] == pytest.approx(probabilities[1], abs=1e-5)
    record_property("onnx_zip_bytes", onnx_zip.zipped_bytes)
    record_property("onnx_unzipped_bytes", onnx_zip.unzipped_bytes)
