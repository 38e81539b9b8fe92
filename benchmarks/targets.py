"""The issue's targets, judged against one run's figures, and the pass/fail table.

Figures are a flat mapping of dotted names (`single_row.modelapi.requests_per_s`) to numbers,
built by the runner from its results. The single-row ratios are medians of per-round ratios
(rounds seconds apart), so that the load others put on a shared machine weighs on both sides
of a ratio. A target whose figures are missing (that part of the run failed or was skipped)
is reported as not measured, which counts as a miss.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["TARGETS", "Target", "Verdict", "format_table", "judge", "markdown_table"]

Figures = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Target:
    """One target: a measured value (from the figures), the bound it must meet, and its units."""

    name: str
    bound: float
    compare: Callable[[float, float], bool]
    value: Callable[[Figures], float]
    units: str
    goal: str
    # The peer whose figures it needs: a run without that peer does not judge it.
    peer: str | None = None

    def measure(self, figures: Figures) -> float | None:
        """The measured value, or None when a figure it needs is missing."""
        try:
            return self.value(figures)
        except (KeyError, ZeroDivisionError):
            return None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A target with the value this run measured, and whether it met the bound."""

    target: Target
    measured: float | None

    @property
    def passed(self) -> bool:
        """True when the value was measured and meets the bound."""
        return self.measured is not None and self.target.compare(self.measured, self.target.bound)

    def as_dict(self) -> dict[str, object]:
        """The verdict as JSON-ready values."""
        return {
            "name": self.target.name,
            "goal": self.target.goal,
            "measured": self.measured,
            "units": self.target.units,
            "passed": self.passed,
        }


def _ratio(numerator: str, denominator: str) -> Callable[[Figures], float]:
    return lambda f: f[numerator] / f[denominator]


def _figure(name: str, scale: float = 1.0) -> Callable[[Figures], float]:
    return lambda f: f[name] * scale


def _sum(*names: str) -> Callable[[Figures], float]:
    return lambda f: sum(f[name] for name in names)


_GE, _LE = operator.ge, operator.le
MB = 1_000_000

TARGETS: tuple[Target, ...] = (
    Target(
        "single row vs ceiling",
        0.60,
        _GE,
        _figure("single_row.ratios.modelapi_to_ceiling"),
        "x",
        ">= 0.60 of the ceiling's req/s",
    ),
    Target(
        "single row vs naive",
        8.0,
        _GE,
        _figure("single_row.ratios.modelapi_to_naive"),
        "x",
        ">= 8x the naive baseline's req/s",
        peer="naive",
    ),
    Target(
        "single row p99",
        5.0,
        _LE,
        _figure("single_row.modelapi.p99_ms"),
        "ms",
        "p99 <= 5 ms at 32 connections",
    ),
    Target(
        "single row + batch errors",
        0,
        _LE,
        _sum("single_row.modelapi.errors", "batch.modelapi.errors"),
        "",
        "0 non-2xx and 0 socket errors",
    ),
    Target(
        "batch rows/s",
        2_000_000,
        _GE,
        _figure("batch.modelapi.rows_per_s"),
        "rows/s",
        ">= 2,000,000 rows/s (1,000-row JSON bodies)",
    ),
    Target(
        "serve cold start",
        0.3,
        _LE,
        _figure("cold_start.modelapi.median_s"),
        "s",
        "<= 0.3 s launch to first answer",
    ),
    Target(
        "Lambda zip size",
        1 * MB,
        _LE,
        _figure("lambda.embedded.zipped_bytes"),
        "bytes",
        "<= 1 MB zipped (Pima model embedded)",
    ),
    Target(
        "Lambda cold start, S3",
        300,
        _LE,
        _figure("lambda.s3.cold_start_median_ms"),
        "ms",
        "<= 300 ms process start to first answer",
    ),
    Target(
        "Lambda cold start, embedded",
        100,
        _LE,
        _figure("lambda.embedded.cold_start_median_ms"),
        "ms",
        "<= 100 ms process start to first answer",
    ),
    Target(
        "Lambda init (runtime client), embedded",
        100,
        _LE,
        _figure("lambda.embedded.ric_first_response_median_ms"),
        "ms",
        "<= 100 ms process start to first response, under awslambdaric",
    ),
    Target(
        "Lambda init (runtime client), S3",
        300,
        _LE,
        _figure("lambda.s3.ric_first_response_median_ms"),
        "ms",
        "<= 300 ms process start to first response, under awslambdaric",
    ),
    Target(
        "Lambda warm p50",
        50,
        _LE,
        _figure("lambda.embedded.warm_p50_us"),
        "us",
        "<= 50 us per invocation in process",
    ),
    Target(
        "server RSS after load",
        60,
        _LE,
        _figure("memory.modelapi.rss_bytes", 1 / MB),
        "MB",
        "<= 60 MB",
    ),
    Target(
        "predict CSV rows/s",
        1_000_000,
        _GE,
        _figure("predict.rows_1000000.rows_per_s"),
        "rows/s",
        ">= 1,000,000 rows/s on 1,000,000 rows, launch to exit",
    ),
    Target(
        "predict CSV memory flat",
        1.10,
        _LE,
        _ratio("predict.rows_1000000.peak_rss_bytes", "predict.rows_250000.peak_rss_bytes"),
        "x",
        "peak RSS at 1M rows <= 1.10x that at 250k",
    ),
)


def judge(
    figures: Figures, targets: tuple[Target, ...] = TARGETS, peers: tuple[str, ...] | None = None
) -> list[Verdict]:
    """Judge every target against the figures; with `peers`, only those the chosen peers allow."""
    chosen = [t for t in targets if peers is None or t.peer is None or t.peer in peers]
    return [Verdict(target, target.measure(figures)) for target in chosen]


def _show(value: float | None, units: str) -> str:
    if value is None:
        return "not measured"
    if units == "bytes":
        return f"{value / 1024:,.0f} KiB ({value:,.0f} B)"
    if units == "x":
        return f"{value:.2f}x"
    if abs(value) >= 1000:
        return f"{value:,.0f} {units}".strip()
    return f"{value:.3g} {units}".strip()


def format_table(verdicts: list[Verdict]) -> str:
    """A plain-text (and Markdown) table: target, goal, measured value, PASS or FAIL."""
    rows: list[tuple[str, ...]] = [("target", "goal", "measured", "result")]
    rows += [
        (
            v.target.name,
            v.target.goal,
            _show(v.measured, v.target.units),
            "PASS" if v.passed else "FAIL",
        )
        for v in verdicts
    ]
    return markdown_table(rows)


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    """Rows of cells (the first one the header) as a Markdown table whose columns line up."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
