"""Column roles: what each column of a training table is, and how it reaches the model.

Each column besides the target gets one role, inferred from its values and name, or given
by the user (`--feature COLUMN:TYPE`, `--ignore COLUMN`):

- features: `integer`, `number`, `boolean` (1.0/0.0), `category` (text, one-hot encoded) and
  `datetime` (ISO 8601 text, or a datetime column: one numeric feature, days since
  1970-01-01 UTC, read by `modelapi.values.datetime_days` exactly as serving reads it);
- dropped, with the reason in the data summary: `identifier` (named like an id, or unique
  in almost every row: a customer id, a row number; as categories they would refuse every
  new value and publish the training ones), `constant` (one value, or none), `text` (free
  text: long, or different in most rows) and `ignored` (`--ignore`).

Rules, in order: --ignore, --feature, no or one distinct value (constant), booleans (a
boolean column, or text that is all true/false/yes/no), an id-like name (`id`, `*_id`,
`uuid`, `Unnamed: 0`), numbers (integer or number; an integer column whose values are
unique and increasing is a row number), then text: all ISO 8601 dates, unique in at least 95%
of at least 20 rows (identifier, or free text when it has spaces), four words or more on
average or distinct in more than half of at least 20 rows (free text), else a category.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from modelapi.errors import DataError
from modelapi.schema import FeatureType, snake_case
from modelapi.values import boolean_value, datetime_days

__all__ = [
    "FEATURE_TYPES",
    "ColumnRole",
    "Role",
    "convert_column",
    "infer_role",
    "is_text",
    "parse_feature_option",
]

Role = Literal[
    "integer",
    "number",
    "boolean",
    "category",
    "datetime",
    "identifier",
    "constant",
    "text",
    "ignored",
]
FEATURE_TYPES: tuple[FeatureType, ...] = get_args(FeatureType)
_UNIQUE_SHARE = 0.95
_TEXT_SHARE = 0.5
_MIN_ROWS_FOR_SHARES = 20
_TEXT_WORDS = 4.0
_ID_WORDS = frozenset({"id", "uuid", "guid"})
_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True, slots=True)
class ColumnRole:
    """A column's role and why: `customer_id` is an `identifier`, 2000 unique values."""

    column: str
    role: Role
    reason: str

    @property
    def is_feature(self) -> bool:
        """Whether the column is a feature of the model (else it is dropped)."""
        return self.role in FEATURE_TYPES


def parse_feature_option(text: str) -> tuple[str, FeatureType]:
    """Read `--feature COLUMN:TYPE`; raise DataError naming the types on a bad one."""
    column, _, kind = text.rpartition(":")
    if not column or kind not in FEATURE_TYPES:
        raise DataError(
            f"--feature {text[:80]!r}: write COLUMN:TYPE, TYPE one of {', '.join(FEATURE_TYPES)}"
        )
    return column, kind


def is_text(column: pd.Series) -> bool:
    """Whether a column holds text (pandas' str or object dtype)."""
    return bool(pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column))


def infer_role(
    column: pd.Series,
    *,
    given: Mapping[str, FeatureType],
    ignore: Collection[str],
    shown: str = "data",
) -> ColumnRole:
    """The role of one column: the user's choice, else inferred from its values and name.

    Raise DataError for a column of numbers with some text in it (a broken numeric column,
    not a category).
    """
    name = str(column.name)
    key = snake_case(name)
    if name in ignore or key in ignore:
        return ColumnRole(name, "ignored", "--ignore")
    kind = given.get(name) or given.get(key)
    if kind is not None:
        return ColumnRole(name, kind, "--feature")
    _check_numeric_text(column, name, shown)
    values = column.dropna()
    n_values, n_distinct = len(values), int(values.nunique())
    if n_distinct <= 1:
        what = "no values" if n_values == 0 else "a single value"
        return ColumnRole(name, "constant", f"{what} in {len(column)} rows")
    if pd.api.types.is_bool_dtype(column) or _all_booleans(values):
        return ColumnRole(name, "boolean", "true/false values")
    if _named_like_id(key):
        return ColumnRole(name, "identifier", "named like an identifier")
    distinct = f"{n_distinct} distinct values in {n_values} rows"
    if pd.api.types.is_numeric_dtype(column):
        if pd.api.types.is_integer_dtype(column):
            if n_distinct == n_values >= _MIN_ROWS_FOR_SHARES and values.is_monotonic_increasing:
                return ColumnRole(name, "identifier", f"unique increasing values ({distinct})")
            return ColumnRole(name, "integer", "whole numbers")
        return ColumnRole(name, "number", "numbers")
    if pd.api.types.is_datetime64_any_dtype(column):
        return ColumnRole(name, "datetime", "dates")
    text = values.astype(str)
    if all(datetime_days(v) is not None for v in text.unique()):
        return ColumnRole(name, "datetime", "ISO 8601 dates")
    words = float(text.str.split().str.len().mean())
    many_rows = n_values >= _MIN_ROWS_FOR_SHARES
    if many_rows and n_distinct >= _UNIQUE_SHARE * n_values:
        if words >= 2:
            return ColumnRole(name, "text", f"free text ({distinct})")
        return ColumnRole(name, "identifier", f"unique in almost every row ({distinct})")
    if words >= _TEXT_WORDS or (many_rows and n_distinct > _TEXT_SHARE * n_values):
        return ColumnRole(name, "text", f"free text ({distinct}, {words:.1f} words on average)")
    return ColumnRole(name, "category", f"{n_distinct} categories")


def _check_numeric_text(column: pd.Series, name: str, shown: str) -> None:
    if not is_text(column):
        return
    values = column.dropna()
    numeric = pd.to_numeric(values.astype(str), errors="coerce").notna()
    n_text = int((~numeric).sum())
    if len(values) and 0 < n_text <= len(values) / 2:
        raise DataError(
            f"{shown}: column {name} is numeric but {n_text} rows hold text that is not a number;"
            " fix or remove those rows"
        )


def _named_like_id(key: str) -> bool:
    words = key.split("_")
    return words[-1] in _ID_WORDS or key.startswith("unnamed_") or key == "index"


def _all_booleans(values: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(values):
        return False  # 0/1 numbers stay numbers, as scikit-learn saw them
    return all(boolean_value(v) is not None for v in values.unique())


def convert_column(column: pd.Series, kind: FeatureType, shown: str) -> pd.Series:
    """The column as the model gets it: floats (NaN for missing), or category text (object).

    Raise DataError naming the column and how many values do not fit the type.
    """
    name = str(column.name)
    present = column.notna()
    if kind == "category":
        converted = column.map(_category_text, na_action="ignore").astype(object)
        return converted.where(present, np.nan)
    if kind == "boolean":
        mapped = column.map(boolean_value, na_action="ignore")
    elif kind == "datetime":
        mapped = _days(column)
    else:
        mapped = pd.to_numeric(column, errors="coerce")
    floats = pd.Series(mapped, index=column.index, dtype=float)
    n_bad = int((floats.isna() & present).sum())
    if kind == "integer" and not n_bad:
        n_bad = int((floats.dropna() % 1 != 0).sum())
    if n_bad:
        what = {
            "boolean": "true/false values",
            "datetime": "ISO 8601 dates (e.g. 2024-05-31)",
            "integer": "whole numbers",
            "number": "numbers",
        }[kind]
        raise DataError(
            f"{shown}: column {name} has {n_bad} values that are not {what};"
            " fix them, or choose another type with --feature COLUMN:TYPE"
        )
    return floats


def _category_text(value: object) -> str:
    # A whole number forced to a category reads as the CSV cell did: 3, not 3.0.
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _days(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        # Whole nanoseconds since 1970 UTC over one day: the division serving does.
        utc = column.dt.tz_convert("UTC") if column.dt.tz is not None else column
        nanos = utc.astype("datetime64[ns]" if utc.dt.tz is None else "datetime64[ns, UTC]")
        return pd.Series(
            [None if pd.isna(v) else int(v.value) / _NS_PER_DAY for v in nanos],
            index=column.index,
            dtype=float,
        )
    return column.map(
        lambda v: datetime_days(v) if isinstance(v, str) else None, na_action="ignore"
    )
