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
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple

import msgspec

from modelapi.bodies.typed_rows import typed_decoder, typed_field, typed_rows
from modelapi.errors import FieldError, InvalidInput
from modelapi.values import (
    DATE_REASON,
    MISSING_CELLS,
    NUMERIC_TEXT,
    boolean_value,
    datetime_days,
)

__all__ = [
    "MAX_LISTED_CATEGORIES",
    "Columns",
    "Feature",
    "FeatureTable",
    "FeatureType",
    "IgnoredFields",
    "Row",
    "Target",
    "Value",
    "category_reason",
    "listed_categories",
    "public_features",
    "shown_name",
    "snake_case",
    "typed_field",
]

# A boolean feature reaches the model as 1.0 or 0.0 and a datetime one as days since
# 1970-01-01 (a float), as scikit-learn saw them at training.
FeatureType = Literal["integer", "number", "category", "boolean", "datetime"]
# None is a missing value: only for a feature that `accepts_missing`.
Value = float | str | None
Row = Sequence[Value]

# Training values of a category are listed (in errors, /model, /openapi.json, the form) only
# up to this many: a longer list is as good as publishing the training data (ids, names).
MAX_LISTED_CATEGORIES = 20
_astuple = msgspec.structs.astuple
_MAX_NAME_CHARS = 64
# The names of ignored fields kept per request: enough to show a typo, never a whole body.
_MAX_IGNORED_KEPT = 5


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
    """Return the JSON key of a CSV column: `BloodPressure` -> `blood_pressure`.

    Case changes and every run of characters other than letters and digits (any script)
    become one `_`; the result is lower case, `f_` in front when it starts with a digit, and
    `feature` when nothing is left: `Support Calls (last 90d)!` -> `support_calls_last_90d`.
    """
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", column.strip())
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[\W_]+", "_", text).strip("_").lower()
    if not text:
        return "feature"
    return f"f_{text}" if text[0].isdigit() else text


def shown_name(name: str) -> str:
    """A client-sent key, cut short so an error can never carry a long payload back."""
    return name if len(name) <= _MAX_NAME_CHARS else name[:_MAX_NAME_CHARS] + "..."


def listed_categories(feature: Feature) -> tuple[str, ...] | None:
    """The training categories that may be shown to callers: all of a few, none of many."""
    categories = feature.categories
    if categories is None or len(categories) > MAX_LISTED_CATEGORIES:
        return None
    return categories


def category_reason(feature: Feature) -> str:
    """Why a value of a category feature is refused, listing its categories only when few."""
    if feature.accepts_unknown:
        return "must be text"
    listed = listed_categories(feature)
    if listed is not None:
        return f"must be one of the training categories: {', '.join(listed)}"
    return f"must be one of the {len(feature.categories or ())} training categories"


def public_features(features: Iterable[Feature]) -> list[dict[str, object]]:
    """The features as `/model` shows them: `n_categories` always, the list only when short."""
    shown: list[dict[str, object]] = []
    for feature in features:
        item: dict[str, object] = msgspec.to_builtins(feature)
        if feature.categories is not None:
            item["n_categories"] = len(feature.categories)
            if listed_categories(feature) is None:
                del item["categories"]
        shown.append(item)
    return shown


class IgnoredFields:
    """The fields a request sent that are not features: the first few names, and if more."""

    __slots__ = ("more", "names")

    def __init__(self) -> None:
        self.names: list[str] = []
        self.more = False

    def add(self, name: str) -> None:
        """Note one ignored field name (cut short)."""
        name = shown_name(name)
        if name in self.names:
            return
        if len(self.names) < _MAX_IGNORED_KEPT:
            self.names.append(name)
        else:
            self.more = True


class Columns(NamedTuple):
    """Where a CSV header holds each feature (in feature order), and the columns ignored."""

    positions: list[int]
    ignored: list[str]


class FeatureTable:
    """The ordered features of a model and the validation of rows against them.

    A field (JSON) or column (CSV) that is not a feature is ignored, as pydantic and FastAPI
    ignore extra fields, and noted in `ignored` when one is given; `forbid_extra` refuses it.
    """

    __slots__ = ("_booleans", "_by_name", "_decoder", "_fast_keys", "features", "keys")

    def __init__(self, features: Iterable[Feature]) -> None:
        self.features: tuple[Feature, ...] = tuple(features)
        self.keys: tuple[str, ...] = tuple(f.key for f in self.features)
        self._by_name: dict[str, Feature] = {}
        for feature in self.features:
            self._by_name[feature.key] = feature
            self._by_name.setdefault(feature.column, feature)
        self._fast_keys = frozenset(self.keys)
        self._booleans = tuple(i for i, f in enumerate(self.features) if f.type == "boolean")
        self._decoder: msgspec.json.Decoder[object] | None = typed_decoder(self.features)

    def decode_valid(self, body: bytes) -> object | None:
        """Decode a JSON body of valid rows in one typed pass; None when it needs parse_rows.

        Accepts only bodies that `parse_rows(json.decode(body))` accepts, with the same rows
        (JSON numbers, finite, whole for integer features; JSON booleans for boolean ones;
        training categories, or any text where unknown ones are answered; null or absent
        where missing values are; JSON keys only, no extra field); for anything else,
        including every error, it returns None so that parse_rows names the problems. A
        typed row holds feature i as its field `typed_field(i)`; `rows_of` gives the rows.
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
        if self._booleans:
            return typed_rows(decoded, self._booleans)
        # The usual model (no boolean feature): no conversion, so no call beyond astuple.
        if type(decoded) is list:
            return [_astuple(item) for item in decoded], True
        return [_astuple(decoded)], False  # type: ignore[arg-type]

    def feature_named(self, name: str) -> Feature | None:
        """The feature whose JSON key (or else CSV name) is `name`, if any."""
        return self._by_name.get(name)

    def parse_object(
        self,
        payload: object,
        where: str = "",
        *,
        ignored: IgnoredFields | None = None,
        forbid_extra: bool = False,
    ) -> Row:
        """Validate one JSON object; raise InvalidInput naming every bad field."""
        errors: list[FieldError] = []
        row = self._parse(payload, where, errors, ignored, forbid_extra)
        if errors:
            raise InvalidInput.of(errors)
        return row

    def parse_into(
        self,
        payload: object,
        where: str,
        errors: list[FieldError],
        *,
        ignored: IgnoredFields | None = None,
        forbid_extra: bool = False,
    ) -> Row:
        """Validate one JSON object whose fields are named `<where><key>`; append problems."""
        return self._parse(payload, where, errors, ignored, forbid_extra)

    def parse_rows(
        self,
        payload: object,
        *,
        ignored: IgnoredFields | None = None,
        forbid_extra: bool = False,
    ) -> tuple[list[Row], bool]:
        """Validate an object or an array of objects; return the rows and whether it was a batch."""
        if isinstance(payload, dict):
            return [self.parse_object(payload, ignored=ignored, forbid_extra=forbid_extra)], False
        if not isinstance(payload, list):
            raise InvalidInput("body", "must be a JSON object or an array of JSON objects")
        errors: list[FieldError] = []
        rows = [
            self._parse(item, f"[{index}].", errors, ignored, forbid_extra)
            for index, item in enumerate(payload)
        ]
        if errors:
            raise InvalidInput.of(errors)
        return rows, True

    def parse_record(self, record: Mapping[str, str], where: str, errors: list[FieldError]) -> Row:
        """Validate one CSV record (feature name -> cell text); append problems to `errors`.

        A cell that pandas.read_csv reads as missing (empty, `NA`, ...) is a missing value.
        """
        cells = {name: None if text in MISSING_CELLS else text for name, text in record.items()}
        return self._parse(cells, where, errors, None, False)

    def _parse(
        self,
        payload: object,
        where: str,
        errors: list[FieldError],
        ignored: IgnoredFields | None,
        forbid_extra: bool,
    ) -> Row:
        if not isinstance(payload, dict):
            errors.append(FieldError(where.rstrip(".") or "body", "must be a JSON object"))
            return []
        if len(payload) == len(self.keys) and self._fast_keys.issuperset(payload):
            return [
                _convert(feature, payload[feature.key], where + feature.key, errors)
                for feature in self.features
            ]
        return self._parse_slow(payload, where, errors, ignored, forbid_extra)

    def _parse_slow(
        self,
        payload: dict[object, object],
        where: str,
        errors: list[FieldError],
        ignored: IgnoredFields | None,
        forbid_extra: bool,
    ) -> Row:
        given: dict[str, tuple[str, object]] = {}
        for name, value in payload.items():
            feature = self._by_name.get(name) if isinstance(name, str) else None
            if feature is None:
                if forbid_extra:
                    errors.append(
                        FieldError(where + shown_name(str(name)), "is not a feature of this model")
                    )
                elif ignored is not None:
                    ignored.add(str(name))
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
            row.append(
                _convert(feature, None if found is None else found[1], where + feature.key, errors)
            )
        return row


def _convert(feature: Feature, value: object, field: str, errors: list[FieldError]) -> Value:
    if value is None:
        if not feature.accepts_missing:
            errors.append(FieldError(field, "is missing"))
        return None
    kind = type(value)
    if feature.type == "category":
        if isinstance(value, str) and (
            feature.accepts_unknown or value in (feature.categories or ())
        ):
            return value
        errors.append(FieldError(field, category_reason(feature)))
        return ""
    if feature.type == "boolean":
        flag = boolean_value(value)
        if flag is None:
            errors.append(FieldError(field, "must be true or false (or 1, 0, yes, no)"))
            return 0.0
        return flag
    if feature.type == "datetime":
        days = datetime_days(value) if isinstance(value, str) else None
        if days is None:
            errors.append(FieldError(field, DATE_REASON))
            return 0.0
        return days
    if kind is int or kind is float:
        number = value
    elif isinstance(value, str) and NUMERIC_TEXT.fullmatch(value):
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
