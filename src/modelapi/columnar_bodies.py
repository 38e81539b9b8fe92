"""MLflow scoring bodies: rows named by columns, or given as the feature values in order.

`POST /predict` and `POST /invocations` read, besides one object or an array of objects, the
JSON bodies of MLflow's scoring protocol (`mlflow models serve`, and the SageMaker containers
MLflow builds):

    {"dataframe_split": {"columns": [...], "data": [[...], ...], "index": [...]}}
    {"dataframe_records": [{...}, ...]}
    {"instances": [...]}    each row an object, or an array of the feature values in order
    {"inputs": ...}         as instances, or an object of columns {"glucose": [...], ...}

A body is one of these when it is a JSON object whose keys are among these four and `params`,
with exactly one of the four and none a feature of the model; any other object is one row, as
it always was. `params` (inference parameters) is ignored and named in X-Ignored-Fields, as an
extra field is, or refused when extra fields are forbidden. Columns and object keys are
matched as the feature table matches keys: by JSON key or CSV name, others ignored (or
refused). The answer is `{"predictions": [...]}`, each entry the bytes the array-of-objects
body answers for its row. Fields in errors name the place in the body:
`dataframe_split.data[3].glucose`, `instances[0]`, `dataframe_split.columns`.

Numbers-only bodies of a model with numeric features take the numpy block path when numpy is
installed (`modelapi.scoring.block_answers`), with the same answers; everything else, and
every error, is read here in pure Python.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import msgspec

from modelapi.columnar_rows import check_rows, column_positions, mlflow_rows
from modelapi.errors import FieldError, InvalidInput, MalformedBody
from modelapi.formats import Prediction
from modelapi.predictor import Predictor
from modelapi.schema import IgnoredFields, Row

if TYPE_CHECKING:
    from modelapi.scoring.block_answers import BlockAnswers

__all__ = [
    "INPUT_KEYS",
    "MlflowAnswer",
    "block_answers",
    "check_rows",
    "mlflow_answer",
    "number_lines",
    "predict_rows",
]

INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_PARAMS = "params"
_ABSENT = msgspec.Raw()
_decode = msgspec.json.Decoder(float_hook=float).decode
_ROW_FIELD = re.compile(r"\[(\d+)\]")
# Whitespace between JSON tokens; a body with strings never reaches the block path.
_SPACE = b" \t\r\n"
_SPACES = [bytes([c]) for c in _SPACE]
# Block paths kept, one per predictor recently served (a hot swap adds one).
_MAX_BLOCKS = 4
_blocks: dict[int, tuple[Predictor, BlockAnswers | None]] = {}


class _Envelope(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # Raw: each value is only checked to be JSON here; it is read by the shape's own rules.
    dataframe_split: msgspec.Raw = _ABSENT
    dataframe_records: msgspec.Raw = _ABSENT
    instances: msgspec.Raw = _ABSENT
    inputs: msgspec.Raw = _ABSENT
    params: msgspec.Raw = _ABSENT


class _Split(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    columns: msgspec.Raw = _ABSENT
    data: msgspec.Raw = _ABSENT
    index: msgspec.Raw = _ABSENT


class _SplitBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    # The usual body read in one pass; any other body is read as an _Envelope.
    dataframe_split: _Split
    params: msgspec.Raw = _ABSENT


_envelope = msgspec.json.Decoder(_Envelope).decode
_split_body = msgspec.json.Decoder(_SplitBody).decode


# An answer's JSON array, and its predictions when asked.
_Fast = tuple[bytes, Callable[[], Sequence[Prediction]]]
_Body = TypeVar("_Body")


class MlflowAnswer(NamedTuple):
    """The answer to an MLflow body: its bytes, the fields ignored, and (for metrics) the
    predictions, built only when asked."""

    body: bytes
    ignored: IgnoredFields
    predictions: Callable[[], Sequence[Prediction]]


def block_answers(predictor: Predictor) -> BlockAnswers | None:
    """The numpy block path for a predictor; None without numpy or for a model it cannot take."""
    kept = _blocks.get(id(predictor))
    if kept is not None and kept[0] is predictor:
        return kept[1]
    block = None
    try:
        numpy = importlib.import_module("numpy")
        from modelapi.scoring.block_answers import BlockAnswers
    except ImportError:  # the slim install, and the Lambda package
        pass
    else:
        block = BlockAnswers.of(numpy, predictor)
    if len(_blocks) >= _MAX_BLOCKS:
        _blocks.clear()
    _blocks[id(predictor)] = (predictor, block)
    return block


def mlflow_answer(
    predictor: Predictor, body: bytes, *, max_rows: int, forbid_extra: bool
) -> MlflowAnswer | None:
    """Answer an MLflow body; None when the body is not one (it is then a row or rows)."""
    envelope: _SplitBody | _Envelope | None = _decoded(_split_body, body)
    split = envelope.dataframe_split if isinstance(envelope, _SplitBody) else None
    if envelope is None and (envelope := _decoded(_envelope, body)) is None:
        return None
    table = predictor.features
    given = [name for name in (*INPUT_KEYS, _PARAMS) if _is_given(envelope, name)]
    shapes = [name for name in given if name != _PARAMS]
    if not shapes or any(table.feature_named(name) for name in given):
        return None
    if len(shapes) > 1:
        raise InvalidInput("body", f"must hold one of {', '.join(INPUT_KEYS)}, not several")
    ignored = IgnoredFields()
    if _PARAMS in given:
        if forbid_extra:
            raise InvalidInput(_PARAMS, "are not taken: this model has no inference parameters")
        ignored.add(_PARAMS)
    shape = shapes[0]
    if split is not None:
        fast = _block_split(predictor, split, max_rows, ignored, forbid_extra)
    else:
        raw = bytes(getattr(envelope, shape))
        fast = _typed_answer(predictor, shape, raw, max_rows) or _block_rows(
            predictor, shape, raw, max_rows
        )
    if fast is not None:
        return MlflowAnswer(b'{"predictions":' + fast[0] + b"}", ignored, fast[1])
    # The whole body again: it is valid JSON, and this path is the one that names problems.
    try:
        value = _decode(body)[shape]
    # The envelope checked the JSON's syntax, not the UTF-8 inside its strings.
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise MalformedBody("body", "is not valid JSON") from None
    rows = mlflow_rows(
        table, shape, value, max_rows=max_rows, ignored=ignored, forbid_extra=forbid_extra
    )
    predictions = predict_rows(predictor, rows, _rows_field(shape))
    body = b'{"predictions":' + predictor.answers.many(predictions) + b"}"
    return MlflowAnswer(body, ignored, lambda: predictions)


def predict_rows(predictor: Predictor, rows: Sequence[Row], where: str) -> list[Prediction]:
    """Predict validated rows; a row whose prediction is not finite is named `<where>[i]`."""
    try:
        return predictor.predict(rows)
    except InvalidInput as exc:
        details = [
            FieldError(_ROW_FIELD.sub(lambda m: f"{where}[{m.group(1)}]", d.field), d.reason)
            if d.field != "body"
            else FieldError(f"{where}[0]", d.reason)
            for d in exc.details
        ]
        raise InvalidInput.of(details) from None


def number_lines(raw: bytes) -> bytes | None:
    """A JSON array of arrays of numbers as `\\n`-ended lines of comma-separated numbers.

    None when the array holds anything else (strings, objects, nulls, deeper arrays), and for
    `-0`, which JSON reads as the integer 0 but a text parser as -0.0.
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
    if b"-" in lines and (b"-0," in lines or b"-0\n" in lines):
        return None
    return lines


def _typed_answer(predictor: Predictor, shape: str, raw: bytes, max_rows: int) -> _Fast | None:
    """An array of valid objects, read by the feature table's typed decode."""
    if shape == "dataframe_split" or raw[:1] != b"[":
        return None
    decoded = predictor.features.decode_valid(raw)
    if type(decoded) is not list:
        return None
    check_rows(len(decoded), max_rows)
    rows, _ = predictor.features.rows_of(decoded)
    predictions = predict_rows(predictor, rows, shape)
    return predictor.answers.many(predictions), lambda: predictions


def _block_split(
    predictor: Predictor,
    split: _Split,
    max_rows: int,
    ignored: IgnoredFields,
    forbid_extra: bool,
) -> _Fast | None:
    """A `dataframe_split` of numbers on the numpy block path; None for anything else."""
    block = block_answers(predictor)
    if block is None or not len(split.data):
        return None
    try:
        names = _decode(split.columns)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(names, list) or not all(type(name) is str for name in names):
        return None
    lines = number_lines(bytes(split.data))
    if lines is None:
        return None
    n_rows = lines.count(b"\n")
    if len(split.index) and _length(split.index) != n_rows:
        return None
    check_rows(n_rows, max_rows)
    table = predictor.features
    found = column_positions(table, names, "dataframe_split.columns", ignored, forbid_extra)
    positions = [at for at in found if at is not None]
    if len(positions) != len(found):  # a missing column of missing values: the general path
        return None
    return _answer_lines(block, lines, len(names), positions)


def _block_rows(predictor: Predictor, shape: str, raw: bytes, max_rows: int) -> _Fast | None:
    """`instances` or `inputs` arrays of numbers in feature order on the block path."""
    block = None if shape == "dataframe_records" else block_answers(predictor)
    lines = None if block is None else number_lines(raw)
    if block is None or lines is None:
        return None
    check_rows(lines.count(b"\n"), max_rows)
    n_features = len(predictor.features.keys)
    return _answer_lines(block, lines, n_features, range(n_features))


def _answer_lines(
    block: BlockAnswers, lines: bytes, n_columns: int, positions: Sequence[int]
) -> _Fast | None:
    if not lines:
        return b"[]", lambda: []
    values = block.values(lines, n_columns, positions)
    answered = None if values is None else block.predict(values)
    if answered is None:
        return None
    return block.json(answered), lambda: block.predictions(answered)


def _decoded(decode: Callable[[bytes], _Body], body: bytes) -> _Body | None:
    try:
        return decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def _is_given(envelope: _SplitBody | _Envelope, name: str) -> bool:
    value = getattr(envelope, name, _ABSENT)
    return isinstance(value, _Split) or len(value) > 0


def _length(raw: msgspec.Raw) -> int | None:
    try:
        value = _decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    return len(value) if isinstance(value, list) else None


def _rows_field(shape: str) -> str:
    return "dataframe_split.data" if shape == "dataframe_split" else shape
