"""Serving metrics: counted in plain dicts on the request path, rendered for Prometheus on scrape.

Recording a request is a couple of dict updates (well under a microsecond), because
prometheus-client's labelled counters and histograms take a lock and a label lookup per call,
a measurable share of a request that itself takes tens of microseconds. The counts are turned
into prometheus-client metric families only when `/metrics` is scraped, so the text format is
still the library's own. prometheus-client is imported then, not before: the Lambda package
never needs it.

Each server process counts its own requests; with several workers a scrape reaches one of them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from modelapi.formats import Prediction

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS_S", "Metrics", "label_counts"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Upper bounds in seconds: most answers take well under a millisecond, batches up to seconds.
LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _Histogram:
    __slots__ = ("counts", "total_s")

    def __init__(self, n_buckets: int) -> None:
        # One slot per bucket plus one for +Inf; cumulated only when rendered.
        self.counts = [0] * (n_buckets + 1)
        self.total_s = 0.0


class Metrics:
    """Request counts, latencies and predictions by class for one server process.

    `model` tells, when scraped, the (name, version) of the model being served, or None.
    """

    def __init__(
        self,
        *,
        model: Callable[[], tuple[str, str] | None] = lambda: None,
        buckets_s: Sequence[float] = LATENCY_BUCKETS_S,
    ) -> None:
        self.buckets_s: tuple[float, ...] = tuple(sorted(buckets_s))
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, _Histogram] = {}
        self.predictions: dict[str, int] = {}
        self.model = model

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (route, method, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        histogram = self.latency.get(route)
        if histogram is None:
            histogram = self.latency[route] = _Histogram(len(self.buckets_s))
        histogram.counts[bisect_left(self.buckets_s, seconds)] += 1
        histogram.total_s += seconds

    def count_predictions(self, predictions: Sequence[Prediction]) -> None:
        """Count predictions by label (a regressor's values are counted as one 'value' label)."""
        self.count_labels(label_counts(predictions))

    def count_labels(self, counts: Mapping[str, int]) -> None:
        """Add predictions already counted by label name (`label_counts`): a block of a
        thousand answers counted in numpy costs no loop here."""
        total = self.predictions
        for name, n in counts.items():
            total[name] = total.get(name, 0) + n

    def render(self) -> bytes:
        """The Prometheus text exposition of everything counted so far."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.process_collector import ProcessCollector

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        ProcessCollector(registry=registry)
        return generate_latest(registry)


def label_counts(predictions: Sequence[Prediction]) -> dict[str, int]:
    """Predictions counted by label name, as `Metrics.count_predictions` names them."""
    counts: dict[str, int] = {}
    for label, probabilities in predictions:
        name = "value" if probabilities is None else str(label)
        counts[name] = counts.get(name, 0) + 1
    return counts


class _Collector:
    """A prometheus-client collector reading a Metrics' plain counts at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.metrics_core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            InfoMetricFamily,
        )

        metrics = self.metrics
        requests = CounterMetricFamily(
            "modelapi_requests",
            "HTTP requests answered, by route, method and status.",
            labels=("route", "method", "status"),
        )
        for (route, method, status), count in sorted(metrics.requests.items()):
            requests.add_metric((route, method, str(status)), count)
        yield requests

        latency = HistogramMetricFamily(
            "modelapi_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by route.",
            labels=("route",),
        )
        bounds = [*(repr(b) for b in metrics.buckets_s), "+Inf"]
        for route, histogram in sorted(metrics.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(bounds, histogram.counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric((route,), buckets, histogram.total_s)
        yield latency

        predictions = CounterMetricFamily(
            "modelapi_predictions",
            "Predictions made, by predicted class ('value' for a regressor).",
            labels=("label",),
        )
        for label, count in sorted(metrics.predictions.items()):
            predictions.add_metric((label,), count)
        yield predictions

        model = metrics.model()
        info = InfoMetricFamily(
            "modelapi_model", "The model being served.", labels=("name", "version")
        )
        loaded = GaugeMetricFamily("modelapi_model_loaded", "1 when a model is loaded, else 0.")
        if model is not None:
            info.add_metric(model, {})
        loaded.add_metric((), 1.0 if model is not None else 0.0)
        yield info
        yield loaded
