"""The rows of MLflow scoring bodies, validated in pure Python against the feature table.

Every MLflow body that the numpy block path or the typed decode does not take is read here,
and every error is named here: the place in the body (`dataframe_split.data[3].glucose`,
`instances[0]`, `inputs.glucose`), and the feature table's own reasons for bad values. Rows
given as arrays hold the features in the model's order; columns (`dataframe_split.columns`,
the keys of an `inputs` object) are matched as object keys are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from modelapi.errors import FieldError, InvalidInput, PayloadTooLarge
from modelapi.schema import FeatureTable, IgnoredFields, Row, shown_name

__all__ = ["check_rows", "column_positions", "mlflow_rows"]


def check_rows(n_rows: int, max_rows: int) -> None:
    """Refuse more rows than the limit, before any row is read."""
    if n_rows > max_rows:
        raise PayloadTooLarge("body", f"must hold at most {max_rows} rows")


def column_positions(
    table: FeatureTable,
    names: Sequence[str],
    field: str,
    ignored: IgnoredFields | None,
    forbid_extra: bool,
) -> list[int | None]:
    """Where each feature is among column names (None: absent, and missing values allowed).

    Names are matched as object keys are (JSON key or CSV name); others are ignored and noted,
    or refused with `forbid_extra`. Raise InvalidInput naming `field` for a feature named
    twice, and for one with no column that does not take missing values.
    """
    found: dict[str, int] = {}
    errors: list[FieldError] = []
    for index, name in enumerate(names):
        feature = table.feature_named(name)
        if feature is None:
            if forbid_extra:
                errors.append(
                    FieldError(field, f"column {shown_name(name)} is not a feature of this model")
                )
            elif ignored is not None:
                ignored.add(name)
        elif feature.key in found:
            errors.append(FieldError(field, f"names {feature.key} twice; keep one column"))
        else:
            found[feature.key] = index
    errors.extend(
        FieldError(field, f"has no column {f.column} ({f.key})")
        for f in table.features
        if f.key not in found and not f.accepts_missing
    )
    if errors:
        raise InvalidInput.of(errors)
    return [found.get(key) for key in table.keys]


def mlflow_rows(
    table: FeatureTable,
    shape: str,
    value: object,
    *,
    max_rows: int,
    ignored: IgnoredFields | None = None,
    forbid_extra: bool = False,
) -> list[Row]:
    """Validate the value of an MLflow body's key; raise InvalidInput naming every problem."""
    if shape == "dataframe_split":
        return _split_rows(table, value, max_rows, ignored, forbid_extra)
    if shape == "inputs" and isinstance(value, dict):
        return _column_rows(table, value, max_rows, ignored, forbid_extra)
    if not isinstance(value, list):
        kind = "objects" if shape == "dataframe_records" else "rows"
        raise InvalidInput(shape, f"must be an array of {kind}")
    check_rows(len(value), max_rows)
    errors: list[FieldError] = []
    rows = [
        _item(table, item, f"{shape}[{i}]", errors, ignored, forbid_extra, shape)
        for i, item in enumerate(value)
    ]
    if errors:
        raise InvalidInput.of(errors)
    return rows


def _item(
    table: FeatureTable,
    item: object,
    where: str,
    errors: list[FieldError],
    ignored: IgnoredFields | None,
    forbid_extra: bool,
    shape: str,
) -> Row:
    if isinstance(item, list) and shape != "dataframe_records":
        n_features = len(table.keys)
        if len(item) != n_features:
            errors.append(
                FieldError(
                    where,
                    f"has {len(item)} values; a row given as an array holds the {n_features}"
                    " features in the model's order",
                )
            )
            return []
        item = dict(zip(table.keys, item, strict=True))
    elif not isinstance(item, dict):
        either = "" if shape == "dataframe_records" else " or an array of the feature values"
        errors.append(FieldError(where, f"must be a JSON object{either}"))
        return []
    return table.parse_into(item, where + ".", errors, ignored=ignored, forbid_extra=forbid_extra)


def _split_rows(
    table: FeatureTable,
    value: object,
    max_rows: int,
    ignored: IgnoredFields | None,
    forbid_extra: bool,
) -> list[Row]:
    shape = "dataframe_split"
    if not isinstance(value, dict):
        raise InvalidInput(shape, "must be an object with columns and data")
    problems = [
        FieldError(f"{shape}.{shown_name(str(key))}", "is not taken; send columns, data, index")
        for key in value
        if key not in ("columns", "data", "index")
    ]
    names, data, index = value.get("columns"), value.get("data"), value.get("index", [])
    if not isinstance(names, list) or not all(type(name) is str for name in names):
        problems.append(FieldError(f"{shape}.columns", "must be an array of column names"))
    if not isinstance(data, list):
        problems.append(FieldError(f"{shape}.data", "must be an array of rows"))
    elif "index" in value and (not isinstance(index, list) or len(index) != len(data)):
        problems.append(FieldError(f"{shape}.index", f"must be an array of {len(data)} labels"))
    if problems:
        raise InvalidInput.of(problems)
    assert isinstance(names, list)
    assert isinstance(data, list)
    check_rows(len(data), max_rows)
    positions = column_positions(table, names, f"{shape}.columns", ignored, forbid_extra)
    pairs = [(key, at) for key, at in zip(table.keys, positions, strict=True) if at is not None]
    errors: list[FieldError] = []
    rows: list[Row] = []
    for i, row in enumerate(data):
        where = f"{shape}.data[{i}]"
        if not isinstance(row, list) or len(row) != len(names):
            size = f"has {len(row)} values" if isinstance(row, list) else "must be an array"
            errors.append(FieldError(where, f"{size} for {len(names)} columns"))
            continue
        rows.append(table.parse_into({key: row[at] for key, at in pairs}, where + ".", errors))
    if errors:
        raise InvalidInput.of(errors)
    return rows


def _column_rows(
    table: FeatureTable,
    value: dict[str, object],
    max_rows: int,
    ignored: IgnoredFields | None,
    forbid_extra: bool,
) -> list[Row]:
    columns = list(value.values())
    if not any(isinstance(column, list) for column in columns):
        # An object of single values is one row.
        errors: list[FieldError] = []
        row = table.parse_into(value, "inputs.", errors, ignored=ignored, forbid_extra=forbid_extra)
        if errors:
            raise InvalidInput.of(errors)
        return [row]
    lengths = {len(column) if isinstance(column, list) else -1 for column in columns}
    if len(lengths) != 1 or -1 in lengths:
        raise InvalidInput("inputs", "must map every column to an array of the same length")
    [n_rows] = lengths
    check_rows(n_rows, max_rows)
    positions = column_positions(table, list(value), "inputs", ignored, forbid_extra)
    picked = [
        (key, cast(list[object], columns[at]))
        for key, at in zip(table.keys, positions, strict=True)
        if at is not None
    ]
    errors = []
    rows = [
        table.parse_into({key: column[i] for key, column in picked}, f"inputs[{i}].", errors)
        for i in range(n_rows)
    ]
    if errors:
        raise InvalidInput.of(errors)
    return rows
