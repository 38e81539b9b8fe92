"""The numpy block path of columnar request bodies: whole blocks of numbers in, answer bytes out.

`modelapi.bodies.mlflow` hands over the numbers of a `dataframe_split` (or a positional
`instances` / `inputs`) body, or of CSV lines without a header, as `\\n`-ended lines of
comma-separated numbers. They are read by `ColumnarScorer.values` (exact decimal parsing, the
same floats as the JSON decoder and `float()`), and answered with the same bytes as the
single-row path:

- a linear binary classifier or regressor: the model's own decision function on columns
  (`LinearModel.decision`, bit for bit the single-row decision), then its logistic function
  with `math.exp` (numpy's exp differs from it in the last bit for a few inputs in a hundred),
  and answer text written from msgspec-encoded columns;
- any other model with numeric features: the rows as floats through `Predictor.predict`.

A null (an empty CSV cell) is a missing value, NaN, for a feature that accepts one; the
compiled code reads NaN as it reads None. Anything this path does not read (a cell with an
exponent, a null for a feature that must be given, a ragged row, a decision that is not
finite) makes it return None, and the general path answers or names the problem.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

import msgspec

from modelapi.answers import PROBABILITY_DECIMALS, AnswerTexts
from modelapi.errors import InvalidInput
from modelapi.formats import Prediction
from modelapi.formats.linear import LinearModel
from modelapi.metrics import label_counts
from modelapi.predictor import Predictor
from modelapi.scoring.columnar import ColumnarScorer, block_model
from modelapi.scoring.passes import line_passes

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Floats = npt.NDArray[np.float64]

__all__ = ["Answered", "BlockAnswers"]

_encode = msgspec.json.Encoder().encode
# Scorers kept per model, one per (columns, positions) layout a client sends.
_MAX_LAYOUTS = 16
# Outside [1e-4, 1e16) msgspec writes 0.00001 and 1e16 where repr writes 1e-05 and 1e+16.
_REPR_LOW, _REPR_HIGH = 1e-4, 1e16


class Answered(NamedTuple):
    """A block's predictions: a linear model's columns, or the predictor's own predictions."""

    labels: list[int] | None  # class index per row (binary classifier), else None
    numbers: list[float]  # p0, p1 per row (binary classifier), or the value per row
    predictions: list[Prediction] | None  # every other model
    array: Floats | None = None  # `numbers` as an array, when the block path made them


class BlockAnswers:
    """Answer blocks of numbers for one predictor whose features are all numeric."""

    def __init__(self, numpy: ModuleType, predictor: Predictor) -> None:
        self._np = numpy
        self._predictor = predictor
        self._features = predictor.manifest.features
        self._scorers: dict[tuple[int, tuple[int, ...]], ColumnarScorer] = {}
        model = predictor.model
        self._linear = (
            model if isinstance(model, LinearModel) and len(model.spec.intercept) == 1 else None
        )
        self._classes = predictor.manifest.classes or ()
        self._names = [str(c) for c in self._classes]
        self._cells = [_csv_cell(c) + b"," for c in self._classes]
        self._texts = AnswerTexts.of(predictor.manifest, predictor.answers)
        # The fast text must be the encoder's own bytes; a model whose names encode otherwise
        # (never seen, but cheap to rule out) answers through the encoder.
        if self._linear is not None and (self._texts is None or not self._writes_as_encoder()):
            self._linear = None

    @classmethod
    def of(cls, numpy: ModuleType, predictor: Predictor) -> BlockAnswers | None:
        """The block path for a predictor, or None when its features or model have none."""
        features = predictor.manifest.features
        if not ColumnarScorer.supports(predictor.model, features):
            return None
        if block_model(numpy, predictor.model, features) is None:
            return None
        return cls(numpy, predictor)

    def values(self, lines: bytes, n_columns: int, positions: Sequence[int]) -> Floats | None:
        """The feature values of `\\n`-ended lines of `n_columns` numbers, features at
        `positions`; None when some line or cell is not one this path reads."""
        layout = (n_columns, tuple(positions))
        scorer = self._scorers.get(layout)
        if scorer is None:
            if len(self._scorers) >= _MAX_LAYOUTS:
                self._scorers.clear()
            block = block_model(self._np, self._predictor.model, self._features)
            assert block is not None  # checked by `of`
            scorer = ColumnarScorer(self._np, block, self._features, n_columns, positions)
            self._scorers[layout] = scorer
        parts = []
        covered = 0
        for start, end in line_passes(lines):
            found = scorer.values(lines[start:end])
            if found is None:
                return None
            parts.append(found)
            covered = end
        if covered != len(lines) or not parts:
            return None
        values: Floats = parts[0] if len(parts) == 1 else self._np.concatenate(parts)
        return values

    def predict(self, values: Floats) -> Answered | None:
        """Predict rows of feature values; None when a prediction is not finite."""
        np = self._np
        model = self._linear
        if model is None:
            try:
                return Answered(None, [], self._predictor.predict(values.tolist()))
            except InvalidInput:  # not finite: the general path names the rows
                return None
        with np.errstate(over="ignore", invalid="ignore"):
            z = model.decision([values[:, j] for j in range(values.shape[1])])
            if not np.isfinite(z).all():
                return None
        if not self._classes:
            return Answered(None, z.tolist(), None, z)
        # LinearModel's expit: 1 / (1 + exp(-z)) for z >= 0, e / (1 + e) with e = exp(z) else.
        e = np.fromiter(map(math.exp, (-np.abs(z)).tolist()), dtype=np.float64, count=z.size)
        p1 = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        pairs = np.empty(2 * z.size)
        pairs[0::2] = 1.0 - p1
        pairs[1::2] = p1
        return Answered((z > 0).view(np.int8).tolist(), pairs.tolist(), None, pairs)

    def predictions(self, answered: Answered) -> list[Prediction]:
        """The predictions of a block, as `Predictor.predict` gives them (for metrics)."""
        if answered.predictions is not None:
            return answered.predictions
        numbers = answered.numbers
        if answered.labels is None:
            return [(value, None) for value in numbers]
        labels = [self._classes[k] for k in answered.labels]
        return list(zip(labels, zip(numbers[0::2], numbers[1::2], strict=True), strict=True))

    def counts(self, answered: Answered) -> dict[str, int]:
        """The block's predictions counted by label name, as `label_counts` counts them."""
        if answered.predictions is not None:
            return label_counts(answered.predictions)
        if answered.labels is None:
            return {"value": len(answered.numbers)} if answered.numbers else {}
        n_rows = len(answered.labels)
        n_positive = answered.labels.count(1)
        found = zip(self._names, (n_rows - n_positive, n_positive), strict=True)
        return {name: n for name, n in found if n}

    def json(self, answered: Answered) -> bytes:
        """The JSON array of answers, the bytes of `AnswerEncoder.many`."""
        if answered.predictions is not None:
            return self._predictor.answers.many(answered.predictions)
        numbers = answered.numbers
        texts = self._texts
        assert texts is not None  # else the block has no linear model, and predictions
        if answered.labels is None:
            return texts.values(numbers)
        if not numbers:
            return b"[]"
        # One encode of the interleaved pairs: p0 and p1 are every other text.
        found = _encode(numbers)[1:-1].split(b",")
        return texts.binary_texts(answered.labels, found[0::2], found[1::2])

    def csv(self, answered: Answered) -> bytes:
        """The CSV answer lines (no header), the rows of `AnswerEncoder.csv`."""
        if answered.predictions is not None:
            text = self._predictor.answers.csv(answered.predictions)
            return text.partition(b"\n")[2]
        numbers = answered.numbers
        if not numbers:
            return b""
        np = self._np
        found = np.asarray(numbers) if answered.array is None else answered.array
        if answered.labels is not None:
            return self._probability_rows(answered.labels, found)
        texts = _encode(numbers)[1:-1].split(b",")
        # csv.writer writes repr(): where msgspec's shortest text is spelled otherwise, use it.
        size = np.abs(found)
        for at in np.flatnonzero((size != 0) & ((size < _REPR_LOW) | (size >= _REPR_HIGH))):
            texts[at] = repr(numbers[at]).encode()
        return b"\n".join(texts) + b"\n"

    def _probability_rows(self, labels: list[int], pairs: Floats) -> bytes:
        """`label,p0,p1` lines, the probabilities as `format_probability` writes them.

        rint(p * 1e15) is its arithmetic (round half to even, as `round`); adding 1e15 makes
        every number 16 digits, so msgspec's text of them is a fixed-width matrix whose first
        digit, less one, is the whole part.
        """
        np = self._np
        n = len(labels)
        scaled = np.rint(pairs * 10.0**PROBABILITY_DECIMALS).astype(np.int64) + 10**15
        digits = np.frombuffer(_encode(scaled.tolist())[1:-1] + b",", dtype=np.uint8)
        digits = digits.reshape(2 * n, 17)
        text = np.empty((2 * n, 18), dtype=np.uint8)
        text[:, 0] = digits[:, 0] - 1
        text[:, 1] = ord(".")
        text[:, 2:] = digits[:, 1:]
        text[1::2, 17] = ord("\n")
        lines = text.reshape(n, 36).view("S36").ravel().tolist()
        parts = [b""] * (2 * n)
        parts[0::2] = list(map(self._cells.__getitem__, labels))
        parts[1::2] = lines
        return b"".join(parts)

    def _writes_as_encoder(self) -> bool:
        """Whether the fast text is the encoder's for sample answers (tiny and huge values)."""
        if self._classes:
            pairs = [0.5, 0.5, 1.0 - 1e-5, 1e-5, 1e-300, 1.0, 0.75, 0.25]
            answered = Answered([0, 1, 1, 0], pairs, None)
        else:
            answered = Answered(None, [0.0, -0.0, 1e-5, 0.25, 1e16, 3.75e20, -2.5], None)
        predictions = self.predictions(answered)
        answers = self._predictor.answers
        return (
            self.json(answered) == answers.many(predictions)
            and self.csv(answered) == answers.csv(predictions).partition(b"\n")[2]
        )


def _csv_cell(label: object) -> bytes:
    """A label as csv.writer writes it (quoted when it must be)."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([label])
    return out.getvalue()[:-1].encode()
