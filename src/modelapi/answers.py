"""Answers: predictions in the wire shape, as JSON objects or CSV rows, the same for every format.

A classifier answers `{"outcome": 1, "probabilities": {"0": 0.2, "1": 0.8}}`, a regressor
`{"price": 3.2}`: the target's JSON key, then the class probabilities by class name. Each model
gets its own msgspec Struct types for these objects, built once when it is loaded, so an
answer is encoded in C without building a dict per row; the bytes are those of encoding the
objects as dicts. msgspec cannot name a field with a quote, a backslash or a control
character, so a model whose target key or class names hold one answers from dicts instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import msgspec

from modelapi.bundle import Manifest
from modelapi.errors import BundleError
from modelapi.formats import Prediction

__all__ = [
    "PROBABILITIES",
    "PROBABILITY_DECIMALS",
    "AnswerEncoder",
    "AnswerTexts",
    "answer_columns",
    "format_probability",
]

# The key of the class probabilities in a classifier's answer.
PROBABILITIES = "probabilities"
# CSV answers (the server's `text/csv` answer and `modelapi predict`) write a probability with
# this many decimals, within 6e-16 of the float: a fixed width that numpy can write for a
# million rows a second, where the shortest exact form (JSON answers) costs 0.3-0.6 µs a number.
PROBABILITY_DECIMALS = 15
_encode = msgspec.json.Encoder().encode
_UNRENAMABLE = re.compile(r'["\\\x00-\x1f]')


def answer_columns(manifest: Manifest) -> list[str]:
    """The answer columns of CSV answers: the target key, then `probability_<class>`."""
    classes = manifest.classes or ()
    return [manifest.target.key, *(f"probability_{c}" for c in classes)]


class AnswerEncoder:
    """Encode one model's predictions as JSON answers (one, or an array) or CSV rows."""

    __slots__ = ("_answer", "_columns", "_probabilities")

    def __init__(self, manifest: Manifest) -> None:
        key = manifest.target.key
        self._columns = answer_columns(manifest)
        self._answer: Callable[..., object]
        self._probabilities: Callable[..., object] | None = None
        if manifest.classes is None and _UNRENAMABLE.search(key):
            self._answer = lambda value: {key: value}
            return
        if manifest.classes is None:
            self._answer = msgspec.defstruct(
                "Answer", [("value", object)], rename={"value": key}, gc=False
            )
            return
        names = [str(c) for c in manifest.classes]
        if len(set(names)) != len(names) or key == PROBABILITIES:
            raise BundleError(
                f"manifest.json: class names must differ as text and the target key must not be"
                f" {PROBABILITIES!r}"
            )
        if any(_UNRENAMABLE.search(name) for name in (key, *names)):
            self._answer, self._probabilities = _dict_types(key, names)
            return
        fields = [f"p{index}" for index in range(len(names))]
        self._probabilities = msgspec.defstruct(
            "Probabilities",
            [(name, float) for name in fields],
            rename=dict(zip(fields, names, strict=True)),
            gc=False,
        )
        self._answer = msgspec.defstruct(
            "Answer",
            [("label", object), (PROBABILITIES, self._probabilities)],
            rename={"label": key},
            gc=False,
        )

    @property
    def columns(self) -> list[str]:
        """The CSV answer's header: the target key, then `probability_<class>` per class."""
        return self._columns

    def one(self, prediction: Prediction) -> bytes:
        """The JSON answer to one prediction."""
        return _encode(self._object(prediction))

    def many(self, predictions: Sequence[Prediction]) -> bytes:
        """The JSON array of answers to many predictions, in order."""
        answer, probabilities = self._answer, self._probabilities
        if probabilities is None:
            return _encode([answer(value) for value, _ in predictions])
        return _encode(
            [answer(label, probabilities(*probs)) for label, probs in predictions]  # type: ignore[misc]
        )

    def csv(self, predictions: Sequence[Prediction]) -> bytes:
        """The CSV answer: a header row, then one row per prediction."""
        # Imported here: JSON answers, the usual ones, never need them (cold start).
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self._columns)
        for label, probs in predictions:
            writer.writerow([label, *(format_probability(p) for p in probs or ())])
        return out.getvalue().encode()

    def _object(self, prediction: Prediction) -> object:
        label, probs = prediction
        if self._probabilities is None:
            return self._answer(label)
        return self._answer(label, self._probabilities(*probs))  # type: ignore[misc]


class AnswerTexts:
    """JSON arrays of answers written from columns of numbers, without an object per row.

    For a binary classifier or a regressor: msgspec encodes each column at once and the
    numbers' texts are joined with the fixed text around them, `{"outcome":1,
    "probabilities":{"0":` p0 `,"1":` p1 `}}`. `of` gives one only when that is byte for byte
    what `AnswerEncoder.many` writes, checked on sample answers (tiny, huge, negative zero).
    """

    __slots__ = ("_end", "_middle", "_prefixes", "_starts")

    def __init__(self, manifest: Manifest) -> None:
        key = b"{" + _encode(manifest.target.key) + b":"
        classes = manifest.classes or ()
        if classes:
            names = [_encode(str(c)) for c in classes]
            self._prefixes = [
                key + _encode(c) + b"," + _encode(PROBABILITIES) + b":{" + names[0] + b":"
                for c in classes
            ]
            self._middle, self._end = b"," + names[-1] + b":", b"}}"
        else:
            self._prefixes, self._middle, self._end = [key], b"", b"}"
        # What comes before each row's first number but the first: the previous row's end.
        self._starts = [self._end + b"," + prefix for prefix in self._prefixes]

    @classmethod
    def of(cls, manifest: Manifest, encoder: AnswerEncoder) -> AnswerTexts | None:
        """The texts for a model's answers, or None where they would not be the encoder's."""
        classes = manifest.classes
        if classes is not None and len(classes) != 2:
            return None
        texts = cls(manifest)
        if classes is None:
            values = [0.0, -0.0, 1e-5, 0.25, 1e16, 3.75e20, -2.5]
            same = texts.values(values) == encoder.many([(v, None) for v in values])
        else:
            p1 = [0.5, 1e-5, 1.0, 0.25, 1e-300]
            labels = [0, 1, 1, 0, 0]
            p0 = [1.0 - p for p in p1]
            predictions = [(classes[k], (a, b)) for k, a, b in zip(labels, p0, p1, strict=True)]
            same = texts.binary(labels, p0, p1) == encoder.many(predictions)
        return texts if same else None

    def values(self, values: list[float]) -> bytes:
        """A regressor's answers to finite values."""
        if not values:
            return b"[]"
        # A finite float's JSON holds no comma: each comma separates two rows' values.
        texts = _encode(values)[1:-1].replace(b",", self._starts[0])
        return b"[" + self._prefixes[0] + texts + self._end + b"]"

    def binary(self, labels: Sequence[int], p0: list[float], p1: list[float]) -> bytes:
        """A binary classifier's answers: class index (0 or 1) and finite probabilities."""
        return self.binary_texts(labels, _texts(p0), _texts(p1))

    def binary_texts(
        self, labels: Sequence[int], p0: Sequence[bytes], p1: Sequence[bytes]
    ) -> bytes:
        """As `binary`, from the probabilities' JSON texts."""
        if not labels:
            return b"[]"
        parts = [self._middle] * (4 * len(labels))
        parts[0::4] = list(map(self._starts.__getitem__, labels))
        parts[0] = b"[" + self._prefixes[labels[0]]
        parts[1::4] = p0
        parts[3::4] = p1
        parts.append(self._end + b"]")
        return b"".join(parts)


def _texts(values: list[float]) -> list[bytes]:
    """Each finite float as msgspec writes it, from one encode of the whole column."""
    return _encode(values)[1:-1].split(b",")


def _dict_types(
    key: str, names: Sequence[str]
) -> tuple[Callable[..., object], Callable[..., object]]:
    """Answer and probabilities builders that make dicts, for names a Struct cannot hold."""

    def probabilities(*values: float) -> dict[str, float]:
        return dict(zip(names, values, strict=True))

    def answer(label: object, probs: object) -> dict[str, object]:
        return {key: label, PROBABILITIES: probs}

    return answer, probabilities


def format_probability(p: float) -> str:
    """A probability as CSV answers write it: 15 decimals, `0.123456789012345`."""
    scaled = round(p * 10.0**PROBABILITY_DECIMALS)
    whole, frac = divmod(scaled, 10**PROBABILITY_DECIMALS)
    return f"{whole}.{frac:0{PROBABILITY_DECIMALS}d}"
