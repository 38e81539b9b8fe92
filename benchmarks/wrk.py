"""Drive wrk (HTTP load from one core) and read its report.

wrk prints a human report (`--latency` adds the 50/75/90/99 % lines) and, through
`lua/post.lua`, one `WRK_JSON {...}` line with exact counters and the 99.9th percentile that the
human report lacks. Both are parsed: the JSON line wins where it has the figure.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LUA_SCRIPT", "WrkResult", "parse_duration_s", "parse_wrk_output", "run_wrk"]

LUA_SCRIPT = Path(__file__).resolve().parent / "lua" / "post.lua"

_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*([0-9.]+)\s*(us|ms|s|m|h)\s*$")
_PERCENTILE = re.compile(r"^\s*([0-9.]+)%\s+([0-9.]+\s*(?:us|ms|s|m|h))\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([0-9.]+\s*(?:us|ms|s|m|h)),", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s*([0-9.]+)", re.MULTILINE)
_SOCKET = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.MULTILINE
)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_JSON_LINE = re.compile(r"^WRK_JSON (\{.*\})\s*$", re.MULTILINE)


@dataclass(slots=True)
class WrkResult:
    """One wrk run: totals, rate, latency percentiles (seconds), error counts."""

    requests: int
    duration_s: float
    requests_per_s: float
    latency_s: dict[str, float] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    non_2xx: int = 0

    @property
    def errors(self) -> int:
        """Non-2xx/3xx answers plus socket errors of every kind."""
        return self.non_2xx + sum(self.socket_errors.values())

    def as_dict(self) -> dict[str, object]:
        """The figures as JSON-ready values: rate, percentiles in ms, error counts."""
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "requests_per_s": round(self.requests_per_s, 1),
            "latency_ms": {k: round(v * 1000, 4) for k, v in self.latency_s.items()},
            "non_2xx": self.non_2xx,
            "socket_errors": dict(self.socket_errors),
            "errors": self.errors,
        }


def parse_duration_s(text: str) -> float:
    """Read a wrk duration such as `640.12us`, `1.20ms` or `2.00s` as seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def parse_wrk_output(text: str) -> WrkResult:
    """Parse wrk's report (with --latency and, when present, the WRK_JSON line).

    Raises ValueError when the report has no request total or rate (wrk failed).
    """
    total, rate = _TOTAL.search(text), _RATE.search(text)
    if total is None or rate is None:
        raise ValueError(f"not a wrk report: {text[-500:]!r}")
    result = WrkResult(
        requests=int(total.group(1)),
        duration_s=parse_duration_s(total.group(2)),
        requests_per_s=float(rate.group(1)),
    )
    for percent, value in _PERCENTILE.findall(text):
        result.latency_s[f"p{_percent_key(percent)}"] = parse_duration_s(value)
    socket = _SOCKET.search(text)
    names = ("connect", "read", "write", "timeout")
    counts = [int(n) for n in socket.groups()] if socket else [0, 0, 0, 0]
    result.socket_errors = dict(zip(names, counts, strict=True))
    non_2xx = _NON_2XX.search(text)
    result.non_2xx = int(non_2xx.group(1)) if non_2xx else 0
    line = _JSON_LINE.search(text)
    if line is not None:
        _merge_json(result, json.loads(line.group(1)))
    return result


def _percent_key(percent: str) -> str:
    value = float(percent)
    return str(int(value)) if value.is_integer() else str(value).replace(".", "")


def _merge_json(result: WrkResult, figures: dict[str, float]) -> None:
    result.requests = int(figures["requests"])
    result.duration_s = figures["duration_us"] / 1e6
    if result.duration_s > 0:
        result.requests_per_s = result.requests / result.duration_s
    for key in ("p50", "p90", "p99", "p999", "max"):
        result.latency_s[key] = figures[f"{key}_us"] / 1e6
    result.latency_s["mean"] = figures["mean_us"] / 1e6
    result.socket_errors = {k: int(figures[k]) for k in ("connect", "read", "write", "timeout")}
    result.non_2xx = int(figures["status"])


def run_wrk(
    url: str,
    body_file: Path,
    *,
    connections: int,
    duration_s: float,
    content_type: str = "application/json",
    cpu: int | None = 1,
    timeout_s: float = 5.0,
) -> WrkResult:
    """POST `body_file` to `url` with one wrk thread for `duration_s`; pin wrk to `cpu`.

    Raises RuntimeError when wrk fails or prints no report.
    """
    command = [
        *(["taskset", "-c", str(cpu)] if cpu is not None else []),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s:g}s",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(body_file),
        content_type,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    try:
        return parse_wrk_output(done.stdout)
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
