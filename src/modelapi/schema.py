"""The feature table: JSON key <-> CSV column <-> type, and the validation of rows against it.

The feature table is the single place where a CSV column such as `BloodPressure` meets its
JSON key `blood_pressure`. Validation here is shared by every adapter, so the HTTP server,
the Lambda handler and the CLI refuse exactly the same input with exactly the same words.
"""

# Annotations stay objects here (no `from __future__ import annotations`): msgspec reads the
# Structs' annotations at their first decode, and evaluating strings then costs milliseconds of
# every cold start.

import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Literal

import msgspec

from modelapi.errors import FieldError, InvalidInput, MalformedBody, PayloadTooLarge

__all__ = [
    "Feature",
    "FeatureTable",
    "FeatureType",
    "Row",
    "Target",
    "Value",
    "snake_case",
    "typed_field",
]

# A boolean feature reaches the model as 1.0 or 0.0 and a datetime one as days since
# 1970-01-01 (a float), as scikit-learn saw them at training.
FeatureType = Literal["integer", "number", "category", "boolean", "datetime"]
# None is a missing value: only for a feature that `accepts_missing`.
Value = float | str | None
Row = Sequence[Value]

# Numeric strings are accepted because the original service cast with int()/float(); float()
# alone would also take "nan", "inf" and "1_000", which a JSON client never means. The space
# around is what float() strips: \s less the separators \x1c-\x1f, which float() refuses.
_NUMERIC_TEXT = re.compile(
    r"[^\S\x1c-\x1f]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[^\S\x1c-\x1f]*"
)
_MAX_NAME_CHARS = 64
_UNRENAMABLE = re.compile(r'["\\\x00-\x1f]')


class Feature(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One input column: its CSV name, JSON key, type, and what training saw.

    `accepts_missing`: the model answers a missing value of this feature (an imputer or a
    missing-aware split was checked on it at training). `accepts_unknown`: the model answers
    a category it was not trained on (an encoder that ignores it, or treats it as missing).
    """

    column: str
    key: str
    type: FeatureType
    categories: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    accepts_missing: bool = False
    accepts_unknown: bool = False


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """The predicted column: its CSV name and the JSON key answers use."""

    column: str
    key: str


def snake_case(column: str) -> str:
    """Return the JSON key of a CSV column: `BloodPressure` -> `blood_pressure`."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", column.strip())
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    if not text:
        return "feature"
    return f"f_{text}" if text[0].isdigit() else text


def _shown(name: str) -> str:
    """A client-sent key, cut short so an error can never carry a long payload back."""
    return name if len(name) <= _MAX_NAME_CHARS else name[:_MAX_NAME_CHARS] + "..."


class FeatureTable:
    """The ordered features of a model and the validation of rows against them."""

    __slots__ = ("_by_name", "_decoder", "_fast_keys", "features", "keys")

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features: tuple[Feature, ...] = tuple(features)
        self.keys: tuple[str, ...] = tuple(f.key for f in self.features)
        self._by_name: dict[str, Feature] = {}
        for feature in self.features:
            self._by_name[feature.key] = feature
            self._by_name.setdefault(feature.column, feature)
        self._fast_keys = frozenset(self.keys)
        self._decoder: msgspec.json.Decoder[object] | None = _typed_decoder(self.features)

    def decode_valid(self, body: bytes) -> object | None:
        """Decode a JSON body of valid rows in one typed pass; None when it needs parse_rows.

        Accepts only bodies that `parse_rows(json.decode(body))` accepts, with the same rows
        (JSON numbers, finite, whole for integer features; training categories; JSON keys
        only); for anything else, including every error, it returns None so that parse_rows
        names the problems. A typed row holds feature i as its field `typed_field(i)`: a float
        for a numeric feature (whole for an integer one), the category text for a category.
        """
        if self._decoder is None:
            return None
        try:
            return self._decoder.decode(body)
        # Invalid UTF-8 inside a string raises UnicodeDecodeError; parse_rows's path names it.
        except (msgspec.DecodeError, UnicodeDecodeError):
            return None

    def rows_of(self, decoded: object) -> tuple[list[Row], bool]:
        """The rows of what decode_valid returned, and whether it was a batch."""
        if type(decoded) is list:
            return [_astuple(item) for item in decoded], True
        return [_astuple(decoded)], False  # type: ignore[arg-type]

    def parse_object(self, payload: object, where: str = "") -> Row:
        """Validate one JSON object; raise InvalidInput naming every bad field."""
        errors: list[FieldError] = []
        row = self._parse(payload, where, errors)
        if errors:
            raise InvalidInput.of(errors)
        return row

    def parse_rows(self, payload: object) -> tuple[list[Row], bool]:
        """Validate an object or an array of objects; return the rows and whether it was a batch."""
        if isinstance(payload, dict):
            return [self.parse_object(payload)], False
        if not isinstance(payload, list):
            raise InvalidInput("body", "must be a JSON object or an array of JSON objects")
        errors: list[FieldError] = []
        rows = [self._parse(item, f"[{index}].", errors) for index, item in enumerate(payload)]
        if errors:
            raise InvalidInput.of(errors)
        return rows, True

    def parse_record(self, record: Mapping[str, str], where: str, errors: list[FieldError]) -> Row:
        """Validate one CSV record (all values text); append problems to `errors`."""
        return self._parse(dict(record), where, errors)

    def parse_csv(self, body: bytes, max_rows: int) -> list[Row]:
        """Validate a CSV body (header row + rows); raise InvalidInput naming every bad cell."""
        # Imported here: a JSON body, the usual one, never needs them (cold start).
        import csv
        import io

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
            for f in self.features
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
                self.parse_record(dict(zip(header, record, strict=True)), f"[{index}].", errors)
            )
        if errors:
            raise InvalidInput.of(errors)
        return rows

    def _parse(self, payload: object, where: str, errors: list[FieldError]) -> Row:
        if not isinstance(payload, dict):
            errors.append(FieldError(where.rstrip(".") or "body", "must be a JSON object"))
            return []
        if len(payload) == len(self.keys) and self._fast_keys.issuperset(payload):
            return [
                _convert(feature, payload[feature.key], where + feature.key, errors)
                for feature in self.features
            ]
        return self._parse_slow(payload, where, errors)

    def _parse_slow(
        self, payload: dict[object, object], where: str, errors: list[FieldError]
    ) -> Row:
        given: dict[str, tuple[str, object]] = {}
        for name, value in payload.items():
            feature = self._by_name.get(name) if isinstance(name, str) else None
            if feature is None:
                errors.append(
                    FieldError(where + _shown(str(name)), "is not a feature of this model")
                )
            elif feature.key in given:
                errors.append(
                    FieldError(
                        where + feature.key,
                        f"is given twice (as {feature.key} and {feature.column})",
                    )
                )
            else:
                given[feature.key] = (str(name), value)
        row: list[Value] = []
        for feature in self.features:
            found = given.get(feature.key)
            if found is None:
                errors.append(FieldError(where + feature.key, "is required"))
                row.append(0.0)
            else:
                row.append(_convert(feature, found[1], where + feature.key, errors))
        return row


_astuple = msgspec.structs.astuple
# JSON numbers too large for a float decode as infinity; these bounds send them to parse_rows.
_FiniteFloat = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
# msgspec checks multiple_of=1 in C with fmod: exactly float.is_integer for a finite float.
_WholeFloat = Annotated[
    float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max, multiple_of=1)
]


def typed_field(index: int) -> str:
    """The name of feature `index`'s field in the rows `FeatureTable.decode_valid` returns."""
    return f"f{index}"


def _typed_decoder(features: Sequence[Feature]) -> msgspec.json.Decoder[object] | None:
    """A decoder for an object or array of objects holding exactly the features, validly."""
    # msgspec cannot rename a field to a key holding a quote, a backslash or a control
    # character; such keys are read by parse_rows alone.
    if any(_UNRENAMABLE.search(feature.key) for feature in features):
        return None
    fields: list[tuple[str, object]] = []
    for index, feature in enumerate(features):
        if feature.type == "number":
            fields.append((typed_field(index), _FiniteFloat))
        elif feature.type == "integer":
            fields.append((typed_field(index), _WholeFloat))
        elif feature.categories:
            fields.append((typed_field(index), Literal[feature.categories]))
        else:
            return None
    # Field names are positional and renamed to the JSON keys, so any key is a valid field.
    rename = {typed_field(i): feature.key for i, feature in enumerate(features)}
    row = msgspec.defstruct("TypedRow", fields, rename=rename, forbid_unknown_fields=True, gc=False)
    return msgspec.json.Decoder(row | list[row])  # type: ignore[valid-type]


def _convert(feature: Feature, value: object, field: str, errors: list[FieldError]) -> Value:
    kind = type(value)
    if feature.type == "category":
        if (
            isinstance(value, str)
            and feature.categories is not None
            and value in feature.categories
        ):
            return value
        shown = ", ".join(feature.categories or ())
        errors.append(FieldError(field, f"must be one of the training categories: {shown}"))
        return ""
    if kind is int or kind is float:
        number = value
    elif isinstance(value, str) and _NUMERIC_TEXT.fullmatch(value):
        number = float(value)
    elif kind is bool:
        errors.append(FieldError(field, "must be a number, not a boolean"))
        return 0.0
    else:
        errors.append(FieldError(field, "must be a number"))
        return 0.0
    try:
        result = float(number)  # type: ignore[arg-type]
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        errors.append(FieldError(field, "must be a finite number"))
        return 0.0
    if feature.type == "integer" and not result.is_integer():
        errors.append(FieldError(field, "must be a whole number"))
        return 0.0
    return result
