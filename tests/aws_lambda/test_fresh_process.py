"""End to end: the unzipped package answers every event in a fresh Python 3.12, as in /var/task.

The process runs with `-I -S` and a path holding only the unzipped package, a folder with
boto3 alone (what the Lambda runtime provides) and the standard library, with Lambda's
environment variables set. This proves nothing outside the zip is needed and no training
library is in it.
"""

from __future__ import annotations

import json
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any, cast

import pytest

from modelapi.aws_lambda import LambdaHandler
from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.deploy.lambda_zip import LambdaPackage
from modelapi.store import open_store
from modelapi.store.builtin import BUILTIN_ROOT
from tests.aws_lambda.conftest import LAMBDA_PYTHON
from tests.aws_lambda.events import EVENTS, load_event
from tests.conftest import require_tool


@pytest.fixture(autouse=True)
def _lambda_python() -> None:
    require_tool(LAMBDA_PYTHON, "the Lambda runtime's Python 3.12 (pyenv install 3.12)")


RUNNER = """
import sys
task_root, runtime_dir, cases_file = sys.argv[1:4]
sys.path[:0] = [task_root, runtime_dir]
import importlib, json
module = importlib.import_module("modelapi.aws_lambda")
answers = []
with open(cases_file) as handle:
    cases = json.load(handle)
for function, event in cases:
    answers.append(getattr(module, function)(event, None))
    if len(answers) == 1:
        print("first answer", flush=True)
files = {name: getattr(m, "__file__", None) for name, m in list(sys.modules.items())}
print(json.dumps({"answers": answers, "modules": files, "stdlib": sys.prefix}))
"""
TRAINING = ("numpy", "sklearn", "scipy", "pandas", "click", "skops", "onnx", "onnxruntime")
SLS_INVOKE = load_event("direct_body_sls_invoke.json")
# Routes whose modules the service imports by name when first called: the zip needs them too.
LAZY_ROUTE_PATHS = ("/openapi.json", "/", "/v2", "/v2/models/diabetes")


def get_event(path: str) -> dict[str, Any]:
    """An HTTP API (v2) GET event for `path`, made from the recorded ping event."""
    event = cast(dict[str, Any], load_event("http_v2_default_ping.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = f"GET {path}"
    return event


def cases() -> list[tuple[str, object]]:
    """Every event and lazy route through `handler`, plus the original `ping` and `predict`."""
    listed: list[tuple[str, object]] = [("handler", load_event(c.file)) for c in EVENTS]
    listed += [("handler", get_event(path)) for path in LAZY_ROUTE_PATHS]
    return [("predict", SLS_INVOKE), *listed, ("ping", {}), ("predict", SLS_INVOKE)]


def unzip(package: LambdaPackage, folder: Path) -> Path:
    folder.mkdir()
    with zipfile.ZipFile(package.zip_path) as archive:
        archive.extractall(folder)
    return folder


def run_fresh(
    task_root: Path, runtime_dir: Path, tmp_path: Path, env: dict[str, str]
) -> dict[str, object]:
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(cases()))
    lambda_env = {
        "AWS_LAMBDA_FUNCTION_NAME": "modelapi-diabetes-dev-api",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "_HANDLER": "modelapi.aws_lambda.handler",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        **env,
    }
    command = [str(LAMBDA_PYTHON), "-I", "-S", "-c", RUNNER, str(task_root), str(runtime_dir)]
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, str(cases_file)],
        cwd=task_root,
        env=lambda_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    cold_start_ms = (time.perf_counter() - started) * 1000
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert first == "first answer\n", err
    assert out.startswith("{"), out[:500] + err[-2000:]
    result: dict[str, object] = json.loads(out)
    result["cold_start_ms"] = cold_start_ms
    return result


def check_isolation(result: dict[str, object], task_root: Path, runtime_dir: Path) -> None:
    modules = result["modules"]
    assert isinstance(modules, dict)
    assert not [m for m in modules if m.split(".")[0] in TRAINING]
    assert not [
        m for m in modules if m.split(".")[:2] in (["modelapi", "cli"], ["modelapi", "training"])
    ]
    # Neither the client nor the standard library's introspection (`inspect` and what it
    # imports: about 15 ms of a cold start) is loaded to serve, OpenAPI document included.
    assert not {"modelapi.client", "inspect", "dataclasses", "ast", "dis"} & set(modules)
    roots = (str(task_root), str(runtime_dir), str(result["stdlib"]))
    outside = [f for f in modules.values() if f and not str(f).startswith(roots)]
    assert outside == []
    assert str(modules["modelapi.aws_lambda"]).startswith(str(task_root))


def expected_answers(handler: LambdaHandler) -> list[object]:
    answers = []
    for function, event in cases():
        if function == "ping":
            answers.append({"statusCode": 200, "body": '{"ping": "pong"}'})
        else:
            answers.append(handler.handle(event))
    return json.loads(json.dumps(answers))


def test_embedded_package_answers_every_event(
    embedded_zip: LambdaPackage,
    boto3_only: Path,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    task_root = unzip(embedded_zip, tmp_path / "task")
    result = run_fresh(task_root, boto3_only, tmp_path, {})
    check_isolation(result, task_root, boto3_only)
    modules = result["modules"]
    assert isinstance(modules, dict)
    assert "boto3" not in modules  # an embedded model needs no S3 client at all
    handler = LambdaHandler(Settings(), embedded_model=BUILTIN_ROOT / "diabetes" / "1")
    answers = result["answers"]
    assert answers == expected_answers(handler)
    assert isinstance(answers, list)
    assert answers[0]["statusCode"] == 200
    assert "outcome" in json.loads(answers[0]["body"])
    lazy = answers[-2 - len(LAZY_ROUTE_PATHS) : -2]
    assert [answer["statusCode"] for answer in lazy] == [200] * len(LAZY_ROUTE_PATHS)
    record_property("cold_start_ms", round(float(str(result["cold_start_ms"])), 1))
    record_property("zip_bytes", embedded_zip.zipped_bytes)


def test_s3_package_answers_every_event(
    s3_zip: LambdaPackage,
    boto3_only: Path,
    builtin_bundle: Bundle,
    s3_store_uri: str,
    aws_env: str,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    store = open_store(s3_store_uri)
    store.set_alias("diabetes", "production", store.put(builtin_bundle).version)
    task_root = unzip(s3_zip, tmp_path / "task")
    env = {
        "AWS_ENDPOINT_URL_S3": aws_env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "MODELAPI_STORE": s3_store_uri,
        "MODELAPI_MODEL": "diabetes@production",
    }
    result = run_fresh(task_root, boto3_only, tmp_path, env)
    check_isolation(result, task_root, boto3_only)
    settings = Settings(model="diabetes@production", store=s3_store_uri)
    handler = LambdaHandler(settings, embedded_model=tmp_path / "no-bundle")
    assert result["answers"] == expected_answers(handler)
    record_property("cold_start_ms", round(float(str(result["cold_start_ms"])), 1))
    record_property("zip_bytes", s3_zip.zipped_bytes)
