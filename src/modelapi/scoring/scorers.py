"""Scorers for `modelapi.scoring.stream`: a model in this process, or a modelapi server.

Both validate exactly as the server does (the model's `FeatureTable.parse_record`, or the
server itself) and write the same answer cells: the label as text, probabilities with 15
decimals (`modelapi.scoring.columnar.format_probability`), regression values as Python's shortest
round-trip text. The answer columns are `modelapi.answers.answer_columns`.
"""

from __future__ import annotations

import csv
import importlib
import io
import re
from collections.abc import Callable, Sequence

from modelapi.answers import answer_columns
from modelapi.bundle import Manifest
from modelapi.errors import FieldError, InvalidInput, PayloadTooLarge, ServerError
from modelapi.formats import Prediction
from modelapi.formats.linear import LinearModel
from modelapi.predictor import Predictor
from modelapi.schema import Feature
from modelapi.scoring.columnar import ColumnarScorer, format_probability
from modelapi.scoring.stream import Record, csv_line

__all__ = ["LocalScorer", "RemoteScorer", "answer_cells", "feature_columns"]

_MAX_NAME_CHARS = 64
_SERVER_FIELD = re.compile(r"\[(\d+)\]\.?(.*)")


def feature_columns(
    features: Sequence[Feature], header: Sequence[str], answers: Sequence[str]
) -> list[int]:
    """Where each feature is in the header (by CSV name or JSON key), in feature order.

    Other columns are carried through to the output untouched. Raise InvalidInput for a
    missing or repeated feature, or a column named like an answer column.
    """
    by_name: dict[str, Feature] = {}
    for feature in features:
        by_name[feature.key] = feature
        by_name.setdefault(feature.column, feature)
    found: dict[str, int] = {}
    errors: list[FieldError] = []
    for index, name in enumerate(header):
        shown = name if len(name) <= _MAX_NAME_CHARS else name[:_MAX_NAME_CHARS] + "..."
        if name in answers:
            errors.append(FieldError("header", f"column {shown} is also an answer column"))
        named = by_name.get(name)
        if named is None:
            continue
        if named.key in found:
            errors.append(FieldError("header", f"names {named.key} twice; keep one column"))
        found[named.key] = index
    for feature in features:
        if feature.key not in found:
            errors.append(FieldError("header", f"has no column {feature.column} ({feature.key})"))
    if errors:
        raise InvalidInput.of(errors)
    return [found[feature.key] for feature in features]


class LocalScorer:
    """Score with a model in this process; numpy's columnar path when the model allows it.

    A linear model with every feature numeric, with numpy installed, scores plain blocks on
    the columnar path unless `columnar` is False (every block then takes the record path).
    """

    parallel = True

    def __init__(
        self, predictor: Predictor, header: Sequence[str], *, columnar: bool = True
    ) -> None:
        manifest = predictor.manifest
        self._predictor = predictor
        self._keys = [f.key for f in manifest.features]
        self._n_columns = len(header)
        self._columns = feature_columns(manifest.features, header, answer_columns(manifest))
        self._is_classifier = manifest.classes is not None
        self._columnar: ColumnarScorer | None = None
        model = predictor.model
        if columnar and ColumnarScorer.supports(model, manifest.features):
            try:
                numpy = importlib.import_module("numpy")
            except ImportError:
                pass
            else:
                assert isinstance(model, LinearModel)
                self._columnar = ColumnarScorer(
                    numpy, model, manifest.features, len(header), self._columns
                )

    def score_block(self, block: bytes, first_line: int) -> bytes | None:
        """Output lines from the columnar path, or None when it does not apply."""
        return None if self._columnar is None else self._columnar.score(block)

    def score_records(self, records: Sequence[Record], lines: Sequence[int]) -> list[Record]:
        """Validate every record with the feature table, then predict them together."""
        table = self._predictor.features
        pairs = list(zip(self._keys, self._columns, strict=True))
        rows = []
        for record, line in zip(records, lines, strict=True):
            if len(record) != self._n_columns:
                raise InvalidInput(
                    f"line {line}", f"has {len(record)} values for {self._n_columns} columns"
                )
            errors: list[FieldError] = []
            rows.append(
                table.parse_record({k: record[i] for k, i in pairs}, f"line {line}, ", errors)
            )
            if errors:
                raise InvalidInput.of(errors)
        try:
            predictions = self._predictor.predict(rows)
        except InvalidInput as exc:  # a prediction that is not a finite number
            raise _at_lines(exc, lines) from None
        return [answer_cells(p, self._is_classifier) for p in predictions]


def answer_cells(prediction: Prediction, is_classifier: bool) -> Record:
    """The answer cells of one prediction, as `modelapi predict` writes them."""
    value, probs = prediction
    if is_classifier:
        return [str(value), *(format_probability(p) for p in probs or ())]
    return [repr(value)]


class RemoteScorer:
    """Score through a modelapi server's `POST /predict` with CSV bodies.

    `post_csv` sends one CSV body and returns the CSV answer (`Client.predict_csv`). Only the
    feature columns are sent; requests hold at most `request_rows` rows and are halved when
    the server answers 413 (a body or row limit).
    """

    parallel = False  # one kept-alive connection

    def __init__(
        self,
        post_csv: Callable[[bytes], bytes],
        manifest: Manifest,
        header: Sequence[str],
        *,
        request_rows: int = 5000,
    ) -> None:
        self._post = post_csv
        self._answer_columns = answer_columns(manifest)
        self._is_classifier = manifest.classes is not None
        self._n_columns = len(header)
        self._columns = feature_columns(manifest.features, header, self._answer_columns)
        self._request_rows = request_rows
        # A header of exactly the features lets plain blocks go out as they are.
        self._raw_header = (
            csv_line(list(header)) if sorted(self._columns) == list(range(len(header))) else None
        )
        self._sent_header = csv_line([header[i] for i in self._columns])

    def score_block(self, block: bytes, first_line: int) -> bytes | None:
        """Send a plain block as it is when its columns are exactly the features.

        A block with a blank line goes to the record path, which drops those lines.
        """
        if self._raw_header is None or b"\n\n" in block or block.startswith(b"\n"):
            return None
        lines = block.split(b"\n")[:-1]
        numbers = range(first_line, first_line + len(lines))
        answers = self._send(self._raw_header, lines, numbers)
        out = [
            b"%s,%s\n" % (line, csv_line(cells)) for line, cells in zip(lines, answers, strict=True)
        ]
        return b"".join(out)

    def score_records(self, records: Sequence[Record], lines: Sequence[int]) -> list[Record]:
        """Send the feature cells of each record; map the server's errors to file lines."""
        sent = []
        for record, line in zip(records, lines, strict=True):
            if len(record) != self._n_columns:
                raise InvalidInput(
                    f"line {line}", f"has {len(record)} values for {self._n_columns} columns"
                )
            sent.append(csv_line([record[i] for i in self._columns]))
        return self._send(self._sent_header, sent, lines)

    def _send(self, header: bytes, rows: Sequence[bytes], lines: Sequence[int]) -> list[Record]:
        answers: list[Record] = []
        start = 0
        size = self._request_rows
        while start < len(rows):
            part = rows[start : start + size]
            body = header + b"\n" + b"\n".join(part) + b"\n"
            try:
                answer = self._post(body)
            except PayloadTooLarge:
                if size == 1:
                    raise
                size = self._request_rows = max(1, size // 2)
                continue
            except InvalidInput as exc:
                raise _at_lines(exc, lines[start : start + size]) from None
            answers.extend(self._cells(answer, len(part)))
            start += len(part)
        return answers

    def _cells(self, answer: bytes, expected_rows: int) -> list[Record]:
        """The answer cells from the server's CSV answer, checked and in the output format."""
        width = len(self._answer_columns)
        try:
            reader = csv.reader(io.StringIO(answer.decode("utf-8"), newline=""))
            header = next(reader, None)
            rows = [row for row in reader if row]
            if (
                header == self._answer_columns
                and len(rows) == expected_rows
                and all(len(row) == width for row in rows)
            ):
                if self._is_classifier:
                    return [
                        [row[0], *(format_probability(float(p)) for p in row[1:])] for row in rows
                    ]
                return [[repr(float(row[0]))] for row in rows]
        except (UnicodeDecodeError, csv.Error, ValueError, IndexError):
            pass
        raise ServerError(
            f"the server's CSV answer is not {expected_rows} rows of"
            f" {', '.join(self._answer_columns)}; is it a modelapi server for this model?",
            200,
        )


def _at_lines(exc: InvalidInput, lines: Sequence[int]) -> InvalidInput:
    """The server's `[3].glucose` becomes `line 17, glucose`, for the first bad line only.

    `body` names the one row of a single-row request.
    """
    details: list[FieldError] = []
    first_index: int | None = None
    for detail in exc.details:
        field = "[0]" if detail.field == "body" and len(lines) == 1 else detail.field
        match = _SERVER_FIELD.fullmatch(field)
        if match is None or int(match[1]) >= len(lines):
            details.append(detail)
            continue
        index = int(match[1])
        if first_index is None:
            first_index = index
        if index == first_index:
            where = f"line {lines[index]}" + (f", {match[2]}" if match[2] else "")
            details.append(FieldError(where, detail.reason))
    return type(exc).of(details)
