"""Batch scoring of a CSV file of any size: read in blocks of lines, score, write as we go.

Memory stays flat however long the file is: only one block of lines (`chunk_rows`) is held at
a time. The output is the input's columns followed by the answer columns
(`modelapi.batch.csv_header`), one output row per input row, blank lines dropped.

Two ways through a block, with the same answers:

- the record path: the csv module reads records (quotes, multi-line cells, CRLF), each record's
  feature cells are checked by the model's `FeatureTable.parse_record` (the validation every
  adapter shares), and the first bad line is reported as `line N, field: reason`;
- the columnar path (`modelapi.columnar`): a block of plain lines (no quotes, no blank lines)
  for a linear model with numeric features is parsed and scored with numpy. Whatever it does
  not accept goes down the record path, which then names the bad cell.

Numbers are written as: the label as text, probabilities with 15 decimals, regression values
as Python's shortest round-trip text.
"""

from __future__ import annotations

import csv
import importlib
import io
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from itertools import chain
from typing import BinaryIO, Protocol

from modelapi.batch import answer_columns
from modelapi.bundle import Manifest
from modelapi.client import ServerError
from modelapi.columnar import ColumnarScorer, format_probability
from modelapi.errors import FieldError, InvalidInput, MalformedBody, PayloadTooLarge
from modelapi.formats import Prediction
from modelapi.formats.linear import LinearSpec
from modelapi.predictor import Predictor
from modelapi.schema import Feature

__all__ = [
    "BlockScorer",
    "LocalScorer",
    "RemoteScorer",
    "answer_cells",
    "feature_columns",
    "score_csv",
]

Record = list[str]
_MAX_NAME_CHARS = 64
_SERVER_FIELD = re.compile(r"\[(\d+)\]\.?(.*)")


class BlockScorer(Protocol):
    """Scores the rows of one CSV layout (its header is fixed when the scorer is made)."""

    parallel: bool  # whether blocks may be scored on several threads at once

    def score_block(self, block: bytes, first_line: int) -> bytes | None:
        """Output lines for a block of plain `\\n`-ended lines, or None for the record path."""
        ...

    def score_records(self, records: Sequence[Record], lines: Sequence[int]) -> list[Record]:
        """The answer cells for each record; raise InvalidInput naming the first bad line."""
        ...


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

    `linear` is the model's `linear.json` spec when it is served from one: with numpy
    installed and every feature numeric, plain blocks then take the columnar path.
    """

    parallel = True

    def __init__(
        self, predictor: Predictor, header: Sequence[str], *, linear: LinearSpec | None = None
    ) -> None:
        manifest = predictor.manifest
        self._predictor = predictor
        self._keys = [f.key for f in manifest.features]
        self._n_columns = len(header)
        self._columns = feature_columns(manifest.features, header, answer_columns(manifest))
        self._is_classifier = manifest.classes is not None
        self._columnar: ColumnarScorer | None = None
        if linear is not None and ColumnarScorer.supports(linear, manifest.features):
            try:
                numpy = importlib.import_module("numpy")
            except ImportError:
                pass
            else:
                self._columnar = ColumnarScorer(
                    numpy, linear, manifest.classes, manifest.features, len(header), self._columns
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
            _csv_line(list(header)) if sorted(self._columns) == list(range(len(header))) else None
        )
        self._sent_header = _csv_line([header[i] for i in self._columns])

    def score_block(self, block: bytes, first_line: int) -> bytes | None:
        """Send a plain block as it is when its columns are exactly the features."""
        if self._raw_header is None:
            return None
        lines = block.split(b"\n")[:-1]
        numbers = range(first_line, first_line + len(lines))
        answers = self._send(self._raw_header, lines, numbers)
        out = [
            b"%s,%s\n" % (line, _csv_line(cells))
            for line, cells in zip(lines, answers, strict=True)
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
            sent.append(_csv_line([record[i] for i in self._columns]))
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


def _csv_line(cells: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(cells)
    return out.getvalue().encode()


class _Lines:
    """Whole lines from a binary stream, a block at a time; counts the bytes handed out."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._pending = b""
        self._eof = False
        self._bytes_per_line = 64.0
        self.bytes_read = 0

    def take(self, n_lines: int) -> bytes:
        """Up to `n_lines` whole lines, each ending in `\\n` (added to a last line); b"" at EOF."""
        parts = [self._pending]
        have = self._pending.count(b"\n")
        while have < n_lines and not self._eof:
            piece = self._raw.read(max(4096, int((n_lines - have) * self._bytes_per_line * 1.02)))
            if not piece:
                self._eof = True
                break
            parts.append(piece)
            have += piece.count(b"\n")
        data = b"".join(parts)
        if have >= n_lines:
            cut = _after_newline(data, n_lines, have)
        else:
            cut = len(data)
            if data and not data.endswith(b"\n"):
                data += b"\n"
                cut += 1
        block, self._pending = data[:cut], data[cut:]
        self.bytes_read += len(block)
        if n_lines >= 64 and block:
            self._bytes_per_line = len(block) / max(1, min(n_lines, have))
        return block


def _after_newline(data: bytes, n: int, total: int) -> int:
    """The index just past the n-th newline of data, which holds `total` newlines."""
    if n <= total - n:
        at = -1
        for _ in range(n):
            at = data.find(b"\n", at + 1)
        return at + 1
    at = len(data)
    for _ in range(total - n + 1):
        at = data.rfind(b"\n", 0, at)
    return at + 1


def _plain(block: bytes) -> bytes | None:
    """The block with CRLF made LF if the columnar path can read it, else None."""
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            return None
    if b'"' in block or b"\n\n" in block or block.startswith(b"\n"):
        return None
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return block


def _decode(block: bytes, first_line: int) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + block.count(b"\n", 0, exc.start)
        raise MalformedBody(f"line {line}", "is not UTF-8 text") from None


def _read_records(
    lines: Iterator[str], first_line: int, until_line: int
) -> tuple[list[tuple[Record, int]], int]:
    """CSV records with the line each starts on, through the record that ends past until_line.

    A quoted cell may run past `until_line`: the reader then pulls its lines from `lines`.
    Returns the records and the last line read.
    """
    reader = csv.reader(lines)
    done = first_line - 1
    records = []
    while done < until_line:
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise MalformedBody(f"line {done + 1}", f"is not valid CSV ({exc})") from None
        if record is None:
            break
        start, done = done + 1, first_line - 1 + reader.line_num
        if record:
            records.append((record, start))
    return records, done


def score_csv(
    source: BinaryIO,
    out: BinaryIO,
    scorer_for: Callable[[Record], tuple[BlockScorer, list[str]]],
    *,
    chunk_rows: int = 16_384,
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Score a CSV stream into `out`; return the number of rows scored.

    `scorer_for(header)` gives the scorer for the file's header and the answer column names.
    With `threads` > 1 and a scorer that allows it, plain blocks are scored on that many
    threads (numpy works outside the GIL), written in order; at most threads + 1 blocks are
    held. `progress(n_bytes)` is called after each block is written with the bytes it read.
    Raise InvalidInput naming the first bad line (rows before it are already written).
    """
    lines = _Lines(source)
    line_no = 0

    def more() -> Iterator[str]:
        # Lines after a block, for a quoted cell that runs on past the block's end.
        while line := lines.take(1):
            yield _decode(line, line_no + 1)

    first = lines.take(1)
    if not first:
        raise InvalidInput("input", "is empty: the first line must be a header naming the columns")
    head = _decode(first.removeprefix(b"\xef\xbb\xbf"), 1)
    found, line_no = _read_records(chain([head], more()), 1, 1)
    header = found[0][0] if found else []
    scorer, answers = scorer_for(header)
    out.write(_csv_line([*header, *answers]) + b"\n")
    n_rows = 0
    pending: deque[tuple[Future[bytes] | bytes, int]] = deque()
    reported = lines.bytes_read

    def write(keep: int) -> None:
        nonlocal reported
        while len(pending) > keep:
            job, read = pending.popleft()
            out.write(job.result() if isinstance(job, Future) else job)
            if progress is not None:
                progress(read - reported)
            reported = read

    threads = threads if scorer.parallel else 1
    with ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool:
        while block := lines.take(chunk_rows):
            plain = _plain(block)
            if plain is not None:
                if pool is None:
                    pending.append((_score_plain(scorer, plain, line_no + 1), lines.bytes_read))
                else:
                    job = pool.submit(_score_plain, scorer, plain, line_no + 1)
                    pending.append((job, lines.bytes_read))
                n_block = plain.count(b"\n")
                n_rows += n_block
                line_no += n_block
                write(threads)
                continue
            write(0)
            text_lines = io.StringIO(_decode(block, line_no + 1), newline="").readlines()
            written, n_records, line_no = _score_records(
                scorer, chain(text_lines, more()), line_no + 1, line_no + len(text_lines)
            )
            n_rows += n_records
            pending.append((written, lines.bytes_read))
            write(0)
        write(0)
    return n_rows


def _score_plain(scorer: BlockScorer, plain: bytes, first_line: int) -> bytes:
    """A plain block: the scorer's block path, else the record path on its lines alone
    (a block without quotes has no record that runs past its end)."""
    written = scorer.score_block(plain, first_line)
    if written is not None:
        return written
    text_lines = io.StringIO(plain.decode("utf-8"), newline="").readlines()
    written, _, _ = _score_records(
        scorer, iter(text_lines), first_line, first_line + len(text_lines) - 1
    )
    return written


def _score_records(
    scorer: BlockScorer, lines: Iterator[str], first_line: int, until_line: int
) -> tuple[bytes, int, int]:
    """Output lines for the records from first_line through until_line, how many records
    there were, and the last line read (later than until_line if a quoted cell ran on)."""
    records, last = _read_records(lines, first_line, until_line)
    cells = scorer.score_records([r for r, _ in records], [n for _, n in records])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(r + c for (r, _), c in zip(records, cells, strict=True))
    return buffer.getvalue().encode(), len(records), last
