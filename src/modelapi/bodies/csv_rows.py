"""CSV against a feature table: the one header rule, and a CSV body's rows.

A CSV body sent to `/predict` and a file scored by `modelapi predict` find their features
with the same `header_columns`: by JSON key or CSV name, other columns ignored (or refused
when extra fields are forbidden), and a header of numbers only refused as the first data row
of a file without one. Cells are validated by `FeatureTable.parse_record`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelapi.errors import FieldError, InvalidInput, MalformedBody, PayloadTooLarge
from modelapi.schema import Columns, shown_name
from modelapi.values import looks_like_data

if TYPE_CHECKING:
    from modelapi.schema import FeatureTable, IgnoredFields, Row

__all__ = ["HEADER_FIX", "header_columns", "parse_csv"]

HEADER_FIX = "send a first line naming the columns (the features' JSON keys or CSV names)"


def header_columns(
    table: FeatureTable, header: Sequence[str], *, forbid_extra: bool = False, fix: str = ""
) -> Columns:
    """Find each feature in a CSV header, by JSON key or CSV name (feature order).

    Other columns are ignored (listed in the result), or refused with `forbid_extra`. Raise
    InvalidInput for a feature with no column or with two, and for a header of numbers only,
    the first line of a file without a header; `fix` says how to give the names then.
    """
    if looks_like_data(header) and not all(table.feature_named(name) for name in header):
        raise InvalidInput(
            "header",
            "holds only numbers, so the first line looks like data, not column names;"
            f" {fix or HEADER_FIX}",
        )
    found: dict[str, int] = {}
    ignored: list[str] = []
    errors: list[FieldError] = []
    for index, name in enumerate(header):
        feature = table.feature_named(name)
        if feature is None:
            if forbid_extra:
                errors.append(
                    FieldError(
                        "header", f"column {shown_name(name)} is not a feature of this model"
                    )
                )
            ignored.append(name)
        elif feature.key in found:
            errors.append(FieldError("header", f"names {feature.key} twice; keep one column"))
        else:
            found[feature.key] = index
    errors.extend(
        FieldError("header", f"has no column {f.column} ({f.key})")
        for f in table.features
        if f.key not in found
    )
    if errors:
        raise InvalidInput.of(errors)
    return Columns([found[key] for key in table.keys], ignored)


def parse_csv(
    table: FeatureTable,
    body: bytes,
    max_rows: int,
    *,
    ignored: IgnoredFields | None = None,
    forbid_extra: bool = False,
) -> list[Row]:
    """Validate a CSV body (header row + rows); raise InvalidInput naming every bad cell."""
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
    found = header_columns(table, header, forbid_extra=forbid_extra)
    if ignored is not None:
        for name in found.ignored:
            ignored.add(name)
    pairs = list(zip(table.keys, found.positions, strict=True))
    errors: list[FieldError] = []
    rows: list[Row] = []
    for index, record in enumerate(records):
        if len(record) != len(header):
            errors.append(
                FieldError(f"[{index}]", f"has {len(record)} values for {len(header)} columns")
            )
            continue
        cells = {key: record[position] for key, position in pairs}
        rows.append(table.parse_record(cells, f"[{index}].", errors))
    if errors:
        raise InvalidInput.of(errors)
    return rows
