"""The generated SAM and Serverless templates lint clean and grant read access to one model only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelapi.deploy.lambda_zip import LambdaTarget, write_templates
from modelapi.errors import ConfigError
from tests.conftest import REPO_ROOT, require_tool

OSLS = REPO_ROOT / "tools" / "node_modules" / ".bin" / "osls"
# aws-sam-cli lives in its own virtual environment (scripts/install-test-tools puts it there).
SAM = REPO_ROOT / "tools" / "sam" / "bin" / "sam"
STORE = "s3://modelapi-models-example/teams/ml"


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("cfn-lint")), str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture(params=["s3", "embedded"])
def templates(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """template.yaml and serverless.yml beside an (empty) lambda.zip."""
    store = STORE if request.param == "s3" else None
    ref = "diabetes@production" if store else "diabetes:1"
    write_templates(tmp_path, model_ref=ref, model_name="diabetes", store_uri=store)
    (tmp_path / "lambda.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return tmp_path


def test_sam_template_lints_clean(templates: Path) -> None:
    result = cfn_lint(templates / "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    write_templates(tmp_path, model_ref="m@a", model_name="m", store_uri=STORE)
    path = tmp_path / "template.yaml"
    text = path.read_text()
    assert "!Ref ThrottlingBurstLimit" in text
    path.write_text(text.replace("!Ref ThrottlingBurstLimit", "!Ref NoSuchParameter"))
    result = cfn_lint(path)
    assert result.returncode != 0
    assert "NoSuchParameter" in result.stdout


def sam_validate(path: Path) -> subprocess.CompletedProcess[str]:
    """`sam validate --lint`: SAM's own translation and cfn-lint, offline (no AWS account)."""
    sam = require_tool(SAM, "run scripts/install-test-tools (aws-sam-cli in tools/sam)")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(path.parent),
        "SAM_CLI_TELEMETRY": "0",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [sam, "validate", "--lint", "--region", "us-east-1", "--template-file", str(path)]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def test_sam_validate_lint_passes(templates: Path) -> None:
    result = sam_validate(templates / "template.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_validate_catches_a_broken_template(tmp_path: Path) -> None:
    write_templates(tmp_path, model_ref="m@a", model_name="m", store_uri=STORE)
    path = tmp_path / "template.yaml"
    path.write_text(path.read_text().replace("StageName: !Ref StageName", "StageName: !Ref Nope"))
    result = sam_validate(path)
    assert result.returncode != 0
    assert "Nope" in result.stdout + result.stderr


def test_templates_name_the_runtime_and_the_protection(tmp_path: Path) -> None:
    write_templates(
        tmp_path,
        model_ref="diabetes:1",
        model_name="diabetes",
        store_uri=None,
        target=LambdaTarget("3.13", "arm64"),
    )
    sam = (tmp_path / "template.yaml").read_text()
    serverless = (tmp_path / "serverless.yml").read_text()
    assert "Runtime: python3.13" in sam
    assert "Architectures: [arm64]" in sam
    assert "runtime: python3.13" in serverless
    assert "architecture: arm64" in serverless
    assert "{{resolve:secretsmanager:${ApiKeySecret}:SecretString}}" in sam
    assert "StageName: !Ref StageName" in sam
    assert serverless.count("private: ${strToBool(${param:private})}") == 3
    assert "plugins:" not in serverless  # only the --local layout needs serverless-offline


def test_sam_policy_is_scoped_to_the_model(templates: Path) -> None:
    text = (templates / "template.yaml").read_text()
    assert "s3:*" not in text
    assert "S3ReadPolicy" not in text
    assert 'arn:${AWS::Partition}:s3:::${Bucket}/${Keys}/*"' in text
    assert '!Sub "${StorePrefix}/${ModelName}"' in text


def test_serverless_iam_is_scoped_to_the_model(tmp_path: Path) -> None:
    write_templates(
        tmp_path, model_ref="diabetes@production", model_name="diabetes", store_uri=STORE
    )
    text = (tmp_path / "serverless.yml").read_text()
    assert '"arn:aws:s3:::modelapi-models-example/teams/ml/diabetes/*"' in text
    assert 's3:prefix: "teams/ml/diabetes/*"' in text
    assert "s3:*" not in text
    assert "${aws:accountId}" not in text
    assert 'MODELAPI_STORE: "s3://modelapi-models-example/teams/ml"' in text


def test_prefix_that_cannot_go_in_a_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="prefix"):
        write_templates(tmp_path, model_ref="m", model_name="m", store_uri="s3://bucket/pre fix*")


def test_serverless_packages_offline_to_clean_cloudformation(tmp_path: Path) -> None:
    require_tool("node", "run scripts/install-test-tools")
    require_tool(OSLS, "run scripts/install-test-tools")
    write_templates(
        tmp_path, model_ref="diabetes@production", model_name="diabetes", store_uri=STORE
    )
    (tmp_path / "lambda.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    templates = tmp_path
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(templates),
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
    }
    result = subprocess.run(
        [str(OSLS), "package", "--stage", "dev", "--region", "us-east-1"],
        cwd=templates,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    emitted = templates / ".serverless" / "cloudformation-template-update-stack.json"
    lint = cfn_lint(emitted)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    resources = json.loads(emitted.read_text())["Resources"]
    handlers = {
        r["Properties"]["Handler"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert handlers == {
        "modelapi.aws_lambda.ping",
        "modelapi.aws_lambda.predict",
        "modelapi.aws_lambda.handler",
    }
    runtimes = {
        r["Properties"]["Runtime"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert runtimes == {"python3.12"}
    policy = json.dumps(resources["IamRoleLambdaExecution"]["Properties"]["Policies"])
    assert "s3:*" not in policy
    assert ("diabetes/*" in policy) == (
        "MODELAPI_STORE" in (templates / "serverless.yml").read_text()
    )


def test_private_serverless_stack_requires_the_api_key_except_on_ping(tmp_path: Path) -> None:
    require_tool("node", "run scripts/install-test-tools")
    osls = require_tool(OSLS, "run scripts/install-test-tools")
    write_templates(tmp_path, model_ref="diabetes:1", model_name="diabetes", store_uri=None)
    (tmp_path / "lambda.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "SLS_TELEMETRY_DISABLED": "1"}
    command = [osls, "package", "--stage", "dev", "--region", "us-east-1", "--param=private=true"]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    emitted = tmp_path / ".serverless" / "cloudformation-template-update-stack.json"
    resources = json.loads(emitted.read_text())["Resources"]
    required = {
        name: r["Properties"]["ApiKeyRequired"]
        for name, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["HttpMethod"] != "OPTIONS"
    }
    assert required["ApiGatewayMethodPingGet"] is False
    assert required["ApiGatewayMethodPredictPost"] is True
    assert [name for name, value in required.items() if value is False] == [
        "ApiGatewayMethodPingGet"
    ]
    plan = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::UsagePlan"]
    assert plan[0]["Properties"]["Throttle"] == {"BurstLimit": 100, "RateLimit": 50}
    lint = cfn_lint(emitted)
    assert lint.returncode == 0, lint.stdout + lint.stderr
