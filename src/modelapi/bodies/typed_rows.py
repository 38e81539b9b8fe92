"""The typed decode of a feature table: valid JSON rows checked in one msgspec pass, in C.

`FeatureTable.decode_valid` is the fast path of `/predict`. It may only accept what
`FeatureTable.parse_rows` accepts, with the same rows (property tests compare the two); any
other body, every error included, goes to parse_rows, which names the problems.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

if TYPE_CHECKING:
    from modelapi.schema import Feature, Row

__all__ = ["typed_decoder", "typed_field", "typed_rows"]

_UNRENAMABLE = re.compile(r'["\\\x00-\x1f]')
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


def typed_decoder(features: Sequence[Feature]) -> msgspec.json.Decoder[object] | None:
    """A decoder for an object or array of objects holding exactly the features, validly.

    None when some feature has no typed form (dates; a key msgspec cannot rename).
    """
    # msgspec cannot rename a field to a key holding a quote, a backslash or a control
    # character; such keys are read by parse_rows alone.
    if any(_UNRENAMABLE.search(feature.key) for feature in features):
        return None
    fields: list[tuple[str, object] | tuple[str, object, object]] = []
    for index, feature in enumerate(features):
        kind: object
        if feature.type == "number":
            kind = _FiniteFloat
        elif feature.type == "integer":
            kind = _WholeFloat
        elif feature.type == "boolean":
            kind = bool  # JSON true/false only; typed_rows makes them 1.0/0.0
        elif feature.type == "category" and feature.accepts_unknown:
            kind = str
        elif feature.type == "category" and feature.categories:
            kind = Literal[feature.categories]
        else:  # dates, and a category without categories: parse_rows reads them
            return None
        if feature.accepts_missing:
            # null or an absent key is None, as parse_rows gives it.
            fields.append((typed_field(index), kind | None, None))
        else:
            fields.append((typed_field(index), kind))
    # Field names are positional and renamed to the JSON keys, so any key is a valid field.
    rename = {typed_field(i): feature.key for i, feature in enumerate(features)}
    row = msgspec.defstruct(
        "TypedRow", fields, rename=rename, forbid_unknown_fields=True, gc=False, kw_only=True
    )
    return msgspec.json.Decoder(row | list[row])  # type: ignore[valid-type]


def typed_rows(decoded: object, booleans: Sequence[int]) -> tuple[list[Row], bool]:
    """The rows of a typed decode, booleans (at those indexes) as 1.0/0.0; whether a batch."""
    is_batch = type(decoded) is list
    rows: list[Row] = (
        [_astuple(item) for item in decoded]  # type: ignore[attr-defined]
        if is_batch
        else [_astuple(decoded)]  # type: ignore[arg-type]
    )
    if booleans:
        rows = [_numeric(row, booleans) for row in rows]
    return rows, is_batch


def _numeric(row: Row, booleans: Sequence[int]) -> Row:
    values = list(row)
    for index in booleans:
        if values[index] is not None:
            values[index] = 1.0 if values[index] else 0.0
    return values
