"""`osls invoke local` on the generated serverless.yml, as the original project's users run it.

Nothing in the generated project is edited: `modelapi package lambda --local` lays the zip's
files out beside serverless.yml, osls imports the handler from there with the python3.12 first
on PATH, and the original tutorial's exact `--data` event gets the reference answer.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from modelapi.aws_lambda import LambdaHandler
from modelapi.config import Settings
from modelapi.store.builtin import BUILTIN_ROOT
from tests.aws_lambda.serverless_project import OSLS, TUTORIAL_EVENT, tool_env


def invoke_local(project: Path, *args: str) -> object:
    """Run `osls invoke local ARGS` in the project; the answer it prints."""
    result = subprocess.run(
        [str(OSLS), "invoke", "local", *args],
        cwd=project,
        env=tool_env(project.parent / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # modelapi's log lines come first; the answer is the JSON printed after them.
    start = result.stdout.index("\n{") + 1
    answer, _ = json.JSONDecoder().raw_decode(result.stdout[start:])
    return answer


def test_invoke_local_predict_answers_the_tutorial_event(local_project: Path) -> None:
    answer = invoke_local(local_project, "--function", "predict", "--data", TUTORIAL_EVENT)
    reference = LambdaHandler(Settings(), embedded_model=BUILTIN_ROOT / "diabetes" / "1")
    assert answer == reference.handle(json.loads(TUTORIAL_EVENT))
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["outcome"] == 0


def test_invoke_local_ping(local_project: Path) -> None:
    answer = invoke_local(local_project, "--function", "ping")
    assert answer == {"statusCode": 200, "body": '{"ping": "pong"}'}
