"""Sample a running server with py-spy while wrk loads it, and summarise where the time goes.

py-spy is installed into its own virtualenv under benchmarks/.work/tools. Its raw output has
one line per distinct stack, `frame;frame;...;leaf COUNT`; the summary ranks functions by
samples spent in them (self) and under them (inclusive).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from benchmarks.install import uv
from benchmarks.processes import Server
from benchmarks.wrk import run_wrk

__all__ = ["ensure_py_spy", "profile_server", "record", "summarise"]

PY_SPY = "py-spy==0.4.3"


def ensure_py_spy(work: Path) -> Path:
    """The py-spy executable, installed into benchmarks/.work/tools when missing."""
    venv = work / "tools"
    binary = venv / "bin" / "py-spy"
    if not binary.exists():
        subprocess.run([*uv(), "venv", "-q", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [*uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), PY_SPY],
            check=True,
            capture_output=True,
        )
    return binary


def record(py_spy: Path, pid: int, duration_s: int, out: Path) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `duration_s` into `out` (raw, collapsed stacks); wait on it."""
    return subprocess.Popen(
        [
            str(py_spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(duration_s),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise(raw: str, top: int = 15) -> dict[str, object]:
    """Self and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames):
            under[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(n / total, 4)) for frame, n in counter.most_common(top)]

    return {"samples": total, "self": share(own), "inclusive": share(under)} if total else {}


def profile_server(
    work: Path,
    logs: Path,
    server: Server,
    loads: Mapping[str, tuple[Path, int]],
    duration_s: int,
) -> dict[str, object]:
    """Sample `server` under each load in turn (label: body file, connections): the summaries."""
    py_spy = ensure_py_spy(work)
    profiles: dict[str, object] = {}
    for label, (body, connections) in loads.items():
        raw = logs / f"profile-{label}.txt"
        sampler = record(py_spy, server.process.pid, duration_s, raw)
        time.sleep(0.5)
        run_wrk(server.url + "/predict", body, connections=connections, duration_s=duration_s)
        sampler.wait(60)
        profiles[label] = summarise(raw.read_text()) if raw.exists() else {}
    return profiles
