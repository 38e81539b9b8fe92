"""Load and soak on loopback: 64 connections of valid and invalid bodies, then the same while the
model's alias is switched every second.

`modelapi serve` runs in its own process, so its memory can be read from /proc; wrk drives it
with a Lua script that cycles through answerable, malformed, invalid, oversized and unreadable
bodies. The pass mark: no 5xx, no socket error (connect, read, write, timeout), every kind of
answer seen, and a resident set no more than 10 % above its size after warm-up. CI runs short
phases; `--long` runs the full 60 s each.
"""

from __future__ import annotations

import json
import logging
import shutil
import string
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import Bundle, artifact_entry
from modelapi.store.local import LocalStore
from tests.adversarial.budget import scaled
from tests.conftest import PIMA_EXAMPLE, require_tool
from tests.servers import ServeProcess, rss_bytes, serve_process

CONNECTIONS = 64
WARM_UP_S = scaled(10, 30)
PHASE_S = scaled(60, 300)
MAX_ROWS = 20
WRK = shutil.which("wrk")
logger = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def _wrk() -> None:
    require_tool("wrk", "scripts/install-test-tools installs it")


_CSV = (
    b"Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age\n"
    b"6,148,72,35,0,33.6,0.627,50\n1,85,66,29,0,26.6,0.351,31\n"
)
# (content type, body, the status it must get)
MIX: list[tuple[str, bytes, int]] = [
    ("application/json", PIMA_EXAMPLE, 200),
    ("application/x-www-form-urlencoded", PIMA_EXAMPLE, 200),
    ("application/json", b"[" + b",".join([PIMA_EXAMPLE] * 10) + b"]", 200),
    ("text/csv", _CSV, 200),
    ("application/json", PIMA_EXAMPLE[:-5], 400),
    ("application/json", b"\xff\xfe" + PIMA_EXAMPLE, 400),
    ("application/json", b"[" * 5000, 400),
    ("application/json", PIMA_EXAMPLE.replace(b"148", b'"high"'), 422),
    ("application/json", b'{"glucose": 1e999}', 422),
    ("text/csv", b"Glucose\n1\n", 422),
    ("application/json", b"[" + b",".join([PIMA_EXAMPLE] * (MAX_ROWS + 1)) + b"]", 413),
    ("application/xml", b"<a/>", 415),
]


def _lua_string(data: bytes) -> str:
    """A Lua string literal for any bytes (decimal escapes, so nothing needs quoting)."""
    return '"' + "".join(f"\\{byte}" for byte in data) + '"'


_LUA = string.Template(
    """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  requests = {
$requests
  }
  counter = 0
  statuses = {}
  versions = {}
end
function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local version = headers["x-model-version"]
  if version then versions[version] = (versions[version] or 0) + 1 end
end
local function merge(into, from)
  for key, value in pairs(from) do into[key] = (into[key] or 0) + value end
end
local function encode(map)
  local parts = {}
  for key, value in pairs(map) do table.insert(parts, string.format('"%s": %d', key, value)) end
  return "{" .. table.concat(parts, ", ") .. "}"
end
function done(summary, latency, requests)
  local all_statuses, all_versions = {}, {}
  for _, thread in ipairs(threads) do
    merge(all_statuses, thread:get("statuses"))
    merge(all_versions, thread:get("versions"))
  end
  local errors = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, '
    .. '"statuses": %s, "versions": %s}\\n',
    summary.requests, errors.connect, errors.read, errors.write, errors.timeout,
    encode(all_statuses), encode(all_versions)))
end
"""
)


def _script(path: Path) -> Path:
    """The wrk script: cycle through MIX; count statuses and served versions per thread."""
    requests = ",\n".join(
        f'  wrk.format("POST", "/predict", {{["Content-Type"] = "{kind}"}}, {_lua_string(body)})'
        for kind, body, _ in MIX
    )
    path.write_text(_LUA.substitute(requests=requests))
    return path


def _wrk(url: str, script: Path, seconds: int) -> dict[str, object]:
    assert WRK is not None
    result = subprocess.run(
        [WRK, "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
         f"{url}/predict"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    outcome: dict[str, object] = json.loads(line.removeprefix("RESULT "))
    return outcome


def _shifted(bundle: Bundle, delta: float) -> Bundle:
    spec = msgspec.json.decode(bundle.files["linear.json"])
    spec["intercept"] = [value + delta for value in spec["intercept"]]
    data = msgspec.json.encode(spec)
    artifacts = {**bundle.manifest.artifacts, "linear.json": artifact_entry(data)}
    manifest = msgspec.structs.replace(bundle.manifest, artifacts=artifacts)
    return Bundle(manifest, {**bundle.files, "linear.json": data})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, builtin_bundle: Bundle) -> LocalStore:
    """diabetes:1 and a slightly different diabetes:2; production points at 1."""
    store = LocalStore(tmp_path_factory.mktemp("soak") / "models")
    store.put(builtin_bundle)
    store.put(_shifted(builtin_bundle, 0.25))
    store.set_alias("diabetes", "production", 1)
    return store


@pytest.fixture(scope="module")
def server(store: LocalStore) -> Iterator[ServeProcess]:
    """`modelapi serve diabetes@production`, re-checking the alias every 0.2 s."""
    env = {
        "MODELAPI_STORE": str(store.root),
        "MODELAPI_MAX_BATCH_ROWS": str(MAX_ROWS),
        "MODELAPI_RELOAD_INTERVAL_S": "0.2",
        "MODELAPI_LOG_LEVEL": "warning",
    }
    with serve_process(store.root.parent, "diabetes@production", env=env) as process:
        yield process


@pytest.fixture(scope="module")
def warm_rss(server: ServeProcess, tmp_path_factory: pytest.TempPathFactory) -> int:
    """The server's resident set after a warm-up run of the same mix."""
    script = _script(tmp_path_factory.mktemp("wrk") / "mix.lua")
    _check(_wrk(server.url, script, WARM_UP_S), set(), 0, server)
    return rss_bytes(server.process.pid)


def _check(
    outcome: dict[str, object], versions: set[str], min_requests: int, server: ServeProcess
) -> None:
    alive = server.process.poll() is None
    for error in ("connect", "read", "write", "timeout"):
        assert outcome[error] == 0, (
            f"{error} errors: {outcome}\n{alive=}\n{server.output()[-3000:]}"
        )
    statuses = {int(code) for code in outcome["statuses"]}  # type: ignore[attr-defined]
    assert statuses == {expected for _, _, expected in MIX}, outcome
    assert not any(code >= 500 for code in statuses)
    assert outcome["requests"] >= min_requests, outcome  # type: ignore[operator]
    if versions:
        assert set(outcome["versions"]) == versions, outcome  # type: ignore[call-overload]


def test_a_mix_of_valid_and_invalid_bodies_under_load(
    server: ServeProcess, warm_rss: int, tmp_path: Path
) -> None:
    outcome = _wrk(server.url, _script(tmp_path / "mix.lua"), PHASE_S)
    _check(outcome, {"diabetes:1"}, 10 * PHASE_S, server)
    grown = rss_bytes(server.process.pid) / warm_rss
    logger.info("wrk %s; resident set %.1f%% of warm-up (%d bytes)", outcome, grown * 100, warm_rss)
    assert grown <= 1.10, f"the server's memory grew by {grown - 1:.1%} after warm-up"
    assert "Traceback" not in server.output()


def test_the_same_load_while_the_alias_switches_every_second(
    server: ServeProcess, warm_rss: int, store: LocalStore, tmp_path: Path
) -> None:
    stop = threading.Event()

    def switch() -> None:
        version = 1
        while not stop.wait(1.0):
            version = 3 - version
            store.set_alias("diabetes", "production", version)

    switcher = threading.Thread(target=switch, daemon=True)
    switcher.start()
    try:
        outcome = _wrk(server.url, _script(tmp_path / "mix.lua"), PHASE_S)
    finally:
        stop.set()
        switcher.join(5)
    _check(outcome, {"diabetes:1", "diabetes:2"}, 10 * PHASE_S, server)
    grown = rss_bytes(server.process.pid) / warm_rss
    logger.info("wrk %s; resident set %.1f%% of warm-up (%d bytes)", outcome, grown * 100, warm_rss)
    assert grown <= 1.10, f"the server's memory grew by {grown - 1:.1%} after warm-up"
    output = server.output()
    assert "Traceback" not in output
    assert "could not be" not in output
