"""Open Inference Protocol V2 tensors: the request read into feature columns, the answer's outputs.

An input tensor is checked against its own shape and datatype here; the values then go through
the same validation core as `/predict` (in the route), so a bad value is refused with the same
words and the same error body.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import msgspec

from modelapi.errors import FieldError, InvalidInput, MalformedBody
from modelapi.formats import Prediction
from modelapi.predictor import Predictor
from modelapi.schema import Feature

__all__ = [
    "DATATYPES",
    "PROBABILITIES",
    "InferRequest",
    "Tensor",
    "Wanted",
    "check_wanted",
    "decode_request",
    "feature_datatype",
    "input_columns",
    "label_datatype",
    "output_names",
    "output_tensors",
]

_INTEGER_TYPES = frozenset(f"{s}INT{b}" for s in ("", "U") for b in (8, 16, 32, 64))
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
DATATYPES = ("BOOL", *sorted(_INTEGER_TYPES), *sorted(_FLOAT_TYPES), "BYTES")
PROBABILITIES = "probabilities"


# Parameters are read for their shape only: no parameter changes what is predicted.
class Tensor(msgspec.Struct):
    """One input tensor of an infer request."""

    name: str
    shape: list[int]
    datatype: str
    data: list[object]
    parameters: dict[str, object] | None = None


class Wanted(msgspec.Struct):
    """One output an infer request asks for."""

    name: str
    parameters: dict[str, object] | None = None


class InferRequest(msgspec.Struct):
    """An infer request body."""

    inputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, object] | None = None
    outputs: list[Wanted] | None = None


def feature_datatype(feature: Feature) -> str:
    """The tensor datatype of a feature's values: booleans as 0/1, dates as ISO 8601 text."""
    return {
        "integer": "INT64",
        "number": "FP64",
        "category": "BYTES",
        "boolean": "INT64",
        "datetime": "BYTES",
    }[feature.type]


def label_datatype(predictor: Predictor) -> str:
    """The tensor datatype of the predicted target: its classes', or FP64 for a value."""
    classes = predictor.manifest.classes
    if classes is None:
        return "FP64"
    if all(type(c) is int for c in classes):
        return "INT64"
    return "FP64" if all(isinstance(c, int | float) for c in classes) else "BYTES"


def decode_request(body: bytes) -> InferRequest:
    """Read an infer request; MalformedBody if not JSON, InvalidInput naming a misfit place."""
    try:
        payload = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise MalformedBody("body", "is not valid JSON") from None
    try:
        return msgspec.convert(payload, InferRequest)
    except msgspec.ValidationError as exc:
        # msgspec names the place and the expected type, never the value: safe to pass on.
        reason, _, where = str(exc).partition(" - at `$.")
        raise InvalidInput(where.rstrip("`") or "body", reason[:1].lower() + reason[1:]) from None


def input_columns(
    features: Sequence[Feature], tensors: Sequence[Tensor]
) -> tuple[dict[str, list[object]], int]:
    """The values of each feature by JSON name, and the number of rows."""
    errors: list[FieldError] = []
    by_name = {name: f for f in features for name in (f.key, f.column)}
    if len(tensors) == 1 and tensors[0].name not in by_name and len(tensors[0].shape) == 2:
        return _matrix(features, tensors[0], errors)
    columns: dict[str, list[object]] = {}
    named: set[str] = set()
    n_rows: int | None = None
    for index, tensor in enumerate(tensors):
        where = f"inputs[{index}]"
        feature = by_name.get(tensor.name)
        if feature is None:
            errors.append(FieldError(f"{where}.name", "is not a feature of this model"))
            continue
        if feature.key in named:
            errors.append(FieldError(f"{where}.name", f"{feature.key} is given twice"))
            continue
        named.add(feature.key)
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            errors.append(FieldError(f"{where}.shape", "must be [n] or [n, 1]"))
            continue
        values = _values(tensor, where, errors, feature_datatype(feature) == "BYTES")
        if values is None:
            continue
        if n_rows is not None and tensor.shape[0] != n_rows:
            errors.append(FieldError(f"{where}.shape", "must have as many rows as the others"))
            continue
        n_rows = tensor.shape[0]
        columns[feature.key] = values
    errors.extend(
        FieldError("inputs", f"needs a tensor named {f.key}")
        for f in features
        if f.key not in named
    )
    if errors:
        raise InvalidInput.of(errors)
    return columns, n_rows or 0


def _matrix(
    features: Sequence[Feature], tensor: Tensor, errors: list[FieldError]
) -> tuple[dict[str, list[object]], int]:
    n_rows, width = tensor.shape
    if width != len(features):
        errors.append(FieldError("inputs[0].shape", f"must be [n, {len(features)}]"))
        raise InvalidInput.of(errors)
    has_text = any(feature_datatype(f) == "BYTES" for f in features)
    values = _values(tensor, "inputs[0]", errors, has_text)
    if values is None:
        raise InvalidInput.of(errors)
    columns = {f.key: values[j::width] for j, f in enumerate(features)}
    return columns, n_rows


def _values(
    tensor: Tensor, where: str, errors: list[FieldError], is_text: bool
) -> list[object] | None:
    """The tensor's data flattened, checked against its shape and datatype; None if refused."""
    if any(size < 0 for size in tensor.shape):
        errors.append(FieldError(f"{where}.shape", "must hold sizes >= 0"))
        return None
    datatype = tensor.datatype
    if datatype not in DATATYPES:
        errors.append(FieldError(f"{where}.datatype", f"must be one of {', '.join(DATATYPES)}"))
        return None
    if is_text and datatype != "BYTES":
        errors.append(
            FieldError(f"{where}.datatype", "must be BYTES for a category or date feature")
        )
        return None
    if datatype == "BOOL":
        errors.append(FieldError(f"{where}.datatype", "must be numeric or BYTES, not BOOL"))
        return None
    data = tensor.data
    if any(isinstance(item, list) for item in data):
        if not all(isinstance(item, list) for item in data):
            errors.append(FieldError(f"{where}.data", "must be flat or nested evenly"))
            return None
        data = [value for item in data for value in cast(list[object], item)]
    expected = 1
    for size in tensor.shape:
        expected *= size
    if len(data) != expected:
        errors.append(FieldError(f"{where}.data", f"must hold {expected} values for its shape"))
        return None
    if datatype in _INTEGER_TYPES:
        wrong = any(type(value) is not int for value in data)
        reason = "must hold whole JSON numbers for an integer datatype"
    elif datatype in _FLOAT_TYPES:
        wrong = any(type(value) not in (int, float) for value in data)
        reason = "must hold JSON numbers for a floating-point datatype"
    else:
        wrong = any(type(value) is not str for value in data)
        reason = "must hold strings for datatype BYTES"
    if wrong:
        errors.append(FieldError(f"{where}.data", reason))
        return None
    return data


def output_names(predictor: Predictor) -> list[str]:
    """The names of the model's outputs: the target's key, then probabilities for a classifier."""
    manifest = predictor.manifest
    names = [manifest.target.key]
    if manifest.classes is not None:
        names.append(PROBABILITIES)
    return names


def output_tensors(
    predictor: Predictor, predictions: Sequence[Prediction], wanted: list[Wanted] | None
) -> list[dict[str, object]]:
    """The output tensors of these predictions: the ones `wanted`, else all of them.

    Raises InvalidInput naming a wanted output that this model does not have.
    """
    manifest = predictor.manifest
    n_rows = len(predictions)
    available: dict[str, dict[str, object]] = {
        manifest.target.key: {
            "name": manifest.target.key,
            "shape": [n_rows],
            "datatype": label_datatype(predictor),
            "data": [label for label, _ in predictions],
        }
    }
    if manifest.classes is not None:
        flat = [p for _, probs in predictions for p in probs or ()]
        available[PROBABILITIES] = {
            "name": PROBABILITIES,
            "shape": [n_rows, len(manifest.classes)],
            "datatype": "FP64",
            "data": flat,
        }
    if wanted is None:
        return list(available.values())
    check_wanted(list(available), wanted)
    return [available[output.name] for output in wanted]


def check_wanted(names: Sequence[str], wanted: Sequence[Wanted]) -> None:
    """Raise InvalidInput naming each wanted output that is not one of `names`, or a repeat.

    Each output is answered whole, so a repeat would make a small request ask for an answer
    as many times larger as it repeats the name.
    """
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, output in enumerate(wanted):
        if output.name not in names:
            errors.append(FieldError(f"outputs[{i}].name", f"must be one of {', '.join(names)}"))
        elif output.name in seen:
            errors.append(FieldError(f"outputs[{i}].name", "is asked for twice; name it once"))
        seen.add(output.name)
    if errors:
        raise InvalidInput.of(errors)
