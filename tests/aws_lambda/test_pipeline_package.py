"""A pipeline.json forest packaged for Lambda: under 1 MB beside its JSON, exact in a fresh 3.12.

The package needs msgspec alone. Unzipped beside a folder holding boto3 only, a fresh
`python3.12 -I -S` answers every recorded event and a batch of Pima rows, and its labels and
probabilities are scikit-learn's own, to the last digit; no training library is loaded.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from modelapi.bundle import Bundle
from modelapi.deploy.lambda_zip import LambdaPackage, build_lambda_zip
from modelapi.training.data import load_dataset
from modelapi.training.workflow import TrainResult, train
from tests.aws_lambda.conftest import LAMBDA_PYTHON, modelapi_sources
from tests.aws_lambda.test_fresh_process import RUNNER, cases, check_isolation, unzip

pytestmark = pytest.mark.skipif(
    not LAMBDA_PYTHON.exists(), reason=f"{LAMBDA_PYTHON} (the Lambda runtime's Python) is missing"
)

ONE_MB = 1024 * 1024


@pytest.fixture(scope="module")
def forest(pima_csv: Path) -> TrainResult:
    """The benchmark forest: 100 trees of depth 10 on Pima."""
    dataset = load_dataset(pima_csv)
    result = train(dataset, model="random_forest", params={"n_estimators": 100, "max_depth": 10})
    assert result.manifest.serving == "pipeline.json"
    return result


@pytest.fixture(scope="module")
def forest_zip(
    forest: TrainResult, wheel_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> LambdaPackage:
    bundle = Bundle(forest.manifest, forest.bundle.files)
    return build_lambda_zip(
        bundle, tmp_path_factory.mktemp("dist-forest"), embed=True, cache_dir=wheel_cache
    )


def test_the_package_is_under_1_mb_beside_the_model(
    forest_zip: LambdaPackage, record_property: pytest.RecordProperty
) -> None:
    assert [r.partition("==")[0] for r in forest_zip.requirements] == ["msgspec"]
    with zipfile.ZipFile(forest_zip.zip_path) as archive:
        model = sum(i.compress_size for i in archive.infolist() if i.filename.endswith(".json"))
        names = archive.namelist()
    assert any(name.endswith("/pipeline.json") for name in names)
    assert not [n for n in names if n.split("/")[0] in ("numpy", "sklearn", "onnxruntime")]
    assert forest_zip.zipped_bytes - model <= ONE_MB
    record_property("zip_bytes", forest_zip.zipped_bytes)
    record_property("model_json_zipped_bytes", model)


def test_the_package_carries_the_pipeline_runtime_but_no_exporter(
    forest_zip: LambdaPackage,
) -> None:
    formats = {n for n in modelapi_sources(forest_zip) if n.startswith("modelapi/formats/")}
    runtime = {
        f"modelapi/formats/pipeline/{name}.py"
        for name in ("__init__", "model", "spec", "validation", "compiler", "tree_code")
    }
    assert runtime <= formats
    assert not [n for n in formats if n.startswith("modelapi/formats/pipeline/sklearn_")]
    assert not {"modelapi/formats/linear.py", "modelapi/formats/onnx.py"} & formats
    assert "modelapi/client.py" not in modelapi_sources(forest_zip)


def test_a_fresh_python_answers_as_scikit_learn(
    forest: TrainResult,
    forest_zip: LambdaPackage,
    boto3_only: Path,
    pima_csv: Path,
    tmp_path: Path,
) -> None:
    frame = pd.read_csv(pima_csv).drop(columns="Outcome").iloc[:200]
    features = forest.manifest.features
    batch = [{f.key: float(row[f.column]) for f in features} for _, row in frame.iterrows()]
    listed = [("predict", batch), *cases()]
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(listed))
    task_root = unzip(forest_zip, tmp_path / "task")
    environment = {
        "AWS_LAMBDA_FUNCTION_NAME": "modelapi-pima-dev-api",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }
    process = subprocess.run(
        [
            str(LAMBDA_PYTHON),
            "-I",
            "-S",
            "-c",
            RUNNER,
            *map(str, (task_root, boto3_only, cases_file)),
        ],
        cwd=task_root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    out = process.stdout.split("\n", 1)[1]
    result = json.loads(out)
    check_isolation(result, task_root, boto3_only)
    answers = result["answers"]
    assert len(answers) == len(listed)
    estimator = forest.estimator
    labels = estimator.predict(frame).tolist()  # type: ignore[attr-defined]
    proba = estimator.predict_proba(frame).tolist()  # type: ignore[attr-defined]
    target = forest.manifest.target.key
    assert [a[target] for a in answers[0]] == labels
    assert [[a["probabilities"][c] for c in ("0", "1")] for a in answers[0]] == proba
    statuses = [a["statusCode"] for a in answers[1:] if isinstance(a, dict) and "statusCode" in a]
    assert statuses
    assert max(statuses) < 500


# In the unpacked package: the model's groups as a load takes them, and a second load's time
# is not what is checked (no timed assertion); only that every group came from the file.
_GROUPS = """
import json, sys
from pathlib import Path
sys.path[:0] = [sys.argv[1]]
from modelapi.bundle import Manifest
import msgspec
from modelapi.formats.pipeline import code_cache, model
folder = Path(sys.argv[1], "modelapi-model")
data = (folder / "pipeline.json").read_bytes()
manifest = msgspec.json.decode((folder / "manifest.json").read_bytes(), type=Manifest)
found = code_cache.precompiled_for(data)
if found is not None:
    model.precompiled_for = lambda data: found
    model.load(
        data, features=manifest.features, task=manifest.task, classes=manifest.classes
    ).warm()
print(json.dumps(None if found is None else [found.used, len(found._entries)]))
"""


def test_the_package_holds_the_forest_code_compiled_for_312(
    forest: TrainResult, forest_zip: LambdaPackage, tmp_path: Path
) -> None:
    """Compiling the forest's code was most of a cold start: the zip carries it, for 3.12."""
    from modelapi.formats.pipeline.code_cache import cache_name

    data = forest.bundle.files["pipeline.json"]
    with zipfile.ZipFile(forest_zip.zip_path) as archive:
        names = archive.namelist()
    assert f"modelapi/formats/pipeline/precompiled/{cache_name(data)}" in names
    task_root = unzip(forest_zip, tmp_path / "task")
    done = subprocess.run(
        [str(LAMBDA_PYTHON), "-I", "-S", "-c", _GROUPS, str(task_root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    used, held = json.loads(done.stdout)
    assert used == held > 1
