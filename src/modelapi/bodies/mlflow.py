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
installed (`modelapi.scoring.block_bodies`), with the same answers; everything else, and
every error, is read here in pure Python.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import NamedTuple, TypeVar

import msgspec

from modelapi.bodies.mlflow_rows import check_rows, mlflow_rows
from modelapi.errors import FieldError, InvalidInput, MalformedBody
from modelapi.formats import Prediction
from modelapi.metrics import label_counts
from modelapi.predictor import Predictor
from modelapi.schema import IgnoredFields, Row

__all__ = [
    "INPUT_KEYS",
    "MlflowAnswer",
    "check_rows",
    "mlflow_answer",
    "predict_rows",
]

INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_PARAMS = "params"
_ABSENT = msgspec.Raw()
_decode = msgspec.json.Decoder(float_hook=float).decode
_ROW_FIELD = re.compile(r"\[(\d+)\]")


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


# An answer's JSON array, and its predictions counted by label name when asked.
_Fast = tuple[bytes, Callable[[], Mapping[str, int]]]
_Body = TypeVar("_Body")


class MlflowAnswer(NamedTuple):
    """The answer to an MLflow body: its bytes, the fields ignored, and (for metrics) the
    predictions counted by label name, counted only when asked."""

    body: bytes
    ignored: IgnoredFields
    counts: Callable[[], Mapping[str, int]]


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
    blocks = _block_bodies()
    if split is not None:
        fast = None
        if blocks is not None and len(split.data):
            columns, data, index = bytes(split.columns), bytes(split.data), bytes(split.index)
            fast = blocks.split_answer(
                predictor, columns, data, index, max_rows, ignored, forbid_extra
            )
    else:
        raw = bytes(getattr(envelope, shape))
        fast = _typed_answer(predictor, shape, raw, max_rows)
        if fast is None and blocks is not None and shape != "dataframe_records":
            fast = blocks.rows_answer(predictor, raw, max_rows)
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
    return MlflowAnswer(body, ignored, lambda: label_counts(predictions))


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


def _typed_answer(predictor: Predictor, shape: str, raw: bytes, max_rows: int) -> _Fast | None:
    """An array of valid objects, read by the feature table's typed decode."""
    if shape == "dataframe_split" or raw[:1] != b"[":
        return None
    decoded = predictor.features.decode_valid(raw)
    if type(decoded) is not list:
        return None
    check_rows(len(decoded), max_rows)
    rows, _ = predictor.features.rows_of(decoded)
    if (fast := predictor.answer_many(rows)) is not None:
        return fast[0], lambda: fast[1]
    predictions = predict_rows(predictor, rows, shape)
    return predictor.answers.many(predictions), lambda: label_counts(predictions)


def _block_bodies() -> ModuleType | None:
    """The numpy block path's module; None where it is not installed (the Lambda package)."""
    try:
        return importlib.import_module("modelapi.scoring.block_bodies")
    except ImportError:
        return None


def _decoded(decode: Callable[[bytes], _Body], body: bytes) -> _Body | None:
    try:
        return decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def _is_given(envelope: _SplitBody | _Envelope, name: str) -> bool:
    value = getattr(envelope, name, _ABSENT)
    return isinstance(value, _Split) or len(value) > 0


def _rows_field(shape: str) -> str:
    return "dataframe_split.data" if shape == "dataframe_split" else shape
