"""Drive wrk (HTTP load from one core), read its report, and sum up interleaved rounds.

wrk prints a human report (`--latency` adds the 50/75/90/99 % lines) and, through
`lua/post.lua`, one `WRK_JSON {...}` line with exact counters and the 99.9th percentile that the
human report lacks. Both are parsed: the JSON line wins where it has the figure.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "LUA_SCRIPT",
    "WrkResult",
    "merged",
    "parse_duration_s",
    "parse_wrk_output",
    "ratios",
    "run_rounds",
    "run_wrk",
]

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


def run_rounds(
    targets: Mapping[str, tuple[str, Path]],
    *,
    rounds: int,
    warmup_s: float,
    duration_s: float,
    connections: int,
    content_types: Mapping[str, str] | None = None,
) -> dict[str, list[WrkResult]]:
    """Short wrk rounds against each (url, body) target, interleaved, after one warm-up each.

    Interleaving spreads the load others put on the machine over every target alike. A body is
    sent as JSON unless `content_types` gives its target another type.
    """
    found: dict[str, list[WrkResult]] = {name: [] for name in targets}
    for index in range(rounds):
        for name, (url, body) in targets.items():
            kind = (content_types or {}).get(name, "application/json")
            if index == 0:
                run_wrk(url, body, connections=connections, duration_s=warmup_s, content_type=kind)
            result = run_wrk(
                url, body, connections=connections, duration_s=duration_s, content_type=kind
            )
            found[name].append(result)
            print(
                f"  {name}: {result.requests_per_s:,.0f} req/s,"
                f" p99 {result.latency_s.get('p99', 0) * 1000:.2f} ms, {result.errors} errors",
                flush=True,
            )
    return found


def merged(runs: list[WrkResult]) -> dict[str, object]:
    """The median round's figures, every round's rate, and the errors of all rounds."""
    median = sorted(runs, key=lambda r: r.requests_per_s)[len(runs) // 2]
    figures = median.as_dict()
    figures["rounds_requests_per_s"] = [round(r.requests_per_s, 1) for r in runs]
    figures["errors"] = sum(r.errors for r in runs)
    return figures


def ratios(
    rounds: Mapping[str, list[WrkResult]], others: Sequence[str], of: str = "modelapi"
) -> dict[str, float]:
    """`of`'s rate over each other's (`modelapi_to_<other>`): the median of per-round ratios."""
    return {
        f"{of}_to_{other}": round(
            statistics.median(
                mine.requests_per_s / theirs.requests_per_s
                for mine, theirs in zip(rounds[of], rounds[other], strict=True)
            ),
            4,
        )
        for other in others
    }
