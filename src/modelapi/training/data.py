"""Training data: a CSV (path or http(s) URL) or a DataFrame, checked and described.

`load_dataset` turns a table into a `Dataset`: the feature columns in CSV order, the target,
the feature table the served model will validate against, the task, and the summary users
expect from a notebook (rows, per-column count/mean/min/max, class balance).

Decisions:
- The target is the last column unless named (by CSV name or JSON key).
- Task: a text or boolean target is classification; a numeric target is classification when
  all its values are whole numbers and there are at most `MAX_CLASSES` of them, otherwise
  regression. `task=` overrides the guess.
- Integer columns are features of type "integer", float columns "number", text columns
  "category" (one-hot encoded inside the model, categories sorted). Min/max come from every
  row used (train and test).
- Missing values are an error naming how many rows; `drop_missing=True` drops those rows.
- Every error is a one-line DataError that names columns and counts, never cell values.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from modelapi.bundle import DataInfo
from modelapi.errors import DataError
from modelapi.schema import Feature, Target, snake_case

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

Task = Literal["classification", "regression"]
Label = int | float | str
# A whole-numbered target with more distinct values than this is treated as a quantity.
MAX_CLASSES = 20
_URL_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ColumnSummary:
    """One column as a notebook's `describe()` shows it; text columns have no mean/min/max."""

    column: str
    count: int
    mean: float | None
    min: float | None
    max: float | None
    n_categories: int | None = None


@dataclass(frozen=True, slots=True)
class DataSummary:
    """What the data looked like before training: kept in the report and printed by the CLI."""

    source: str
    n_rows: int
    n_dropped: int
    target: str
    task: Task
    columns: tuple[ColumnSummary, ...]
    class_balance: tuple[tuple[Label, int], ...] | None

    def format(self) -> str:
        """Render the summary as a plain-text table."""
        width = max([len(c.column) for c in self.columns] + [6])
        lines = [
            f"data: {self.source}: {self.n_rows} rows, {len(self.columns)} columns,"
            f" target {self.target} ({self.task})"
        ]
        if self.n_dropped:
            lines.append(f"dropped {self.n_dropped} rows with missing values")
        lines.append(f"{'column':<{width}}  {'count':>7}  {'mean':>12}  {'min':>12}  {'max':>12}")
        for c in self.columns:
            if c.n_categories is not None:
                lines.append(f"{c.column:<{width}}  {c.count:>7}  {c.n_categories} categories")
            else:
                numbers = "  ".join(_num(v) for v in (c.mean, c.min, c.max))
                lines.append(f"{c.column:<{width}}  {c.count:>7}  {numbers}")
        if self.class_balance is not None:
            total = sum(n for _, n in self.class_balance) or 1
            shown = ", ".join(f"{k}: {n} ({100 * n / total:.1f}%)" for k, n in self.class_balance)
            lines.append(f"class balance ({self.target}): {shown}")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return f"{'' if value is None else f'{value:.6g}':>12}"


@dataclass(frozen=True)
class Dataset:
    """A checked training table: features `X` (feature-table order) and target `y`."""

    X: pd.DataFrame
    y: pd.Series
    features: tuple[Feature, ...]
    target: Target
    task: Task
    classes: tuple[Label, ...] | None
    info: DataInfo
    summary: DataSummary


def json_scalar(value: object) -> Label:
    """Turn a numpy or pandas scalar into a plain JSON scalar (a whole float becomes an int)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    return str(value)


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def read_table(source: str | os.PathLike[str]) -> tuple[pd.DataFrame, bytes, str]:
    """Read a CSV from a path or http(s) URL; return the table, its raw bytes and a short name.

    The short name is the file name, or the URL without query string (it may hold a token).
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
    try:
        frame = pd.read_csv(io.BytesIO(raw))
    except UnicodeDecodeError:
        raise DataError(f"{shown}: not a UTF-8 text CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{shown}: not a readable CSV ({first})") from None
    return frame, raw, shown


def load_dataset(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    target: str | None = None,
    task: Task | None = None,
    drop_missing: bool = False,
) -> Dataset:
    """Read and check a training table; raise DataError naming the problem and the fix."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        raw = frame.to_csv(index=False).encode()
        shown = "DataFrame"
    else:
        frame, raw, shown = read_table(source)
    frame.columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{shown}: has a header but no data rows")
    if len(frame.columns) < 2:
        raise DataError(
            f"{shown}: has {len(frame.columns)} column; expected feature columns and a target"
            " (is the separator a comma?)"
        )
    target_column = _find_target(frame, target, shown)
    n_before = len(frame)
    frame = _check_missing(frame, target_column, drop_missing, shown)
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        _check_numeric_text(frame[column], column, shown)
    y = frame.pop(target_column)
    X = frame
    features = describe_features(X)
    chosen = task or _guess_task(y)
    y, classes = _prepare_target(y, chosen, target_column, shown)
    summary = DataSummary(
        source=shown,
        n_rows=len(X),
        n_dropped=n_before - len(X),
        target=target_column,
        task=chosen,
        columns=tuple(_summarize(frame_column) for frame_column in (*_columns(X), y)),
        class_balance=_balance(y, classes),
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
    )


def _columns(frame: pd.DataFrame) -> list[pd.Series]:
    return [frame[c] for c in frame.columns]


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


def _check_missing(frame: pd.DataFrame, target: str, drop: bool, shown: str) -> pd.DataFrame:
    missing = frame.isna()
    target_rows = int(missing[target].sum())
    feature_missing = missing.drop(columns=[target])
    feature_rows = int(feature_missing.any(axis=1).sum())
    if drop:
        kept = frame[~missing.any(axis=1)]
        if len(kept) == 0:
            raise DataError(f"{shown}: every row has a missing value; nothing is left to train on")
        return kept
    if target_rows:
        raise DataError(
            f"{shown}: {target_rows} rows have no value in the target column {target};"
            " fill them, or rerun with --drop-missing to train without them"
        )
    if feature_rows:
        columns = [str(c) for c in feature_missing.columns if feature_missing[c].any()]
        raise DataError(
            f"{shown}: {feature_rows} rows have missing feature values (in {', '.join(columns)});"
            " fill them, or rerun with --drop-missing to train without them"
        )
    return frame


def _is_text(column: pd.Series) -> bool:
    return bool(pd.api.types.is_string_dtype(column) or pd.api.types.is_object_dtype(column))


def _check_numeric_text(column: pd.Series, name: str, shown: str) -> None:
    # A column that is mostly numbers with some text is a broken numeric column, not a category.
    if not _is_text(column):
        return
    values = column.dropna()
    numeric = pd.to_numeric(values.astype(str), errors="coerce").notna()
    n_text = int((~numeric).sum())
    if len(values) and 0 < n_text <= len(values) / 2:
        raise DataError(
            f"{shown}: column {name} is numeric but {n_text} rows hold text that is not a number;"
            " fix or remove those rows"
        )


def describe_features(X: pd.DataFrame) -> tuple[Feature, ...]:
    """Build the feature table of a feature frame; raise DataError on clashing JSON keys."""
    features: list[Feature] = []
    seen: dict[str, str] = {}
    for name in X.columns:
        column = X[name]
        key = snake_case(str(name))
        if key in seen:
            raise DataError(
                f"columns {seen[key]} and {name} both become the JSON key {key!r};"
                " rename one of them"
            )
        seen[key] = str(name)
        if _is_text(column) or isinstance(column.dtype, pd.CategoricalDtype):
            categories = tuple(sorted({str(v) for v in column.dropna()}))
            features.append(
                Feature(column=str(name), key=key, type="category", categories=categories)
            )
            continue
        kind: Literal["integer", "number"] = (
            "integer"
            if pd.api.types.is_integer_dtype(column) or pd.api.types.is_bool_dtype(column)
            else "number"
        )
        if not pd.api.types.is_numeric_dtype(column):
            raise DataError(f"column {name}: type {column.dtype} is not a number or text")
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
    if _is_text(y) or pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
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
    if pd.api.types.is_bool_dtype(y) or _is_text(y):
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


def _summarize(column: pd.Series) -> ColumnSummary:
    count = int(column.count())
    if _is_text(column) or not pd.api.types.is_numeric_dtype(column):
        return ColumnSummary(str(column.name), count, None, None, None, int(column.nunique()))
    values = column.astype(float)
    return ColumnSummary(
        str(column.name),
        count,
        float(values.mean()),
        float(values.min()),
        float(values.max()),
    )


def _balance(y: pd.Series, classes: Sequence[Label] | None) -> tuple[tuple[Label, int], ...] | None:
    if classes is None:
        return None
    counts = {json_scalar(k): int(v) for k, v in y.value_counts().items()}
    return tuple((c, counts.get(c, 0)) for c in classes)
