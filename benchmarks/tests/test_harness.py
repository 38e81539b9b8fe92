"""The benchmark harness's pure parts: reading wrk's report, flattening results, judging targets."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from benchmarks.csv_run import parse_scored
from benchmarks.processes import run_measured
from benchmarks.profiling import summarise
from benchmarks.report import REPO, shown
from benchmarks.wrk import parse_duration_s, parse_wrk_output

WRK_REPORT = """\
Running 5s test @ http://127.0.0.1:41234/predict
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   712.45us  210.10us  12.30ms   93.12%
    Req/Sec    45.10k     1.20k   47.30k    82.00%
  Latency Distribution
     50%  680.00us
     75%  750.00us
     90%  840.00us
     99%    1.92ms
  224417 requests in 5.01s, 38.10MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 17
Requests/sec:  44793.81
Transfer/sec:      7.60MB
"""
WRK_JSON = (
    'WRK_JSON {"requests": 224417, "duration_us": 5010000, "bytes": 39950000, "connect": 1,'
    ' "read": 2, "write": 3, "status": 17, "timeout": 4, "mean_us": 712.4, "max_us": 12300,'
    ' "p50_us": 679, "p90_us": 841, "p99_us": 1921, "p999_us": 4512}\n'
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("680.00us", 680e-6), ("1.92ms", 1.92e-3), ("2.00s", 2.0), ("1.50m", 90.0), (" 3us ", 3e-6)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert math.isclose(parse_duration_s(text), seconds)


@pytest.mark.parametrize("text", ["", "12", "1.2 parsecs", "ms"])
def test_parse_duration_refuses_what_is_not_one(text: str) -> None:
    with pytest.raises(ValueError, match="not a wrk duration"):
        parse_duration_s(text)


def test_parse_human_report() -> None:
    result = parse_wrk_output(WRK_REPORT)
    assert result.requests == 224417
    assert math.isclose(result.duration_s, 5.01)
    assert math.isclose(result.requests_per_s, 44793.81)
    assert math.isclose(result.latency_s["p50"], 680e-6)
    assert math.isclose(result.latency_s["p99"], 1.92e-3)
    assert set(result.latency_s) == {"p50", "p75", "p90", "p99"}
    assert result.socket_errors == {"connect": 1, "read": 2, "write": 3, "timeout": 4}
    assert result.non_2xx == 17
    assert result.errors == 17 + 1 + 2 + 3 + 4


def test_json_line_adds_p999_and_exact_counters() -> None:
    result = parse_wrk_output(WRK_REPORT + WRK_JSON)
    assert math.isclose(result.latency_s["p999"], 4512e-6)
    assert math.isclose(result.latency_s["p99"], 1921e-6)
    assert math.isclose(result.requests_per_s, 224417 / 5.01)
    assert result.errors == 27
    figures = result.as_dict()
    assert figures["latency_ms"] == pytest.approx(  # type: ignore[comparison-overlap]
        {
            "p50": 0.679,
            "p75": 0.75,
            "p90": 0.841,
            "p99": 1.921,
            "p999": 4.512,
            "max": 12.3,
            "mean": 0.7124,
        }
    )


def test_clean_report_counts_no_errors() -> None:
    clean = "\n".join(
        line for line in WRK_REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    result = parse_wrk_output(clean)
    assert result.errors == 0
    assert result.socket_errors == {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def test_a_failed_wrk_run_is_refused() -> None:
    with pytest.raises(ValueError, match="not a wrk report"):
        parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_parse_scored_line_of_modelapi_predict() -> None:
    line = "scored 1000000 rows with diabetes:1 in 1.42 s, 704,225 rows/s -> out.csv\n"
    assert parse_scored(line) == (1_000_000, 1.42)
    assert parse_scored("error: x.csv: does not exist\n") is None


def test_summarise_collapsed_stacks() -> None:
    raw = "main (a.py:1);work (a.py:5) 3\nmain (a.py:1);idle (a.py:9) 1\nnot a stack line\n"
    summary = summarise(raw)
    assert summary["samples"] == 4
    assert summary["self"] == [("work (a.py:5)", 0.75), ("idle (a.py:9)", 0.25)]
    assert summary["inclusive"][0] == ("main (a.py:1)", 1.0)
    assert summarise("") == {}


def test_written_paths_are_shown_from_the_root_or_whole(tmp_path: Path) -> None:
    assert shown(REPO / "benchmarks" / "results" / "x.json") == "benchmarks/results/x.json"
    assert shown(tmp_path / "x.json") == str(tmp_path / "x.json")


def test_the_peak_memory_is_the_commands_own_not_this_process_copy() -> None:
    """wait4's ru_maxrss would report at least `ballast` for any command (exec keeps the
    forked copy's peak); the command's own high-water mark does not."""
    ballast = bytearray(300_000_000)  # this process, bigger than either command
    ballast[::4096] = b"\x01" * len(ballast[::4096])  # touched, so resident
    small = [sys.executable, "-I", "-S", "-c", "import time; time.sleep(0.1)"]
    _, small_peak, _ = run_measured(small)
    grow = "import time; b = bytearray(120_000_000); b[::4096] = b'1' * len(b[::4096]); "
    _, big_peak, _ = run_measured([sys.executable, "-I", "-S", "-c", grow + "time.sleep(0.1)"])
    assert small_peak < 40_000_000
    assert 120_000_000 < big_peak < 170_000_000
    del ballast
