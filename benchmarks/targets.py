"""The issue's targets, judged against one run's figures, and the pass/fail table.

Figures are a flat mapping of dotted names (`single_row.modelapi.requests_per_s`) to numbers,
built by the runner from its results. The single-row ratios are medians of per-round ratios
(rounds seconds apart), so that the load others put on a shared machine weighs on both sides
of a ratio. A target whose figures are missing (that part of the run failed or was skipped)
is reported as not measured, which counts as a miss. A target without a bound is a figure the
table reports (modelapi's ratio to a peer), judged neither way.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "TARGETS",
    "Target",
    "Verdict",
    "bound_of",
    "format_table",
    "judge",
    "markdown_table",
    "summary",
]

Figures = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Target:
    """One target: a measured value (from the figures), the bound it must meet, and its units.

    With no bound, the value is only reported.
    """

    name: str
    bound: float | None
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
    def is_judged(self) -> bool:
        """False for a reported figure, which has no bound to meet."""
        return self.target.bound is not None

    @property
    def passed(self) -> bool:
        """True when the value was measured and meets the bound (a reported one: measured)."""
        if self.measured is None:
            return False
        bound = self.target.bound
        return bound is None or self.target.compare(self.measured, bound)

    @property
    def result(self) -> str:
        """PASS or FAIL, or `-` for a reported figure."""
        if not self.is_judged:
            return "-"
        return "PASS" if self.passed else "FAIL"

    def as_dict(self) -> dict[str, object]:
        """The verdict as JSON-ready values."""
        return {
            "name": self.target.name,
            "goal": self.target.goal,
            "measured": self.measured,
            "units": self.target.units,
            "passed": self.passed if self.is_judged else None,
        }


def _ratio(numerator: str, denominator: str) -> Callable[[Figures], float]:
    return lambda f: f[numerator] / f[denominator]


def _figure(name: str, scale: float = 1.0) -> Callable[[Figures], float]:
    return lambda f: f[name] * scale


def _errors(f: Figures) -> float:
    # The bulk bodies are not sent to a server that refuses their route: their counts are
    # added only when they were measured.
    required = f["single_row.modelapi.errors"] + f["batch.modelapi.errors"]
    return required + sum(
        v for k, v in f.items() if k.startswith("bulk.") and k.endswith(".errors")
    )


_GE, _LE = operator.ge, operator.le
MB = 1_000_000

_BULK = "bulk.modelapi.{}.rows_per_s"
_FOREST = "pipeline.in_process.forest."

TARGETS: tuple[Target, ...] = (
    Target(
        "single row vs ceiling",
        0.65,
        _GE,
        _figure("single_row.ratios.modelapi_to_ceiling"),
        "x",
        ">= 0.65 of the ceiling's req/s",
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
        "single row vs MLServer",
        None,
        _GE,
        _figure("single_row.ratios.modelapi_to_mlserver"),
        "x",
        "reported: modelapi's req/s over MLServer's",
        peer="mlserver",
    ),
    Target(
        "single row vs BentoML",
        None,
        _GE,
        _figure("single_row.ratios.modelapi_to_bentoml"),
        "x",
        "reported: modelapi's req/s over BentoML's",
        peer="bentoml",
    ),
    Target(
        "single row p99",
        2.5,
        _LE,
        _figure("single_row.modelapi.p99_ms"),
        "ms",
        "p99 <= 2.5 ms at 32 connections",
    ),
    Target(
        "errors",
        0,
        _LE,
        _errors,
        "",
        "0 non-2xx and 0 socket errors (single row, batch, bulk bodies)",
    ),
    Target(
        "batch rows/s",
        1_000_000,
        _GE,
        _figure("batch.modelapi.rows_per_s"),
        "rows/s",
        ">= 1,000,000 rows/s (1,000-object JSON bodies)",
    ),
    Target(
        "bulk dataframe_split /invocations",
        2_000_000,
        _GE,
        _figure(_BULK.format("dataframe_split_invocations")),
        "rows/s",
        ">= 2,000,000 rows/s (1,000-row bodies)",
    ),
    Target(
        "bulk dataframe_split /predict",
        2_000_000,
        _GE,
        _figure(_BULK.format("dataframe_split_predict")),
        "rows/s",
        ">= 2,000,000 rows/s (1,000-row bodies)",
    ),
    Target(
        "bulk text/csv /invocations",
        2_000_000,
        _GE,
        _figure(_BULK.format("csv_invocations")),
        "rows/s",
        ">= 2,000,000 rows/s (1,000 lines, no header)",
    ),
    Target(
        "serve cold start",
        0.15,
        _LE,
        _figure("cold_start.modelapi.median_s"),
        "s",
        "<= 0.15 s launch to first answer",
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
        150,
        _LE,
        _figure("lambda.s3.cold_start_median_ms"),
        "ms",
        "<= 150 ms process start to first answer",
    ),
    Target(
        "Lambda cold start, embedded",
        150,
        _LE,
        _figure("lambda.embedded.cold_start_median_ms"),
        "ms",
        "<= 150 ms process start to first answer",
    ),
    Target(
        "Lambda init (runtime client), embedded",
        150,
        _LE,
        _figure("lambda.embedded.ric_first_response_median_ms"),
        "ms",
        "<= 150 ms process start to first response, under awslambdaric",
    ),
    Target(
        "Lambda init (runtime client), S3",
        150,
        _LE,
        _figure("lambda.s3.ric_first_response_median_ms"),
        "ms",
        "<= 150 ms process start to first response, under awslambdaric",
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
        40,
        _LE,
        _figure("memory.modelapi.rss_bytes", 1 / MB),
        "MB",
        "<= 40 MB after single rows and JSON batches",
    ),
    Target(
        "server RSS after bulk bodies",
        60,
        _LE,
        _figure("memory_after_bulk.modelapi.rss_bytes", 1 / MB),
        "MB",
        "<= 60 MB once bulk bodies have imported numpy",
    ),
    Target(
        "predict CSV rows/s",
        2_000_000,
        _GE,
        _figure("predict.rows_1000000.rows_per_s"),
        "rows/s",
        ">= 2,000,000 rows/s on 1,000,000 rows, launch to exit",
    ),
    Target(
        "predict CSV memory flat",
        1.10,
        _LE,
        _ratio("predict.rows_1000000.peak_rss_bytes", "predict.rows_250000.peak_rss_bytes"),
        "x",
        "peak RSS at 1M rows <= 1.10x that at 250k",
    ),
    Target(
        "forest one row in process",
        30,
        _LE,
        _figure(_FOREST + "pipeline_us_per_row"),
        "us",
        "<= 30 us per row, pipeline.json (100 trees, depth 10)",
    ),
    Target(
        "HGB one row in process",
        20,
        _LE,
        _figure("pipeline.in_process.hist_gradient_boosting.pipeline_us_per_row"),
        "us",
        "<= 20 us per row, pipeline.json (100 iterations)",
    ),
    Target(
        "forest over HTTP vs ONNX",
        0.7,
        _GE,
        _figure("pipeline.http.ratios.pipeline_to_onnx"),
        "x",
        ">= 0.7x the req/s of the same forest served from model.onnx",
    ),
    Target(
        "forest numpy blocks",
        500_000,
        _GE,
        _figure(_FOREST + "numpy_block_rows_per_s_cpu"),
        "rows/s",
        ">= 500,000 rows/s in process (CPU time)",
    ),
    Target(
        "forest predict CSV rows/s",
        500_000,
        _GE,
        _figure("pipeline.predict_file.rows_per_s"),
        "rows/s",
        ">= 500,000 rows/s on 1,000,000 rows, launch to exit",
    ),
    Target(
        "forest Lambda zip size",
        1 * MB,
        _LE,
        _figure("pipeline.lambda.zip_without_model_bytes"),
        "bytes",
        "<= 1 MB zipped, besides the pipeline.json's compressed size",
    ),
    Target(
        "forest Lambda cold start",
        150,
        _LE,
        _figure("pipeline.lambda.cold_start_median_ms"),
        "ms",
        "<= 150 ms process start to first answer, embedded",
    ),
)


def judge(
    figures: Figures, targets: tuple[Target, ...] = TARGETS, peers: tuple[str, ...] | None = None
) -> list[Verdict]:
    """Judge every target against the figures; with `peers`, only those the chosen peers allow."""
    chosen = [t for t in targets if peers is None or t.peer is None or t.peer in peers]
    return [Verdict(target, target.measure(figures)) for target in chosen]


def bound_of(name: str) -> float | None:
    """The bound of the target called `name` (the chart draws it); KeyError for no such one."""
    return {t.name: t.bound for t in TARGETS}[name]


def summary(verdicts: list[Verdict]) -> tuple[int, int]:
    """(targets met, targets judged): reported figures are in neither count."""
    judged = [v for v in verdicts if v.is_judged]
    return sum(v.passed for v in judged), len(judged)


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
            v.result,
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
