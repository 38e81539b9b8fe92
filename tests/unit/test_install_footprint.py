"""The README's first command installs what serving needs and nothing of the test tooling."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO_ROOT

# What `uv run --locked --extra server modelapi serve` may install, besides modelapi itself.
SERVING = {
    "click",
    "h11",
    "httptools",
    "msgspec",
    "prometheus-client",
    "swagger-ui-bundle-v2",
    "uvicorn",
    "uvloop",
    "jinja2",
    "markupsafe",
    "colorama",
}


def _closure(lock: dict[str, object], roots: list[str]) -> set[str]:
    packages = {p["name"]: p for p in lock["package"]}  # type: ignore[attr-defined]
    seen: set[str] = set()
    wanted = list(roots)
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        wanted.extend(d["name"] for d in packages[name].get("dependencies", []))
    return seen


def test_serving_installs_only_the_serving_packages() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    # Without this, every `uv run` would install the dev group (test tools, pandas, numpy).
    assert pyproject["tool"]["uv"]["default-groups"] == []
    assert re.search(
        r"uv run --locked --extra server modelapi serve", (REPO_ROOT / "README.md").read_text()
    )
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    [modelapi] = [p for p in lock["package"] if p["name"] == "modelapi"]
    roots = [d["name"] for d in modelapi["dependencies"]]
    roots += [d["name"] for d in modelapi["optional-dependencies"]["server"]]
    installed = _closure(lock, roots)
    assert installed <= SERVING, sorted(installed - SERVING)
    assert len(installed) <= 12
