"""Columnar scoring: a block of plain CSV lines parsed, scored and written with numpy.

This is the fast path of `modelapi predict` for a linear model with numeric features. It
accepts only a subset of what the record path (csv module + `FeatureTable.parse_record`)
accepts, and gives the same numbers for it; whatever it does not accept, it hands back
(`score` returns None) and the record path scores the block and names any bad cell.

Accepted cells are `[+-]?digits[.digits]` with at most 15 digits: the mantissa is then an exact
integer below 2**53 and one division by an exact power of ten gives the correctly rounded value,
the same float that `float(text)` gives. An empty cell is a missing value (NaN) for a feature
that accepts one, as the record path reads it. Exponents, spaces, quotes, other empty cells and
the like go to the record path. The decision function is the model's own
(`LinearModel.decision`, applied to a row of columns), so it is bit-for-bit the one that answers
single rows. A `pipeline.json` model with numeric inputs is scored here too, by its numpy
evaluator (`modelapi.formats.pipeline.vectorised`): the same outputs as its compiled code, with
its exp and softmax applied by the compiled code's own functions. The linear model's logistic
and softmax use math.exp and math.fsum as `LinearModel` does, so the written digits are the same
whichever path answers a row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from modelapi.answers import PROBABILITY_DECIMALS
from modelapi.formats.linear import LinearModel
from modelapi.formats.pipeline import PipelineModel
from modelapi.schema import Feature
from modelapi.scoring.passes import line_passes

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Bytes = npt.NDArray[np.uint8]
    Floats = npt.NDArray[np.float64]
    Ints = npt.NDArray[np.int64]
    Words = npt.NDArray[np.uint64]
    UInts = npt.NDArray[np.unsignedinteger[Any]]

__all__ = ["BlockModel", "ColumnarScorer", "block_model"]

_MAX_DIGITS = 15
_MAX_CELL_CHARS = 17  # sign, 15 digits, dot
_PROBABILITY_CHARS = 2 + PROBABILITY_DECIMALS
_ROOM = ord("?")  # a character of an answer template that is written per row
_EXACT_LIMIT = float(2**53)
_COMMA, _NEWLINE, _DOT, _PLUS, _MINUS, _ZERO = 44, 10, 46, 43, 45, 48


class BlockModel(Protocol):
    """What the columnar path scores with: answer columns for a block of feature values."""

    @property
    def classes(self) -> tuple[object, ...]:
        """The class labels in manifest order (empty for a regressor)."""
        ...

    def columns(self, values: Floats) -> tuple[Ints | None, list[Floats]] | None:
        """(class index per row or None, then the answer columns), or None if not finite."""
        ...


def block_model(numpy: ModuleType, model: object, features: Sequence[Feature]) -> BlockModel | None:
    """The columnar form of a model with numeric features, or None where there is none."""
    if any(f.type not in ("integer", "number") for f in features):
        return None
    if isinstance(model, LinearModel):
        return _LinearBlock(numpy, model)
    if isinstance(model, PipelineModel):
        evaluator: BlockModel | None = model.block_evaluator()
        return evaluator
    return None


class ColumnarScorer:
    """Score blocks of quote-free CSV lines for a model with numeric features."""

    def __init__(
        self,
        numpy: ModuleType,
        model: BlockModel,
        features: Sequence[Feature],
        n_columns: int,
        feature_columns: Sequence[int],
    ) -> None:
        self._np = numpy
        self._model = model
        labels = [_cell(str(c)).encode() for c in model.classes]
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
        self._accepts_missing = numpy.asarray([f.accepts_missing for f in features], dtype=bool)
        self._pow10 = numpy.asarray([10.0**k for k in range(_MAX_CELL_CHARS + 2)])
        self._int_pow10 = numpy.asarray([10**k for k in range(_MAX_CELL_CHARS + 2)], numpy.uint64)
        self._bit = numpy.asarray([1 << k for k in range(_MAX_CELL_CHARS + 1)], numpy.uint64)
        self._bit_index = numpy.zeros(37, dtype=numpy.int64)
        self._bit_index[[2**k % 37 for k in range(_MAX_CELL_CHARS + 1)]] = range(
            _MAX_CELL_CHARS + 1
        )
        self._four_digits = _four_digits(numpy)
        label_chars = None if self._label_matrix is None else self._label_matrix.shape[1]
        template = _answer_template(label_chars, len(labels))
        self._answer_chars = len(template)
        self._fixed_chars = [(at, char) for at, char in enumerate(template) if char != _ROOM]

    @classmethod
    def supports(cls, model: object, features: Sequence[Feature]) -> bool:
        """Whether a model may be scored here: linear or pipeline.json, every feature a number
        or an integer.

        Booleans and dates are not: their text forms (`True`, `2024-05-31`) are the record
        path's to read, and a digit cell such as `2` is not a boolean.
        """
        return isinstance(model, (LinearModel, PipelineModel)) and all(
            f.type in ("integer", "number") for f in features
        )

    def score(self, block: bytes) -> bytes | None:
        """Answer lines for a block of whole `\\n`-ended lines, or None to use the record path."""
        np = self._np
        buf = np.frombuffer(block, dtype=np.uint8)
        written = []
        covered = 0
        for start, end in line_passes(block):
            parsed = self._parse(buf[start:end])
            predicted = None if parsed is None else self._model.columns(parsed)
            if predicted is None:
                return None
            written.append(self._write(block[start:end], *predicted))
            covered = end
        return b"".join(written) if covered == len(block) else None

    def values(self, block: bytes) -> Floats | None:
        """Features in order, a row per `\\n`-ended line; None for a cell read elsewhere."""
        return self._parse(self._np.frombuffer(block, dtype=self._np.uint8))

    def _parse(self, buf: Bytes) -> Floats | None:
        np = self._np
        is_newline = buf == _NEWLINE
        separators = np.flatnonzero((buf == _COMMA) | is_newline)
        n_rows = int(np.count_nonzero(is_newline))
        if n_rows == 0 or separators.size != n_rows * self._n_columns:
            return None
        ends = separators.reshape(n_rows, self._n_columns)
        if not is_newline.take(ends[:, -1]).all():
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
        if width > _MAX_CELL_CHARS:
            return None
        # An empty cell is a missing value (as the record path reads it) where the model
        # answers one, a cell for the record path to name elsewhere. Its window is cut to
        # nothing below (`% 10**0`), and it is read as NaN at the end.
        empty = None
        if int(lengths.min()) == 0:
            if self._n_columns == 1:  # a blank line, which the record path drops
                return None
            empty = np.flatnonzero(lengths == 0)
            if not self._accepts_missing.take(empty % self._columns.size).all():
                return None
        # Every character at once: its digit (0 for any other character), and whether it is
        # not a digit. Windows of `width` characters ending at each cell's last character then
        # hold the cell's digits as a number (dot and sign count as 0) and its non-digits as
        # bits; the part of the window before the cell is cut off with `% 10**length`.
        digit = buf - np.uint8(_ZERO)
        is_digit = digit < 10
        digit *= is_digit
        last = cell_ends - 1
        scaled = self._window(digit, width, 10).take(last) % self._int_pow10.take(lengths)
        odd = self._window((~is_digit).view(np.uint8), width, 2).take(last)
        odd &= (np.uint64(1) << lengths.astype(np.uint64)) - np.uint64(1)
        digits = lengths
        decimals = None
        negative = None
        unusual = np.flatnonzero(odd != 0)
        if unusual.size:
            # Cells with a dot or a sign: allowed is one dot anywhere and a sign first.
            bits = odd.take(unusual)
            lowest = bits & (np.uint64(0) - bits)
            rest = bits ^ lowest
            at = self._bit_index.take(lowest % np.uint64(37))  # 2**k % 37 differs for k < 36
            length = lengths.take(unusual)
            char = buf.take(last.take(unusual) - at)
            first = buf.take(cell_starts.take(unusual))
            first_is_sign = (first == _PLUS) | (first == _MINUS)
            is_dot = char == _DOT
            alone = rest == 0
            lone_sign = alone & first_is_sign & (at == length - 1)
            dot_and_sign = (rest == self._bit.take(length - 1)) & first_is_sign & is_dot
            if not np.where(alone, is_dot | lone_sign, dot_and_sign).all():
                return None
            digits = lengths.copy()
            digits[unusual] -= np.where(alone, 1, 2)
            dotted = unusual[is_dot]
            decimals = at[is_dot]
            negative = unusual[first == _MINUS]
        if int(digits.max()) > _MAX_DIGITS:
            return None
        # Cells without a digit: the empty ones, and no other (a lone sign or dot).
        if int(np.count_nonzero(digits == 0)) != (0 if empty is None else empty.size):
            return None
        if int(scaled.max()) >= _EXACT_LIMIT:
            return None
        values = scaled.astype(np.float64)
        if decimals is not None and decimals.size:
            # The dot's place was read as a 0 digit: drop it, then scale exactly once.
            shifted = scaled.take(dotted)
            whole = shifted // self._int_pow10.take(decimals + 1)
            mantissa = shifted - whole * np.uint64(9) * self._int_pow10.take(decimals)
            values[dotted] = mantissa.astype(np.float64) / self._pow10.take(decimals)
        if negative is not None and negative.size:
            values[negative] = -values[negative]
        if empty is not None:
            values[empty] = np.nan
        values = values.reshape(n_rows, self._columns.size)
        if self._integer.any():
            ints = values[:, self._integer]
            not_whole = ints != np.floor(ints)
            if empty is not None:
                not_whole &= ~np.isnan(ints)  # a missing value is no fraction
            if not_whole.any():
                return None
        result: Floats = values
        return result

    def _window(self, values: UInts, width: int, base: int) -> UInts:
        """At each position, the last `width` values read as a number in `base` (leftmost
        most significant; positions before the buffer count as 0)."""
        np = self._np
        levels: dict[int, UInts] = {1: values}
        size = 1
        while size * 2 <= width:
            levels[size * 2] = _shifted_sum(np, levels[size], levels[size], size, base, size * 2)
            size *= 2
        window = levels[size]
        covered = size
        for part in sorted(levels, reverse=True):
            if covered + part <= width:
                window = _shifted_sum(np, window, levels[part], covered, base, covered + part)
                covered += part
        return window

    def _write(self, block: bytes, labels: Ints | None, numbers: list[Floats]) -> bytes:
        np = self._np
        if labels is None:
            pieces = [f",{v!r}\n".encode() for v in numbers[0].tolist()]
        else:
            # The template's fixed characters (commas, dots, newline) a column at a time: a
            # row at a time would be one small copy per row.
            text = np.empty((labels.size, self._answer_chars), dtype=np.uint8)
            for column, char in self._fixed_chars:
                text[:, column] = char
            at = 0
            if self._label_matrix is not None:
                at = 1 + self._label_matrix.shape[1]
                text[:, 1:at] = self._label_matrix.take(labels, axis=0)
            for p in numbers:
                self._fixed(p, text, at + 1)
                at += 1 + _PROBABILITY_CHARS
            # One bytes object per row (an S dtype drops only trailing NULs; rows end in a newline).
            pieces = text.view(f"S{text.shape[1]}").ravel().tolist()
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

    def _fixed(self, p: Floats, text: Bytes, at: int) -> None:
        """Write `0.123456789012345` per row at column `at` of `text` (its dot is there).

        rint(p * 1e15) is the arithmetic of `format_probability`; its 16 digits are looked up
        four at a time and written as two 8-byte words per row.
        """
        np = self._np
        scaled = np.rint(p * 10.0**PROBABILITY_DECIMALS).astype(np.int64)
        high = scaled // 10**8  # the whole digit (0 or 1) and 7 decimals
        low = scaled - high * 10**8
        words = []
        for half in (high, low):
            left = half // 10**4
            four = self._four_digits
            words.append(four.take(left) | four.take(half - left * 10**4) << np.uint64(32))
        n_rows, width = text.shape

        def column(offset: int) -> Words:
            view: Words = np.ndarray((n_rows,), "<u8", text, offset, (width,))
            return view

        # Decimals 1-7 then 8-15; the second word overwrites the first one's spare byte.
        column(at + 2)[:] = words[0] >> np.uint64(8)
        column(at + 2 + 7)[:] = words[1]
        text[:, at] = words[0].astype(np.uint8)


class _LinearBlock:
    """A linear model's answer columns, from its own decision function applied to columns."""

    def __init__(self, numpy: ModuleType, model: LinearModel) -> None:
        self._np = numpy
        self._model = model

    @property
    def classes(self) -> tuple[object, ...]:
        """The class labels in manifest order (empty for a regressor)."""
        return self._model.classes

    def columns(self, values: Floats) -> tuple[Ints | None, list[Floats]] | None:
        """(class index per row or None, then the answer values: probabilities or the value).

        None when a decision value is not finite: the record path then answers as the
        Predictor does, with an error naming the line or a finite answer.
        """
        np = self._np
        model = self._model
        n_rows = values.shape[0]
        # An overflow is not an error here: the non-finite check below hands the block over.
        with np.errstate(over="ignore", invalid="ignore"):
            decided = model.decision([values[:, j] for j in range(values.shape[1])])
        outputs = decided if isinstance(decided, tuple) else (decided,)
        z = np.empty((n_rows, len(outputs)))
        for out, column in enumerate(outputs):
            z[:, out] = column
        if not np.isfinite(z).all():
            return None
        if model.spec.kind == "regression":
            return None, [z[:, 0]]
        if z.shape[1] == 1:
            score = z[:, 0]
            # Same split by sign as LinearModel's expit, so exp never overflows. exp is
            # math.exp, as there: numpy's differs from it in the last bit for some values.
            e = _math_exp(np, -np.abs(score))
            p1 = np.where(score >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
            return (score > 0).astype(np.int64), [1.0 - p1, p1]
        # LinearModel's softmax: math.exp, then an exactly rounded sum (math.fsum) per row.
        top = z.max(axis=1, keepdims=True)
        exps = _math_exp(np, z - top)
        total = np.fromiter(map(math.fsum, exps.tolist()), np.float64, n_rows)
        probs = exps / total[:, None]
        return np.argmax(z, axis=1), list(probs.T)


def _math_exp(np: ModuleType, values: Floats) -> Floats:
    """math.exp of every value (about 70 ns each, against 1 for numpy's own exp)."""
    flat = np.fromiter(map(math.exp, values.ravel().tolist()), np.float64, values.size)
    result: Floats = flat.reshape(values.shape)
    return result


def _shifted_sum(
    numpy: ModuleType, low: UInts, high: UInts, shift: int, base: int, n_places: int
) -> UInts:
    """`low[i] + high[i - shift] * base**shift` (0 where i < shift), in the narrowest unsigned
    type that holds `n_places` places of `base`."""
    bits = (base**n_places - 1).bit_length()
    kinds = ((8, numpy.uint8), (16, numpy.uint16), (32, numpy.uint32))
    dtype = next((kind for size, kind in kinds if bits <= size), numpy.uint64)
    out: UInts = low.astype(dtype)
    if shift < out.size:
        # Cast first: a ufunc casting on the fly is many times slower than a plain copy.
        shifted = (out if high is low else high.astype(dtype))[:-shift] * dtype(base**shift)
        out[shift:] += shifted
    return out


def _answer_template(label_chars: int | None, n_probabilities: int) -> bytes:
    """One answer row's fixed characters and room (`?`) for the rest: a comma and a label of
    `label_chars` (none when None), then per probability a comma, the digit, the dot and
    the decimals; then the newline."""
    probability = b",?." + b"?" * PROBABILITY_DECIMALS
    label = b"" if label_chars is None else b"," + b"?" * label_chars
    return label + probability * n_probabilities + b"\n"


def _four_digits(numpy: ModuleType) -> Words:
    """Entry k holds the four ASCII digits of k, as the low half of an 8-byte word (40 kB of
    uint32 would do, but the words are shifted and combined as uint64 anyway)."""
    places = numpy.asarray([1000, 100, 10, 1])
    table = numpy.zeros((10_000, 8), dtype=numpy.uint8)
    table[:, :4] = numpy.arange(10_000)[:, None] // places % 10 + _ZERO
    words: Words = table.view("<u8").ravel()
    return words


def _cell(text: str) -> str:
    """A CSV cell as csv.writer writes it (quoted when it holds a comma, quote or newline)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
