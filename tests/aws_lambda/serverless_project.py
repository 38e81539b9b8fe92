"""The project `modelapi package lambda --local` writes, and the npm tools that run it offline."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from modelapi.cli import main
from tests.aws_lambda.conftest import LAMBDA_PYTHON
from tests.conftest import REPO_ROOT, require_tool

__all__ = [
    "NODE_MODULES",
    "OSLS",
    "TUTORIAL_EVENT",
    "build_local_project",
    "free_port",
    "require_npm_tools",
    "tool_env",
]

NODE_MODULES = REPO_ROOT / "tools" / "node_modules"
OSLS = NODE_MODULES / ".bin" / "osls"
# The original tutorial's `sls invoke --function predict --data` event, character for character.
TUTORIAL_EVENT = (
    '{"body": "{\\"pregnancies\\": 2, \\"glucose\\": 148, \\"blood_pressure\\": 72,'
    ' \\"skin_thickness\\": 35, \\"insulin\\": 0, \\"bmi\\": 33.6,'
    ' \\"diabetes_pedigree_function\\": 0.674, \\"age\\": 22}"}'
)


def require_npm_tools() -> None:
    """Skip (or fail, with MODELAPI_REQUIRE_TOOLS=1) without node, osls, serverless-offline."""
    reason = "run scripts/install-test-tools"
    require_tool("node", reason)
    require_tool(OSLS, reason)
    require_tool(NODE_MODULES / "serverless-offline" / "package.json", reason)
    require_tool(LAMBDA_PYTHON, "the Lambda runtime's Python 3.12 (pyenv install 3.12)")


def build_local_project(out: Path, store: Path, wheel_cache: Path) -> Path:
    """Run `modelapi package lambda diabetes --local -o out`, then give it the npm tools.

    DEPLOY.md's next step is `npm install` in the folder; the tests link the suite's own
    tools/node_modules instead, whose versions the generated package.json pins too.
    """
    code = main(
        [
            "package",
            "lambda",
            "diabetes",
            "--local",
            "-o",
            str(out),
            "--store",
            str(store),
            "--cache-dir",
            str(wheel_cache),
        ]
    )
    assert code == 0
    (out / "node_modules").symlink_to(NODE_MODULES, target_is_directory=True)
    pinned = json.loads((out / "package.json").read_text())["devDependencies"]
    ours = json.loads((REPO_ROOT / "tools" / "package.json").read_text())["dependencies"]
    assert pinned == {name: ours[name] for name in pinned}
    return out


def tool_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for osls: python3.12 first on PATH, no AWS account, no telemetry."""
    home.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(LAMBDA_PYTHON.parent), "/usr/local/bin", "/usr/bin", "/bin"])
    return {
        "PATH": path,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        "AWS_REGION": "us-east-1",
        **extra,
    }


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port
