"""Scorers for `modelapi.scoring.stream`: a model in this process, or a modelapi server.

Both find the features in the file's header with the server's own header rule
(`FeatureTable.columns`; other columns are carried through), validate exactly as the server
does (the model's `FeatureTable.parse_record`, or the server itself) and write the same
answer cells: the label as text, probabilities with 15
decimals (`modelapi.answers.format_probability`), regression values as Python's shortest
round-trip text. The answer columns are `modelapi.answers.answer_columns`.
"""

from __future__ import annotations

import csv
import importlib
import io
import re
from collections.abc import Callable, Sequence

from modelapi.answers import answer_columns, format_probability
from modelapi.bodies.csv_rows import header_columns
from modelapi.bundle import Manifest
from modelapi.errors import FieldError, InvalidInput, PayloadTooLarge, ServerError
from modelapi.formats import Prediction
from modelapi.predictor import Predictor
from modelapi.schema import Feature, FeatureTable, Row
from modelapi.scoring.columnar import ColumnarScorer, block_model
from modelapi.scoring.stream import Record, Scored, csv_line

__all__ = [
    "LocalScorer",
    "RemoteScorer",
    "answer_cells",
    "headerless_names",
    "output_columns",
]

_SERVER_FIELD = re.compile(r"\[(\d+)\]\.?(.*)")
# The answer columns' prefix when an input column already has an answer column's name.
_PREDICTED = "predicted_"


def output_columns(answers: Sequence[str], header: Sequence[str]) -> list[str]:
    """The answer columns as written after `header`: `predicted_<name>` for a name taken.

    A file that still holds the target column under the answer's name (`churn` beside the
    answer `churn`) keeps it, so truth and prediction can be compared; the answer moves aside.
    """
    taken = set(header)
    columns = []
    for name in answers:
        while name in taken:
            name = _PREDICTED + name
        taken.add(name)
        columns.append(name)
    return columns


def headerless_names(features: Sequence[Feature], width: int) -> list[str]:
    """Column names for a file without a header: the features in order, then `column_<n>`.

    Raise InvalidInput when the rows are narrower than the model's features.
    """
    if width < len(features):
        raise InvalidInput(
            "line 1",
            f"has {width} values; without a header the first {len(features)} columns must be"
            f" the features in the model's order: {', '.join(f.column for f in features)}"[:400],
        )
    names = [f.column for f in features]
    return names + [f"column_{n}" for n in range(len(features) + 1, width + 1)]


class LocalScorer:
    """Score with a model in this process; numpy's columnar path when the model allows it.

    A linear or pipeline.json model with every feature numeric, with numpy installed, scores
    plain blocks on the columnar path unless `columnar` is False (every block then takes the
    record path).
    """

    parallel = True

    def __init__(
        self,
        predictor: Predictor,
        header: Sequence[str],
        *,
        columnar: bool = True,
        skip_bad_lines: bool = False,
        header_fix: str = "",
    ) -> None:
        manifest = predictor.manifest
        self._predictor = predictor
        self._keys = [f.key for f in manifest.features]
        self._n_columns = len(header)
        self._columns = header_columns(predictor.features, header, fix=header_fix).positions
        self._is_classifier = manifest.classes is not None
        self._skip = skip_bad_lines
        self._columnar: ColumnarScorer | None = None
        model = predictor.model
        if columnar and ColumnarScorer.supports(model, manifest.features):
            try:
                numpy = importlib.import_module("numpy")
            except ImportError:
                pass
            else:
                block = block_model(numpy, model, manifest.features)
                if block is not None:
                    self._columnar = ColumnarScorer(
                        numpy, block, manifest.features, len(header), self._columns
                    )

    def score_block(self, block: bytes, first_line: int) -> bytes | None:
        """Output lines from the columnar path, or None when it does not apply."""
        return None if self._columnar is None else self._columnar.score(block)

    def score_records(self, records: Sequence[Record], lines: Sequence[int]) -> list[Scored]:
        """Validate every record with the feature table, then predict the valid ones together.

        A bad line raises InvalidInput naming it, or with `skip_bad_lines` is answered with
        its InvalidInput in place of cells.
        """
        table = self._predictor.features
        pairs = list(zip(self._keys, self._columns, strict=True))
        results: list[Scored] = []
        rows = []
        for record, line in zip(records, lines, strict=True):
            errors: list[FieldError] = []
            if len(record) != self._n_columns:
                errors.append(
                    FieldError(
                        f"line {line}", f"has {len(record)} values for {self._n_columns} columns"
                    )
                )
            else:
                row = table.parse_record({k: record[i] for k, i in pairs}, f"line {line}, ", errors)
            if errors:
                if not self._skip:
                    raise InvalidInput.of(errors)
                results.append(InvalidInput.of(errors))
                continue
            results.append([])
            rows.append(row)
        good = [i for i, result in enumerate(results) if not isinstance(result, InvalidInput)]
        for index, cells in zip(good, self._predict(rows, [lines[i] for i in good]), strict=True):
            results[index] = cells
        return results

    def _predict(self, rows: list[Row], lines: Sequence[int]) -> list[Scored]:
        try:
            predictions = self._predictor.predict(rows)
        except InvalidInput as exc:  # a prediction that is not a finite number
            if not self._skip:
                raise _at_lines(exc, lines) from None
            # Rare: answer the rows one at a time, so only the out-of-range ones are skipped.
            return [self._predict_one(row, line) for row, line in zip(rows, lines, strict=True)]
        return [answer_cells(p, self._is_classifier) for p in predictions]

    def _predict_one(self, row: Row, line: int) -> Scored:
        try:
            [prediction] = self._predictor.predict([row])
        except InvalidInput as exc:
            return _at_lines(exc, [line])
        return answer_cells(prediction, self._is_classifier)


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
        skip_bad_lines: bool = False,
        header_fix: str = "",
    ) -> None:
        self._post = post_csv
        self._answer_columns = answer_columns(manifest)
        self._is_classifier = manifest.classes is not None
        self._n_columns = len(header)
        table = FeatureTable(manifest.features)
        self._columns = header_columns(table, header, fix=header_fix).positions
        self._request_rows = request_rows
        self._skip = skip_bad_lines
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
        if self._skip:
            return None  # the record path writes bad lines aside
        answers = self._send(self._raw_header, lines, numbers)
        out = [
            b"%s,%s\n" % (line, csv_line(cells))  # type: ignore[arg-type]
            for line, cells in zip(lines, answers, strict=True)
        ]
        return b"".join(out)

    def score_records(self, records: Sequence[Record], lines: Sequence[int]) -> list[Scored]:
        """Send the feature cells of each record; map the server's errors to file lines.

        With `skip_bad_lines`, a line the server refuses is answered with its InvalidInput
        and the other lines are sent again without it.
        """
        results: list[Scored | None] = []
        sent: list[bytes] = []
        sent_lines: list[int] = []
        for record, line in zip(records, lines, strict=True):
            if len(record) != self._n_columns:
                bad = InvalidInput(
                    f"line {line}", f"has {len(record)} values for {self._n_columns} columns"
                )
                if not self._skip:
                    raise bad
                results.append(bad)
                continue
            results.append(None)
            sent.append(csv_line([record[i] for i in self._columns]))
            sent_lines.append(line)
        answers = iter(self._send(self._sent_header, sent, sent_lines))
        return [next(answers) if result is None else result for result in results]

    def _send(self, header: bytes, rows: Sequence[bytes], lines: Sequence[int]) -> list[Scored]:
        answers: list[Scored] = []
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
                part_lines = lines[start : start + size]
                if not self._skip:
                    raise _at_lines(exc, part_lines) from None
                answers.extend(self._without_bad_rows(header, part, part_lines, exc))
            else:
                answers.extend(self._cells(answer, len(part)))
            start += len(part)
        return answers

    def _without_bad_rows(
        self, header: bytes, rows: Sequence[bytes], lines: Sequence[int], exc: InvalidInput
    ) -> list[Scored]:
        """The rows the server named as bad, as errors; the others sent again."""
        bad = _row_errors(exc, lines)
        if not bad:  # an error that names no row (the header): nothing to skip
            raise _at_lines(exc, lines) from None
        kept = [i for i in range(len(rows)) if i not in bad]
        answers = iter(self._send(header, [rows[i] for i in kept], [lines[i] for i in kept]))
        return [bad[i] if i in bad else next(answers) for i in range(len(rows))]

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


def _row_errors(exc: InvalidInput, lines: Sequence[int]) -> dict[int, InvalidInput]:
    """The server's errors by row index (`[3].glucose` is row 3), each naming its file line."""
    by_row: dict[int, list[FieldError]] = {}
    for detail in exc.details:
        field = "[0]" if detail.field == "body" and len(lines) == 1 else detail.field
        match = _SERVER_FIELD.fullmatch(field)
        if match is None or int(match[1]) >= len(lines):
            return {}
        index = int(match[1])
        where = f"line {lines[index]}" + (f", {match[2]}" if match[2] else "")
        by_row.setdefault(index, []).append(FieldError(where, detail.reason))
    return {index: InvalidInput.of(details) for index, details in by_row.items()}


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
