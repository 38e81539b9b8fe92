"""`linear.json`: a linear model with its one-hot encoding folded in, served in pure Python.

No numpy and no scikit-learn: this is what keeps the Lambda package under 1 MB and a single
prediction at a few microseconds. Training checks these numbers against scikit-learn's own
predictions (within 1e-12) before the bundle is written.

Layout: `intercept[k]` and, per feature in feature-table order, either a list of k weights
(a numeric feature) or a map category -> k weights (a one-hot encoded feature). k is 1 for a
regressor and a binary classifier (scikit-learn's decision function), else the class count.
"""

# Annotations stay objects here (no `from __future__ import annotations`): msgspec reads the
# Structs' annotations at their first decode, and evaluating strings then costs milliseconds of
# every cold start.

import math
from collections.abc import Sequence
from typing import Literal

import msgspec

from modelapi.errors import BundleError
from modelapi.formats import Prediction
from modelapi.schema import Feature, Row

__all__ = ["FILE_NAME", "LinearModel", "LinearSpec", "expit"]

FILE_NAME = "linear.json"


class LinearSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The contents of `linear.json`."""

    kind: Literal["logistic", "regression"]
    intercept: list[float]
    weights: list[list[float] | dict[str, list[float]]]


def expit(z: float) -> float:
    """The logistic function."""
    # Same formula as scipy.special.expit, split by sign so math.exp never overflows.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class LinearModel:
    """Predict with a `linear.json` spec; classes come from the manifest."""

    def __init__(self, spec: LinearSpec, classes: Sequence[object] | None) -> None:
        n_outputs = len(spec.intercept)
        if spec.kind == "logistic":
            if not classes or len(classes) < 2:
                raise BundleError(f"{FILE_NAME}: a logistic model needs at least two classes")
            if n_outputs != (1 if len(classes) == 2 else len(classes)):
                raise BundleError(f"{FILE_NAME}: {n_outputs} intercepts for {len(classes)} classes")
        elif n_outputs != 1:
            raise BundleError(f"{FILE_NAME}: a regression model has exactly one intercept")
        for weights in spec.weights:
            rows = weights.values() if isinstance(weights, dict) else [weights]
            if any(len(w) != n_outputs for w in rows):
                raise BundleError(f"{FILE_NAME}: every weight list must have {n_outputs} entries")
        self._spec = spec
        self._classes = tuple(classes or ())
        self._single = n_outputs == 1
        # For k == 1 the hot path works on plain floats rather than lists of one.
        self._flat: list[float | dict[str, float]] = [
            {c: w[0] for c, w in weights.items()} if isinstance(weights, dict) else weights[0]
            for weights in spec.weights
        ]

    @classmethod
    def from_bytes(cls, data: bytes, classes: Sequence[object] | None) -> "LinearModel":
        """Parse `linear.json` bytes; raise BundleError naming the file if they do not fit."""
        try:
            spec = msgspec.json.decode(data, type=LinearSpec)
        except msgspec.DecodeError as exc:
            raise BundleError(f"{FILE_NAME}: {exc}") from None
        return cls(spec, classes)

    @property
    def spec(self) -> LinearSpec:
        """The `linear.json` contents this model predicts with."""
        return self._spec

    @property
    def classes(self) -> tuple[object, ...]:
        """The class labels in manifest order (empty for a regressor)."""
        return self._classes

    def n_features(self) -> int:
        """How many features the weights expect."""
        return len(self._spec.weights)

    def check_features(self, features: Sequence[Feature]) -> None:
        """Raise BundleError unless the weights fit these features: count, kinds, categories.

        Checked when a bundle is loaded, so a `linear.json` of some other model is refused
        then, rather than failing every prediction.
        """
        if len(self._spec.weights) != len(features):
            raise BundleError(
                f"{FILE_NAME}: weights for {len(self._spec.weights)} features,"
                f" the manifest has {len(features)}"
            )
        for feature, weights in zip(features, self._spec.weights, strict=True):
            if feature.type != "category":
                if isinstance(weights, dict):
                    raise BundleError(f"{FILE_NAME}: {feature.key} is numeric, not a category")
            elif not isinstance(weights, dict) or not set(feature.categories or ()) <= set(weights):
                raise BundleError(
                    f"{FILE_NAME}: {feature.key} needs a weight for each of its categories"
                )

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict each row: (label, probabilities) or (value, None)."""
        if self._single:
            return [self._answer_single(self._decision_single(row)) for row in rows]
        return [self._answer_multi(self._decision_multi(row)) for row in rows]

    def _decision_single(self, row: Row) -> float:
        z = self._spec.intercept[0]
        for value, weight in zip(row, self._flat, strict=True):
            z += weight[value] if type(weight) is dict else weight * value  # type: ignore[index, operator]
        return z

    def _answer_single(self, z: float) -> Prediction:
        if self._spec.kind == "regression":
            return z, None
        p1 = expit(z)
        return self._classes[1] if z > 0 else self._classes[0], (1.0 - p1, p1)

    def _decision_multi(self, row: Row) -> list[float]:
        z = list(self._spec.intercept)
        for value, weights in zip(row, self._spec.weights, strict=True):
            if isinstance(weights, dict):
                w = weights[value]  # type: ignore[index]
                for k in range(len(z)):
                    z[k] += w[k]
            else:
                for k in range(len(z)):
                    z[k] += weights[k] * value  # type: ignore[operator]
        return z

    def _answer_multi(self, z: list[float]) -> Prediction:
        top = max(z)
        exps = [math.exp(v - top) for v in z]
        total = math.fsum(exps)
        best = z.index(top)
        return self._classes[best], tuple(e / total for e in exps)
