"""modelapi against each peer, figure by figure: the table of values and modelapi's advantage.

A peer's cell is its value and, in brackets, modelapi's advantage over it: modelapi's rate over
the peer's for req/s and rows/s, the peer's cost over modelapi's for latency, start-up, size and
memory, so that above 1x modelapi is ahead. The req/s and rows/s ones are the medians of the
ratios within a round (`single_row.ratios.modelapi_to_<peer>`), as the targets' are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.targets import markdown_table

__all__ = ["FIGURES", "Figure", "advantages", "format_comparison"]

Figures = Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Figure:
    """One compared figure: its label, its dotted name (`{}` is the server), which way is good."""

    label: str
    name: str
    is_rate: bool
    scale: float = 1.0
    ratio: str | None = None

    def value(self, figures: Figures, server: str) -> float | None:
        """The server's figure in the table's units, or None when it was not measured."""
        found = figures.get(self.name.format(server))
        return None if found is None else found * self.scale

    def advantage(self, figures: Figures, peer: str) -> float | None:
        """modelapi's advantage over `peer` (above 1: modelapi is ahead), or None."""
        if self.ratio is not None and self.ratio.format(peer) in figures:
            return figures[self.ratio.format(peer)]
        mine, theirs = self.value(figures, "modelapi"), self.value(figures, peer)
        if mine is None or theirs is None or mine <= 0 or theirs <= 0:
            return None
        return mine / theirs if self.is_rate else theirs / mine


MB = 1_000_000
FIGURES: tuple[Figure, ...] = (
    Figure(
        "single row req/s",
        "single_row.{}.requests_per_s",
        True,
        ratio="single_row.ratios.modelapi_to_{}",
    ),
    Figure("single row p99 ms", "single_row.{}.p99_ms", False),
    Figure(
        "batch rows/s (1,000 rows)",
        "batch.{}.rows_per_s",
        True,
        ratio="batch.ratios.modelapi_to_{}",
    ),
    Figure("cold start ms", "cold_start.{}.median_ms", False),
    Figure("installed MB", "sizes.{}.site_packages_bytes", False, 1 / MB),
    Figure("RSS after load MB", "memory.{}.rss_bytes", False, 1 / MB),
)


def advantages(figures: Figures, peers: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """For each peer, modelapi's advantage on every figure (None where one is missing)."""
    return {
        peer: {figure.label: _rounded(figure.advantage(figures, peer)) for figure in FIGURES}
        for peer in peers
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _show(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 1 else f"{value:.2g}"


def format_comparison(figures: Figures, peers: Sequence[str]) -> str:
    """A plain-text (and Markdown) table: one row per figure, modelapi then each peer."""
    rows: list[tuple[str, ...]] = [("figure", "modelapi", *peers)]
    for figure in FIGURES:
        cells = [figure.label, _show(figure.value(figures, "modelapi"))]
        for peer in peers:
            value, advantage = figure.value(figures, peer), figure.advantage(figures, peer)
            ratio = "" if advantage is None else f" ({advantage:.2f}x)"
            cells.append(_show(value) + ratio)
        rows.append(tuple(cells))
    return markdown_table(rows)
