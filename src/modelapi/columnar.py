"""Columnar scoring: a block of plain CSV lines parsed, scored and written with numpy.

This is the fast path of `modelapi predict` for a linear model with numeric features. It
accepts only a subset of what the record path (csv module + `FeatureTable.parse_record`)
accepts, and gives the same numbers for it; whatever it does not accept, it hands back
(`score` returns None) and the record path scores the block and names any bad cell.

Accepted cells are `[+-]?digits[.digits]` with at most 15 digits: the mantissa is then an
exact integer below 2**53 and one division by an exact power of ten gives the correctly
rounded value, the same float that `float(text)` gives. Exponents, spaces, quotes, empty
cells and the like go to the record path. The decision function is summed feature by
feature in the same order as `LinearModel`, so it is bit-for-bit the pure-Python one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from modelapi.formats.linear import LinearSpec
from modelapi.schema import Feature

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Bytes = npt.NDArray[np.uint8]
    Floats = npt.NDArray[np.float64]
    Ints = npt.NDArray[np.int64]
    Words = npt.NDArray[np.uint64]

__all__ = ["PROBABILITY_DECIMALS", "ColumnarScorer", "format_probability"]

# Probabilities are written with this many decimals by every path of `modelapi predict`.
PROBABILITY_DECIMALS = 15
_MAX_DIGITS = 15
_MAX_CELL_CHARS = 17  # sign, 15 digits, dot
_EXACT_LIMIT = float(2**53)
_ROWS_PER_PASS = 4096
_COMMA, _NEWLINE, _DOT, _PLUS, _MINUS, _ZERO = 44, 10, 46, 43, 45, 48


class ColumnarScorer:
    """Score blocks of quote-free CSV lines for a linear model with numeric features."""

    def __init__(
        self,
        numpy: ModuleType,
        spec: LinearSpec,
        classes: Sequence[object] | None,
        features: Sequence[Feature],
        n_columns: int,
        feature_columns: Sequence[int],
    ) -> None:
        self._np = numpy
        self._spec = spec
        labels = [_cell(str(c)).encode() for c in classes or ()]
        self._labels = labels
        # Labels of one width (the usual 0/1) are written as a byte matrix, others row by row.
        self._label_matrix = (
            numpy.frombuffer(b"".join(labels), dtype=numpy.uint8).reshape(len(labels), -1)
            if labels and len({len(label) for label in labels}) == 1
            else None
        )
        self._n_columns = n_columns
        self._columns = numpy.asarray(feature_columns, dtype=numpy.int64)
        self._all_columns = list(feature_columns) == list(range(n_columns))
        self._integer = numpy.asarray([f.type == "integer" for f in features], dtype=bool)
        self._pow10 = numpy.asarray([10.0**k for k in range(_MAX_CELL_CHARS + 2)])
        self._five_digits = _five_digits(numpy)

    @classmethod
    def supports(cls, spec: LinearSpec | None, features: Sequence[Feature]) -> bool:
        """Whether a model can be scored here: linear, every feature numeric."""
        return spec is not None and all(f.type != "category" for f in features)

    def score(self, block: bytes) -> bytes | None:
        """Answer lines for a block of whole `\\n`-ended lines, or None to use the record path."""
        np = self._np
        buf = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(buf == _NEWLINE)[_ROWS_PER_PASS - 1 :: _ROWS_PER_PASS] + 1
        if ends.size == 0 or ends[-1] != buf.size:
            ends = np.append(ends, buf.size)
        written = []
        start = 0
        # Passes of a few thousand rows keep every array small: cache-resident, and reused by
        # the allocator instead of mapped and faulted in afresh.
        for end in ends.tolist():
            parsed = self._parse(buf[start:end])
            predicted = None if parsed is None else self._predict(parsed)
            if predicted is None:
                return None
            written.append(self._write(block[start:end], *predicted))
            start = end
        return b"".join(written)

    def _parse(self, buf: Bytes) -> Floats | None:
        np = self._np
        is_newline = buf == _NEWLINE
        separators = np.flatnonzero((buf == _COMMA) | is_newline)
        n_rows = int(np.count_nonzero(is_newline))
        if n_rows == 0 or separators.size != n_rows * self._n_columns:
            return None
        ends = separators.reshape(n_rows, self._n_columns)
        if not is_newline[ends[:, -1]].all():
            return None
        starts = np.empty_like(separators)
        starts[0] = 0
        starts[1:] = separators[:-1] + 1
        if self._all_columns:
            cell_starts, cell_ends = starts, separators
        else:
            cell_starts = starts.reshape(n_rows, self._n_columns)[:, self._columns].ravel()
            cell_ends = ends[:, self._columns].ravel()
        lengths = cell_ends - cell_starts
        width = int(lengths.max())
        if width > _MAX_CELL_CHARS or int(lengths.min()) == 0:
            return None
        # Cells are read right-aligned, one character position at a time over every cell:
        # `padded[at]` is character k of each cell padded on the left to `width`.
        padded = np.concatenate([np.zeros(width, dtype=np.uint8), buf])
        skip = width - lengths
        n_cells = cell_ends.size
        scaled = np.zeros(n_cells)
        n_digits = np.zeros(n_cells, dtype=np.int8)
        n_dots = np.zeros(n_cells, dtype=np.int8)
        decimals = np.zeros(n_cells, dtype=np.int64)
        at = cell_ends.copy()
        for k in range(width):
            char = padded[at]
            at += 1
            is_dot = char == _DOT
            char -= np.uint8(_ZERO)
            is_digit = char < 10
            if k < width - 1:
                inside = skip <= k
                is_digit &= inside
                is_dot &= inside
            # Positional value with the dot's place left at zero: exact in float64 below 2**53.
            scaled *= 10.0
            char *= is_digit
            scaled += char
            n_digits += is_digit
            n_dots += is_dot
            decimals += is_dot * (width - 1 - k)
        first = buf[cell_starts]
        signed = (first == _PLUS) | (first == _MINUS)
        if (lengths - n_digits - n_dots - signed).any() or (n_dots > 1).any():
            return None
        if not n_digits.all() or (n_digits > _MAX_DIGITS).any() or (scaled >= _EXACT_LIMIT).any():
            return None
        whole = np.floor(scaled / self._pow10[decimals + 1])
        mantissa = np.where(n_dots > 0, scaled - 9.0 * whole * self._pow10[decimals], scaled)
        values = mantissa / self._pow10[decimals]
        values = np.where(first == _MINUS, -values, values).reshape(n_rows, self._columns.size)
        if self._integer.any():
            ints = values[:, self._integer]
            if (ints != np.floor(ints)).any():
                return None
        result: Floats = values
        return result

    def _predict(self, values: Floats) -> tuple[Ints | None, list[Floats]] | None:
        """(class index per row or None, then the answer values: probabilities or the value).

        None when a decision value is not finite: the record path then answers as the
        Predictor does, with an error naming the line or a finite answer.
        """
        np = self._np
        spec = self._spec
        k = len(spec.intercept)
        z = np.empty((values.shape[0], k))
        # An overflow is not an error here: the non-finite check below hands the block over.
        with np.errstate(over="ignore", invalid="ignore"):
            for out in range(k):
                column = np.full(values.shape[0], spec.intercept[out])
                for j, weights in enumerate(spec.weights):
                    assert isinstance(weights, list)
                    column += weights[out] * values[:, j]
                z[:, out] = column
        if not np.isfinite(z).all():
            return None
        if spec.kind == "regression":
            return None, [z[:, 0]]
        if k == 1:
            score = z[:, 0]
            # Same split by sign as LinearModel's expit, so exp never overflows.
            e = np.exp(-np.abs(score))
            p1 = np.where(score >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            return (score > 0).astype(np.int64), [1.0 - p1, p1]
        top = z.max(axis=1, keepdims=True)
        exps = np.exp(z - top)
        probs = exps / exps.sum(axis=1, keepdims=True)
        return np.argmax(z, axis=1), list(probs.T)

    def _write(self, block: bytes, labels: Ints | None, numbers: list[Floats]) -> bytes:
        np = self._np
        if labels is None:
            pieces = [f",{v!r}\n".encode() for v in numbers[0].tolist()]
        else:
            columns = [self._fixed(p) for p in numbers]
            if self._label_matrix is not None:
                columns.insert(0, self._label_matrix[labels])
            width = sum(1 + c.shape[1] for c in columns) + 1
            text = np.empty((labels.size, width), dtype=np.uint8)
            at = 0
            for column in columns:
                text[:, at] = _COMMA
                text[:, at + 1 : at + 1 + column.shape[1]] = column
                at += 1 + column.shape[1]
            text[:, at] = _NEWLINE
            # Answer text has no CR, so splitlines cuts exactly at each row's newline.
            pieces = text.tobytes().splitlines(keepends=True)
            if self._label_matrix is None:
                names = [b"," + label for label in self._labels]
                pieces = [
                    names[k] + piece for k, piece in zip(labels.tolist(), pieces, strict=True)
                ]
        # Each input line (split drops its newline) followed by its answer cells.
        interleaved = [b""] * (2 * len(pieces))
        interleaved[0::2] = block.split(b"\n")[: len(pieces)]
        interleaved[1::2] = pieces
        return b"".join(interleaved)

    def _fixed(self, p: Floats) -> Bytes:
        """`0.123456789012345` per row: rint(p * 1e15), the arithmetic of `format_probability`."""
        np = self._np
        scaled = np.rint(p * 10.0**PROBABILITY_DECIMALS).astype(np.int64)
        whole, frac = np.divmod(scaled, 10**PROBABILITY_DECIMALS)
        text: Bytes = np.empty((p.size, 2 + PROBABILITY_DECIMALS), dtype=np.uint8)
        text[:, 0] = whole.astype(np.uint8) + _ZERO
        text[:, 1] = _DOT
        for group in range(3):
            part = frac // 10 ** (10 - 5 * group) % 100_000
            digits = self._five_digits[part].view(np.uint8).reshape(p.size, 8)
            text[:, 2 + 5 * group : 7 + 5 * group] = digits[:, :5]
        return text


@functools.cache
def _five_digits(numpy: ModuleType) -> Words:
    """Entry k holds the five ASCII digits of k (and three spare bytes) in one 8-byte word.

    Three one-word lookups write fifteen decimals; a word gathers faster than five bytes.
    """
    places = numpy.asarray([10_000, 1000, 100, 10, 1])
    table = numpy.zeros((100_000, 8), dtype=numpy.uint8)
    table[:, :5] = numpy.arange(100_000)[:, None] // places % 10 + _ZERO
    words: Words = table.view(numpy.uint64).ravel()
    return words


def format_probability(p: float) -> str:
    """A probability as the answer CSV writes it: 15 decimals, `0.123456789012345`."""
    scaled = round(p * 10.0**PROBABILITY_DECIMALS)
    whole, frac = divmod(scaled, 10**PROBABILITY_DECIMALS)
    return f"{whole}.{frac:0{PROBABILITY_DECIMALS}d}"


def _cell(text: str) -> str:
    """A CSV cell as csv.writer writes it (quoted when it holds a comma, quote or newline)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
