"""The numpy block path of MLflow bodies and CSV lines: numbers in, answer bytes out.

`modelapi.bodies.mlflow` and `modelapi.routes.invocations` hand over the raw JSON of a
`dataframe_split`'s parts, of an `instances` / `inputs` array, or the CSV lines of a body
without a header. Arrays of arrays of numbers become `\\n`-ended lines for
`BlockAnswers.values`; anything else (strings, nulls, deeper arrays, a decision that is not
finite) returns None, and the caller's pure-Python path answers or names the problem. This
module lives with `scoring`: it is never in the Lambda package, which has no numpy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence

import msgspec

from modelapi.bodies.mlflow_rows import check_rows, column_positions
from modelapi.predictor import Predictor
from modelapi.schema import IgnoredFields
from modelapi.scoring.block_answers import BlockAnswers

__all__ = ["block_answers", "lines_answer", "number_lines", "rows_answer", "split_answer"]

_decode = msgspec.json.Decoder(float_hook=float).decode
# Whitespace between JSON tokens; a body with strings never reaches the block path.
_SPACE = b" \t\r\n"
_SPACES = [bytes([c]) for c in _SPACE]
# Block paths kept, one per predictor recently served (a hot swap adds one).
_MAX_BLOCKS = 4
_blocks: dict[int, tuple[Predictor, BlockAnswers | None]] = {}
# An answer's bytes, and its predictions counted by label name (for metrics) when asked.
Fast = tuple[bytes, Callable[[], Mapping[str, int]]]


def block_answers(predictor: Predictor) -> BlockAnswers | None:
    """The numpy block path for a predictor; None without numpy or for a model it cannot take."""
    kept = _blocks.get(id(predictor))
    if kept is not None and kept[0] is predictor:
        return kept[1]
    block = None
    try:
        numpy = importlib.import_module("numpy")
    except ImportError:  # the slim serving install
        pass
    else:
        block = BlockAnswers.of(numpy, predictor)
    if len(_blocks) >= _MAX_BLOCKS:
        _blocks.clear()
    _blocks[id(predictor)] = (predictor, block)
    return block


def number_lines(raw: bytes) -> bytes | None:
    """A JSON array of arrays of numbers as `\\n`-ended lines of comma-separated numbers.

    A null is an empty cell, which the block path reads as a missing value where the model
    answers one (and otherwise hands back). None when the array holds anything else
    (strings, objects, deeper arrays), and for `-0`, which JSON reads as the integer 0 but a
    text parser as -0.0.
    """
    if b'"' in raw:
        return None
    # Single-character searches (memchr) first: most bodies need no more than these.
    text = raw.translate(None, _SPACE) if any(c in raw for c in _SPACES) else raw
    if text == b"[]":
        return b""
    if not (text.startswith(b"[[") and text.endswith(b"]]")):
        return None
    lines = text[2:-2].replace(b"],[", b"\n") + b"\n"
    if b"[" in lines or b"]" in lines:
        return None
    if b"n" in lines:
        lines = lines.replace(b"null", b"")
    if b"-" in lines and (b"-0," in lines or b"-0\n" in lines):
        return None
    return lines


def split_answer(
    predictor: Predictor,
    columns: bytes,
    data: bytes,
    index: bytes,
    max_rows: int,
    ignored: IgnoredFields,
    forbid_extra: bool,
) -> Fast | None:
    """The JSON answers to a `dataframe_split` of numbers (its parts' raw JSON; `index` empty
    when absent); None for anything else."""
    block = block_answers(predictor)
    if block is None:
        return None
    try:
        names = _decode(columns)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(names, list) or not all(type(name) is str for name in names):
        return None
    lines = number_lines(data)
    if lines is None:
        return None
    n_rows = lines.count(b"\n")
    if index and _length(index) != n_rows:
        return None
    check_rows(n_rows, max_rows)
    table = predictor.features
    found = column_positions(table, names, "dataframe_split.columns", ignored, forbid_extra)
    positions = [at for at in found if at is not None]
    if len(positions) != len(found):  # a missing column of missing values: the general path
        return None
    return _json_answer(block, lines, len(names), positions)


def rows_answer(predictor: Predictor, raw: bytes, max_rows: int) -> Fast | None:
    """The JSON answers to an `instances` or `inputs` array of arrays of numbers in feature
    order; None for anything else."""
    block = block_answers(predictor)
    lines = None if block is None else number_lines(raw)
    if block is None or lines is None:
        return None
    check_rows(lines.count(b"\n"), max_rows)
    n_features = len(predictor.features.keys)
    return _json_answer(block, lines, n_features, range(n_features))


def lines_answer(predictor: Predictor, body: bytes, max_rows: int) -> Fast | None:
    """The CSV answer lines to CSV lines of numbers in feature order, without a header; None
    for anything else (quotes, blank lines, more lines than `max_rows`: the reader judges)."""
    block = block_answers(predictor)
    if block is None or b'"' in body:
        return None
    lines = body.replace(b"\r\n", b"\n") if b"\r" in body else body
    if lines and not lines.endswith(b"\n"):
        lines += b"\n"
    if lines.count(b"\n") > max_rows:
        return None
    n_features = len(predictor.features.keys)
    values = block.values(lines, n_features, range(n_features))
    answered = None if values is None else block.predict(values)
    if answered is None:
        return None
    return block.csv(answered), lambda: block.counts(answered)


def _json_answer(
    block: BlockAnswers, lines: bytes, n_columns: int, positions: Sequence[int]
) -> Fast | None:
    if not lines:
        return b"[]", dict
    values = block.values(lines, n_columns, positions)
    answered = None if values is None else block.predict(values)
    if answered is None:
        return None
    return block.json(answered), lambda: block.counts(answered)


def _length(raw: bytes) -> int | None:
    try:
        value = _decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    return len(value) if isinstance(value, list) else None
