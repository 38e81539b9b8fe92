"""Training data: a CSV (path or http(s) URL) or a DataFrame, checked and described.

`load_dataset` turns a table into a `Dataset`: the feature columns, the target, the feature
table the served model will validate against, each column's role, the task, and the summary
users expect from a notebook (rows, per-column count/missing/mean/min/max, class balance).

Decisions:
- The target is the last column unless named (by CSV name or JSON key). Rows without a
  target value cannot teach anything: they are dropped, and the summary says how many.
- Each other column gets a role (`modelapi.training.roles`): a feature (integer, number,
  boolean, category, datetime) or dropped with a warning (identifier, constant, free text,
  --ignore). `--feature COLUMN:TYPE` and `--ignore COLUMN` override the inference.
- Booleans reach the model as 1.0/0.0 and dates as days since 1970-01-01 UTC; categories
  are their text, sorted. Min/max come from every row used (train and test).
- Missing feature values are kept (the default pipeline imputes them); `drop_missing=True`
  drops the rows that have one.
- Task: a text or boolean target is classification; a numeric target is classification when
  all its values are whole numbers and there are at most `MAX_CLASSES` of them, otherwise
  regression. `task=` overrides the guess.
- A file whose first line is all numbers has no header: refused, with how to name the
  columns (`columns=`, `--columns a,b,c`).
- Every error is a one-line DataError that names columns and counts, never cell values.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from modelapi.bundle import DataInfo
from modelapi.errors import DataError
from modelapi.schema import Feature, FeatureType, Target, snake_case
from modelapi.training.roles import ColumnRole, convert_column, infer_role, is_text
from modelapi.training.summary import (
    ColumnSummary,
    DataSummary,
    Label,
    Task,
    json_scalar,
    summarize,
)
from modelapi.values import looks_like_data

__all__ = [
    "MAX_CLASSES",
    "ColumnSummary",
    "DataSummary",
    "Dataset",
    "Label",
    "Task",
    "describe_features",
    "json_scalar",
    "load_dataset",
    "read_table",
]

# A whole-numbered target with more distinct values than this is treated as a quantity.
MAX_CLASSES = 20
_URL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Dataset:
    """A checked training table: features `X` (feature-table order) and target `y`.

    `X` holds what the model gets: floats (NaN where missing) for numbers, booleans and
    dates, text (object) for categories. `roles` are every column's but the target's.
    """

    X: pd.DataFrame
    y: pd.Series
    features: tuple[Feature, ...]
    target: Target
    task: Task
    classes: tuple[Label, ...] | None
    info: DataInfo
    summary: DataSummary
    roles: tuple[ColumnRole, ...] = ()

    @property
    def has_missing(self) -> bool:
        """Whether any feature value is missing (the default pipeline then imputes)."""
        return bool(self.X.isna().to_numpy().any())


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_table(
    source: str | os.PathLike[str], *, columns: Sequence[str] | None = None
) -> tuple[pd.DataFrame, bytes, str]:
    """Read a CSV from a path or http(s) URL; return the table, its raw bytes and a short name.

    The short name is the file name, or the URL without query string (it may hold a token).
    `columns` names the columns of a file without a header line; a file whose first line is
    all numbers needs them, and is refused without.
    """
    text = os.fspath(source)
    if _is_url(text):
        parts = urllib.parse.urlsplit(text)
        shown = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        try:
            with urllib.request.urlopen(text, timeout=_URL_TIMEOUT_S) as response:
                raw: bytes = response.read()
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DataError(f"{shown}: cannot be downloaded ({reason})") from None
    else:
        path = Path(text)
        shown = path.name
        if not path.is_file():
            raise DataError(f"{text}: no such file; give a CSV path or an http(s) URL")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{text}: cannot be read ({exc.strerror})") from None
    if not raw.strip():
        raise DataError(f"{shown}: the file is empty; expected a CSV with a header row")
    if columns is None:
        _check_header(raw, shown)
    try:
        if columns is None:
            frame = pd.read_csv(io.BytesIO(raw))
        else:
            frame = pd.read_csv(io.BytesIO(raw), header=None, names=list(columns))
    except UnicodeDecodeError:
        raise DataError(f"{shown}: not a UTF-8 text CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{shown}: not a readable CSV ({first})") from None
    if columns is not None and _n_fields(raw) != len(columns):
        raise DataError(
            f"{shown}: --columns names {len(columns)} columns but the rows have"
            f" {_n_fields(raw)}; name every column, in order"
        )
    return frame, raw, shown


def _first_record(raw: bytes) -> list[str]:
    head = raw[: raw.find(b"\n") + 1 or len(raw)].decode("utf-8-sig", errors="replace")
    return next(csv.reader([head]), [])


def _n_fields(raw: bytes) -> int:
    return len(_first_record(raw))


def _check_header(raw: bytes, shown: str) -> None:
    # The tutorial's pima-indians-diabetes.data.csv has no header: pandas would take the first
    # patient for the column names, and the features would be f_6, f_148, ...
    if looks_like_data(_first_record(raw)):
        raise DataError(
            f"{shown}: every cell of the first line is a number, so the file seems to have no"
            " header line; name the columns, in order, with --columns a,b,c"
            " (in Python: columns=[...])"
        )


def load_dataset(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    target: str | None = None,
    task: Task | None = None,
    drop_missing: bool = False,
    ignore: Collection[str] = (),
    feature_types: Mapping[str, FeatureType] | None = None,
    columns: Sequence[str] | None = None,
) -> Dataset:
    """Read and check a training table; raise DataError naming the problem and the fix.

    `ignore` drops columns (CSV names or JSON keys), `feature_types` sets a column's type
    instead of inferring it, `columns` names the columns of a CSV without a header line.
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        raw = frame.to_csv(index=False).encode()
        shown = "DataFrame"
    else:
        frame, raw, shown = read_table(source, columns=columns)
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{shown}: has a header but no data rows")
    if len(frame.columns) < 2:
        raise DataError(
            f"{shown}: has {len(frame.columns)} column; expected feature columns and a target"
            " (is the separator a comma?)"
        )
    target_column = _find_target(frame, target, shown)
    given = dict(feature_types or {})
    _check_names(frame, target_column, [*ignore, *given], shown)
    has_target = frame[target_column].notna()
    n_no_target = int((~has_target).sum())
    frame = frame[has_target].reset_index(drop=True)
    if len(frame) == 0:
        raise DataError(f"{shown}: no row has a value in the target column {target_column}")
    roles = []
    for name in frame.columns:
        if name == target_column:
            continue
        roles.append(infer_role(frame[name], given=given, ignore=set(ignore), shown=shown))
    kept = [r for r in roles if r.is_feature]
    if not kept:
        dropped = ", ".join(f"{r.column} ({r.role})" for r in roles)[:300]
        raise DataError(
            f"{shown}: no feature columns are left ({dropped}); keep one with --feature COLUMN:TYPE"
        )
    n_before = len(frame)
    if drop_missing:
        frame = frame[frame[[r.column for r in kept]].notna().all(axis=1)]
        if len(frame) == 0:
            raise DataError(f"{shown}: every row has a missing value; nothing is left to train on")
        frame = frame.reset_index(drop=True)
    X = pd.DataFrame(
        {r.column: convert_column(frame[r.column], r.role, shown) for r in kept},  # type: ignore[arg-type]
        index=frame.index,
    )
    features = _features(X, kept)
    y = frame[target_column]
    chosen = task or _guess_task(y)
    y, classes = _prepare_target(y, chosen, target_column, shown)
    summary = summarize(
        source=shown,
        original=frame,
        X=X,
        y=y,
        roles=roles,
        target=target_column,
        task=chosen,
        classes=classes,
        n_dropped=n_before - len(frame),
        n_no_target=n_no_target,
    )
    info = DataInfo(sha256=hashlib.sha256(raw).hexdigest(), n_rows=len(X), source=shown)
    return Dataset(
        X=X,
        y=y,
        features=features,
        target=Target(column=target_column, key=snake_case(target_column)),
        task=chosen,
        classes=classes,
        info=info,
        summary=summary,
        roles=tuple(roles),
    )


def _find_target(frame: pd.DataFrame, target: str | None, shown: str) -> str:
    columns = [str(c) for c in frame.columns]
    if target is None:
        return columns[-1]
    if target in columns:
        return target
    by_key = [c for c in columns if snake_case(c) == target]
    if len(by_key) == 1:
        return by_key[0]
    raise DataError(
        f"{shown}: no target column {target[:80]!r}; the columns are {', '.join(columns)[:400]}"
    )


def _check_names(frame: pd.DataFrame, target: str, names: Sequence[str], shown: str) -> None:
    known = {*frame.columns, *(snake_case(c) for c in frame.columns)}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DataError(
            f"{shown}: no column {', '.join(unknown)[:200]} (in --ignore or --feature);"
            f" the columns are {', '.join(frame.columns)[:400]}"
        )
    if target in names or snake_case(target) in names:
        raise DataError(f"{shown}: {target} is the target; it cannot be ignored or a feature")


def _features(X: pd.DataFrame, roles: Sequence[ColumnRole]) -> tuple[Feature, ...]:
    """The feature table of the converted columns; raise DataError on clashing JSON keys."""
    features: list[Feature] = []
    seen: dict[str, str] = {}
    for role in roles:
        name, column = role.column, X[role.column]
        key = _unique_key(name, seen)
        if role.role == "category":
            categories = tuple(sorted({str(v) for v in column.dropna()}))
            features.append(Feature(column=name, key=key, type="category", categories=categories))
        elif role.role == "boolean":
            features.append(Feature(column=name, key=key, type="boolean"))
        else:
            present = column.dropna()
            features.append(
                Feature(
                    column=name,
                    key=key,
                    type=role.role,  # type: ignore[arg-type]
                    min=float(present.min()) if len(present) else None,
                    max=float(present.max()) if len(present) else None,
                )
            )
    return tuple(features)


def _unique_key(name: str, seen: dict[str, str]) -> str:
    key = snake_case(name)
    if key in seen:
        raise DataError(
            f"columns {seen[key]} and {name} both become the JSON key {key!r};"
            " rename one of them, or drop one with --ignore"
        )
    seen[key] = name
    return key


def describe_features(X: pd.DataFrame) -> tuple[Feature, ...]:
    """Build the feature table of a frame a model takes as it is (`modelapi.save`).

    Text columns are categories, boolean columns booleans, integer and float columns
    integers and numbers; raise DataError on clashing JSON keys or another column type.
    """
    features: list[Feature] = []
    seen: dict[str, str] = {}
    for name in X.columns:
        column = X[name]
        key = _unique_key(str(name), seen)
        if is_text(column) or isinstance(column.dtype, pd.CategoricalDtype):
            categories = tuple(sorted({str(v) for v in column.dropna()}))
            features.append(
                Feature(column=str(name), key=key, type="category", categories=categories)
            )
            continue
        if pd.api.types.is_bool_dtype(column):
            features.append(Feature(column=str(name), key=key, type="boolean"))
            continue
        if not pd.api.types.is_numeric_dtype(column):
            raise DataError(f"column {name}: type {column.dtype} is not a number or text")
        kind: FeatureType = "integer" if pd.api.types.is_integer_dtype(column) else "number"
        features.append(
            Feature(
                column=str(name),
                key=key,
                type=kind,
                min=float(column.min()),
                max=float(column.max()),
            )
        )
    if not features:
        raise DataError("no feature columns: the table needs at least one besides the target")
    return tuple(features)


def _guess_task(y: pd.Series) -> Task:
    if is_text(y) or pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "classification"
    values = y.to_numpy(dtype=float)
    whole = bool(np.all(np.mod(values, 1) == 0))
    return "classification" if whole and y.nunique() <= MAX_CLASSES else "regression"


def _prepare_target(
    y: pd.Series, task: Task, name: str, shown: str
) -> tuple[pd.Series, tuple[Label, ...] | None]:
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise DataError(f"{shown}: target {name} is not numeric, so it cannot be regressed")
        return y.astype(float), None
    if pd.api.types.is_bool_dtype(y) or is_text(y):
        y = y.astype(str)
    elif pd.api.types.is_float_dtype(y):
        if not bool(np.all(np.mod(y.to_numpy(dtype=float), 1) == 0)):
            raise DataError(
                f"{shown}: target {name} has fractional values; classification needs whole"
                " numbers or text labels (use --task regression)"
            )
        y = y.astype("int64")
    classes = tuple(json_scalar(v) for v in sorted(y.unique()))
    if len(classes) < 2:
        raise DataError(
            f"{shown}: target {name} has a single class; classification needs at least two"
        )
    return y, classes
