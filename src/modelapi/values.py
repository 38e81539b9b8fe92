"""Feature values: the text and JSON forms each feature type accepts, and what a model gets.

Training reads a CSV's cells and serving validates a request with these same functions, so a
value is read the same way on both sides, to the last bit:

- numbers: JSON numbers, or numeric text such as `"148"` or `" 2.5e3 "` (not `nan`, `inf`);
- booleans: JSON `true`/`false` or `1`/`0`; text `true`, `false`, `yes`, `no`, `1`, `0` in
  any case. A model gets 1.0 or 0.0;
- dates: ISO 8601 text, `2024-05-31`, `2024-05-31T14:30`, `2024-05-31 14:30:00.25+02:00`,
  `...Z`. A model gets the days since 1970-01-01 00:00 UTC as a float; a date alone is
  midnight UTC, a time without a zone is UTC;
- missing: JSON `null` or an absent key; in CSV, the cells `pandas.read_csv` reads as
  missing by default (the empty cell, `NA`, `NaN`, `null`, ...), so a model trained on a
  file scores that same file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "DATE_REASON",
    "MISSING_CELLS",
    "NUMERIC_TEXT",
    "boolean_value",
    "date_text",
    "datetime_days",
    "is_numeric_text",
    "looks_like_data",
]

# Numeric strings are accepted because the original service cast with int()/float(); float()
# alone would also take "nan", "inf" and "1_000", which a JSON client never means. The space
# around is what float() strips: \s less the separators \x1c-\x1f, which float() refuses.
NUMERIC_TEXT = re.compile(
    r"[^\S\x1c-\x1f]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[^\S\x1c-\x1f]*"
)
# pandas.read_csv's default na_values (pandas._libs.parsers.STR_NA_VALUES; a test compares).
MISSING_CELLS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
DATE_REASON = "must be a date (ISO 8601, e.g. 2024-05-31)"
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)
_EPOCH = date(1970, 1, 1).toordinal()
_NS_PER_DAY = 86_400 * 10**9


def is_numeric_text(text: str) -> bool:
    """Whether `text` is a number as the feature table reads numeric strings."""
    return NUMERIC_TEXT.fullmatch(text) is not None


def boolean_value(value: object) -> float | None:
    """1.0 or 0.0 for a boolean in any accepted form, None for anything else."""
    if value is True or value is False:
        return 1.0 if value else 0.0
    kind = type(value)
    if (kind is int or kind is float) and value in (0, 1):
        return 1.0 if value == 1 else 0.0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return 1.0
        if lowered in _FALSE:
            return 0.0
    return None


def datetime_days(text: str) -> float | None:
    """Days since 1970-01-01 00:00 UTC of an ISO 8601 date or date-time, or None.

    Computed from whole nanoseconds with one correctly rounded division, so training (which
    reads each cell with this function) and serving give the same float.
    """
    match = _DATE.fullmatch(text.strip()) if len(text) <= 64 else None
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:
        return None
    offset_s = 0
    if zone and zone not in ("Z", "z"):
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        offset_s = (hours * 3600 + minutes * 60) * (-1 if zone[0] == "-" else 1)
    seconds = (
        (moment.toordinal() - _EPOCH) * 86_400
        + moment.hour * 3600
        + moment.minute * 60
        + moment.second
        - offset_s
    )
    nanoseconds = int((fraction or "").ljust(9, "0"))
    return (seconds * 10**9 + nanoseconds) / _NS_PER_DAY


def date_text(days: float) -> str:
    """Days since 1970-01-01 UTC as ISO 8601: the date alone when it is midnight."""
    try:
        moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=days)
    except OverflowError:
        return repr(days)
    if moment.hour == moment.minute == moment.second == moment.microsecond == 0:
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def looks_like_data(cells: Sequence[str]) -> bool:
    """Whether a header row is all numbers, as the first row of a file without a header is."""
    return bool(cells) and all(is_numeric_text(cell) for cell in cells)
