"""What an answer must be, written out here rather than taken from modelapi's encoder."""

from __future__ import annotations

from collections.abc import Sequence

from modelapi.formats import Prediction
from modelapi.predictor import Predictor

__all__ = ["answer", "answers"]


def answer(predictor: Predictor, prediction: Prediction) -> dict[str, object]:
    """`{"outcome": 1, "probabilities": {"0": 0.2, "1": 0.8}}`, or `{"price": 3.2}`."""
    label, probabilities = prediction
    key = predictor.manifest.target.key
    classes = predictor.manifest.classes
    if classes is None:
        return {key: label}
    names = [str(c) for c in classes]
    return {key: label, "probabilities": dict(zip(names, probabilities or (), strict=True))}


def answers(predictor: Predictor, predictions: Sequence[Prediction]) -> list[dict[str, object]]:
    """One answer per prediction, as `answer`."""
    return [answer(predictor, p) for p in predictions]
