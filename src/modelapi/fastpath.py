"""The fast path of POST /predict for linear models: typed rows in, answer bytes out.

`FeatureTable.decode_valid` has already checked every row in C (numbers, finite, whole where
the feature is an integer), so what is left is a dot product per row and the answer text.

- The decision function is generated once per model as one expression over the typed row's
  fields, `((b + w0 * row.f0) + w1 * row.f1) + ...`: the same operations in the same order as
  `LinearModel`, so the same floats bit for bit, at a fraction of a loop's cost. Its source
  holds only fixed names; the weights are bound as values, never written into the text.
- Answers are written from byte pieces: msgspec encodes a whole column of probabilities at
  once and the numbers are interleaved with the fixed text around them, which gives exactly
  the bytes of encoding the answer objects one by one.

It serves numeric features with one decision value (a binary classifier or a regressor) and
steps aside (None) for anything else, including a decision that is not a finite number; the
general path then answers, or names the error, as it always has. No numpy: this path is the
one the slim runtime and the Lambda package run too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import exp, isfinite
from typing import Any

import msgspec

from modelapi.formats.linear import LinearModel, expit
from modelapi.predictor import Predictor
from modelapi.schema import typed_field

__all__ = ["FastAnswer", "LinearFastPath"]

_encode = msgspec.json.Encoder().encode


# A struct rather than a NamedTuple: built in C, it costs a single-row answer a Python call less.
class FastAnswer(msgspec.Struct, frozen=True, gc=False):
    """An encoded JSON answer and the number of predictions per label (for metrics)."""

    body: bytes
    counts: dict[str, int]


def _generated(source: str, intercept: float, weights: Sequence[float]) -> Callable[..., Any]:
    """Compile `source`, in which `DECISION` stands for the decision value of `row`.

    The decision is `((b + w0 * row.f0) + w1 * row.f1) + ...`: summed left to right as
    LinearModel does. The source holds only these fixed names; the numbers are bound values.
    """
    names: dict[str, object] = {"__builtins__": {}, "exp": exp, "b": intercept}
    decision = "b"
    for index, weight in enumerate(weights):
        names[f"w{index}"] = weight
        decision = f"({decision} + w{index} * row.{typed_field(index)})"
    function: Callable[..., Any] = eval(source.replace("DECISION", decision), names)
    return function


def _column_texts(values: list[float]) -> list[bytes]:
    """Each float as msgspec writes it, from one encode of the whole column."""
    # A finite float's JSON text never holds a comma.
    return _encode(values)[1:-1].split(b",")


class LinearFastPath:
    """Answer decoded rows of a binary classifier or a regressor with numeric features."""

    __slots__ = ("_decision", "_end", "_labels", "_many", "_middle", "_prefixes")

    def __init__(self, model: LinearModel, target_key: str) -> None:
        spec = model.spec
        weights = [w[0] for w in spec.weights if isinstance(w, list)]
        intercept = spec.intercept[0]
        self._decision: Callable[[object], float] = _generated(
            "lambda row: DECISION", intercept, weights
        )
        # The probability of the second class per row, with LinearModel's expit written out.
        self._many: Callable[[list[object]], list[float]] = _generated(
            "lambda rows: [DECISION for row in rows]"
            if spec.kind == "regression"
            else "lambda rows: [1.0 / (1.0 + exp(-z)) if (z := DECISION) >= 0"
            " else (e := exp(z)) / (1.0 + e) for row in rows]",
            intercept,
            weights,
        )
        key = b"{" + _encode(target_key) + b":"
        classes = model.classes
        if spec.kind == "regression":
            self._labels: tuple[str, ...] = ()
            self._prefixes: tuple[bytes, ...] = (key,)
            self._middle = b""
            self._end = b"}"
        else:
            self._labels = tuple(str(c) for c in classes)
            names = [_encode(name) for name in self._labels]
            self._prefixes = tuple(
                key + _encode(c) + b',"probabilities":{' + names[0] + b":" for c in classes
            )
            self._middle = b"," + names[1] + b":"
            self._end = b"}}"

    @classmethod
    def of(cls, predictor: Predictor) -> LinearFastPath | None:
        """The fast path for a predictor, or None if its model is not one this path serves."""
        model = predictor.model
        if not isinstance(model, LinearModel) or len(model.spec.intercept) != 1:
            return None
        if any(f.type == "category" for f in predictor.features.features):
            return None
        if not all(isinstance(w, list) for w in model.spec.weights):
            return None
        return cls(model, predictor.manifest.target.key)

    def answer(self, decoded: object) -> FastAnswer | None:
        """The answer to one typed row or a list of them; None to take the general path."""
        if type(decoded) is list:
            return self._answer_many(decoded)
        z = self._decision(decoded)
        if not isfinite(z):
            return None
        if not self._labels:
            return FastAnswer(self._prefixes[0] + _encode(z) + self._end, {"value": 1})
        p1 = expit(z)
        positive = z > 0
        body = b"".join(
            (self._prefixes[positive], _encode(1.0 - p1), self._middle, _encode(p1), self._end)
        )
        return FastAnswer(body, {self._labels[positive]: 1})

    def _answer_many(self, rows: list[object]) -> FastAnswer | None:
        if not rows:
            return FastAnswer(b"[]", {})
        numbers = self._many(rows)
        # Not finite: a decision past a float's range; the general path decides what to answer.
        if not isfinite(sum(numbers)):
            return None
        n = len(rows)
        if not self._labels:
            # A finite float's JSON holds no comma: each comma separates two rows' values.
            prefix, end = self._prefixes[0], self._end
            values = _encode(numbers)[1:-1].replace(b",", end + b"," + prefix)
            return FastAnswer(b"[" + prefix + values + end + b"]", {"value": n})
        # A probability of exactly 0.5 may come from a decision just above zero (class 1)
        # or of zero (class 0): only the decision tells, so the general path answers.
        if 0.5 in numbers:
            return None
        negative, positive = self._prefixes
        prefixes = [positive if p > 0.5 else negative for p in numbers]
        parts = [b"", b"", self._middle, b"", self._end + b","] * n
        parts[0::5] = prefixes
        parts[1::5] = _column_texts([1.0 - p for p in numbers])
        parts[3::5] = _column_texts(numbers)
        # list.count compares by identity first: one pass in C.
        n_positive = prefixes.count(positive)
        counts = {self._labels[0]: n - n_positive, self._labels[1]: n_positive}
        counts = {label: count for label, count in counts.items() if count}
        parts[-1] = self._end + b"]"
        return FastAnswer(b"[" + b"".join(parts), counts)
