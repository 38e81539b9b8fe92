"""Answers: predictions turned into the wire shape, as JSON objects or CSV rows."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from modelapi.bundle import Manifest
from modelapi.errors import FieldError, InvalidInput, MalformedBody, PayloadTooLarge
from modelapi.formats import Prediction
from modelapi.predictor import Predictor
from modelapi.schema import Row

__all__ = [
    "answer",
    "answer_columns",
    "answers",
    "csv_header",
    "parse_csv",
    "write_csv",
]


def answers(predictor: Predictor, predictions: Sequence[Prediction]) -> list[dict[str, object]]:
    """One answer per prediction: `{"outcome": 1, "probabilities": {"0": 0.2, "1": 0.8}}`.

    A regressor's answer has the value alone: `{"price": 3.2}`.
    """
    key = predictor.manifest.target.key
    classes = predictor.manifest.classes
    if classes is None:
        return [{key: value} for value, _ in predictions]
    names = [str(c) for c in classes]
    return [
        {key: label, "probabilities": dict(zip(names, probs or (), strict=True))}
        for label, probs in predictions
    ]


def answer(predictor: Predictor, prediction: Prediction) -> dict[str, object]:
    """The answer to one prediction, as in `answers`."""
    label, probs = prediction
    classes = predictor.manifest.classes
    if classes is None:
        return {predictor.manifest.target.key: label}
    return {
        predictor.manifest.target.key: label,
        "probabilities": {str(c): p for c, p in zip(classes, probs or (), strict=True)},
    }


def csv_header(predictor: Predictor) -> list[str]:
    """The answer columns: the target key, then `probability_<class>` for a classifier."""
    return answer_columns(predictor.manifest)


def answer_columns(manifest: Manifest) -> list[str]:
    """The answer columns of a model's manifest (also used where no Predictor is loaded)."""
    classes = manifest.classes or ()
    return [manifest.target.key, *(f"probability_{c}" for c in classes)]


def parse_csv(predictor: Predictor, body: bytes, max_rows: int) -> list[Row]:
    """Validate a CSV body (header row + rows); raise InvalidInput naming every bad cell."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedBody("body", "is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise MalformedBody("body", "must start with a header row naming the features")
        records = list(reader)
    except csv.Error:
        raise MalformedBody("body", "is not valid CSV") from None
    records = [r for r in records if r]
    if len(records) > max_rows:
        raise PayloadTooLarge("body", f"must hold at most {max_rows} rows")
    # Checked once for the header, so a body without rows is refused too, not answered empty.
    named = set(header)
    errors: list[FieldError] = [
        FieldError("header", f"has no column {f.column} ({f.key})")
        for f in predictor.features.features
        if f.key not in named and f.column not in named
    ]
    if errors:
        raise InvalidInput.of(errors)
    rows: list[Row] = []
    for index, record in enumerate(records):
        if len(record) != len(header):
            errors.append(
                FieldError(f"[{index}]", f"has {len(record)} values for {len(header)} columns")
            )
            continue
        rows.append(
            predictor.features.parse_record(
                dict(zip(header, record, strict=True)), f"[{index}].", errors
            )
        )
    if errors:
        raise InvalidInput.of(errors)
    return rows


def write_csv(predictor: Predictor, predictions: Sequence[Prediction]) -> bytes:
    """The CSV answer: a header row, then one row per prediction."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_header(predictor))
    for label, probs in predictions:
        writer.writerow([label, *(repr(p) for p in probs or ())])
    return out.getvalue().encode()
