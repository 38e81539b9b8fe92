"""One PNG with the run's main comparisons, drawn with matplotlib (no display needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from benchmarks.targets import bound_of

__all__ = ["draw_chart"]

Figures = Mapping[str, float]
_COLOURS = {
    "ceiling": "#9e9e9e",
    "modelapi": "#1f77b4",
    "naive": "#d62728",
    "mlserver": "#ff7f0e",
    "bentoml": "#9467bd",
}
_SERVERS = tuple(_COLOURS)


def _bars(
    axes: object,
    labels: list[str],
    values: list[float | None],
    title: str,
    unit: str,
    bound: float | None = None,
    log: bool = False,
) -> None:
    shown = [v if v is not None else 0.0 for v in values]
    colours = [_COLOURS.get(label.split()[0], "#2ca02c") for label in labels]
    ax = axes  # matplotlib Axes (untyped)
    bars = ax.bar(labels, shown, color=colours)  # type: ignore[attr-defined]
    for bar, value in zip(bars, values, strict=True):
        text = "n/a" if value is None else f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
        ax.annotate(  # type: ignore[attr-defined]
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    if bound is not None:
        ax.axhline(bound, color="black", linestyle="--", linewidth=1)  # type: ignore[attr-defined]
    if log:
        ax.set_yscale("log")  # type: ignore[attr-defined]
    ax.set_title(title, fontsize=10)  # type: ignore[attr-defined]
    ax.set_ylabel(unit)  # type: ignore[attr-defined]
    ax.tick_params(axis="x", labelsize=8 if len(labels) <= 6 else 7)  # type: ignore[attr-defined]


def draw_chart(figures: Figures, path: Path, title: str) -> Path:
    """Draw single-row req/s and p99, batch rows/s, cold starts, memory and CSV rows/s.

    Each panel shows the servers that the run measured: the ceiling, modelapi and the peers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    get = figures.get
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    names = [n for n in _SERVERS if f"single_row.{n}.requests_per_s" in figures]
    peers = [n for n in names if n not in ("ceiling", "modelapi")]
    _bars(
        axes[0][0],
        names,
        [get(f"single_row.{n}.requests_per_s") for n in names],
        "single row POST, 32 connections",
        "requests/s",
        bound=(bound_of("single row vs ceiling") or 0)
        * figures["single_row.ceiling.requests_per_s"]
        if "single_row.ceiling.requests_per_s" in figures
        else None,
    )
    labels, values = [], []
    percentiles = ("p50", "p99", "p999") if len(names) <= 3 else ("p50", "p99")
    for name in names:
        for pct in percentiles:
            labels.append(f"{name}\n{pct}")
            values.append(get(f"single_row.{name}.{pct}_ms"))
    _bars(
        axes[0][1],
        labels,
        values,
        "single row latency (dashed: p99 target)",
        "ms",
        bound=bound_of("single row p99"),
        log=True,
    )
    _bars(
        axes[0][2],
        ["modelapi", *peers],
        [get(f"batch.{n}.rows_per_s") for n in ("modelapi", *peers)],
        "batch: 1,000-row bodies, each in its own form",
        "rows/s",
        bound=bound_of("batch rows/s"),
        log=True,
    )
    _bars(
        axes[1][0],
        ["modelapi\nserve", *peers, "Lambda\nS3", "Lambda\nembedded"],
        [
            get("cold_start.modelapi.median_ms"),
            *[get(f"cold_start.{n}.median_ms") for n in peers],
            get("lambda.s3.cold_start_median_ms"),
            get("lambda.embedded.cold_start_median_ms"),
        ],
        "cold start: launch to first answer",
        "ms",
        log=True,
    )
    mb = 1_000_000
    _bars(
        axes[1][1],
        names,
        [get(f"memory.{n}.rss_bytes", 0) / mb or None for n in names],
        "server RSS after the load (dashed: target)",
        "MB",
        bound=bound_of("server RSS after load"),
    )
    _bars(
        axes[1][2],
        ["predict 250k", "predict 1M"],
        [get("predict.rows_250000.rows_per_s"), get("predict.rows_1000000.rows_per_s")],
        "modelapi predict CSV, launch to exit",
        "rows/s",
        bound=bound_of("predict CSV rows/s"),
    )
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
