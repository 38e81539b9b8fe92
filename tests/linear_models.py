"""Hand-made linear models, built in memory from a `linear.json` spec as a trained bundle is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from modelapi.bundle import Bundle, Manifest, artifact_entry
from modelapi.predictor import Predictor
from modelapi.schema import Feature, Target

__all__ = ["linear_predictor"]


def linear_predictor(
    spec: Mapping[str, object],
    features: Sequence[Feature],
    classes: tuple[int | float | str, ...] | None,
    *,
    target: Target | None = None,
    name: str = "linear",
    version: int = 1,
) -> Predictor:
    """A predictor for a `linear.json` spec: a classifier when `classes` is given."""
    data = msgspec.json.encode(spec)
    manifest = Manifest(
        format_version=1,
        name=name,
        version=version,
        created_at="2026-01-01T00:00:00+00:00",
        task="classification" if classes else "regression",
        estimator="logistic_regression" if classes else "linear_regression",
        target=target or Target(column="Y", key="y"),
        features=tuple(features),
        serving="linear.json",
        artifacts={"linear.json": artifact_entry(data)},
        classes=classes,
    )
    return Predictor(Bundle(manifest, {"linear.json": data}))
