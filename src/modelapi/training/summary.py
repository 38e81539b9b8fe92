"""The data summary: what the table looked like before training, printed by `train` and
kept in `report.html` (rows, each column's role, count, missing cells, mean/min/max or
number of categories, what was dropped and why, class balance).

It shows counts and statistics only, never a cell or a category value: the table may hold
names, ids or health data, and the report is served at `/model/report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from modelapi.training.roles import ColumnRole
from modelapi.values import date_text

__all__ = ["ColumnSummary", "DataSummary", "Label", "Task", "json_scalar", "summarize"]

Task = Literal["classification", "regression"]
Label = int | float | str


@dataclass(frozen=True, slots=True)
class ColumnSummary:
    """One column as a notebook's `describe()` shows it, with its role; text has no mean."""

    column: str
    count: int
    mean: float | None
    min: float | None
    max: float | None
    n_categories: int | None = None
    role: str = ""
    n_missing: int = 0
    note: str = ""

    def values_text(self) -> str:
        """Mean, min and max (dates as dates), the number of categories, or why dropped."""
        if self.note:
            return self.note
        if self.n_categories is not None:
            return f"{self.n_categories} categories"
        if self.role == "datetime" and self.min is not None and self.max is not None:
            return f"{date_text(self.min)} to {date_text(self.max)}"
        return "  ".join(_num(v) for v in (self.mean, self.min, self.max))


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
    roles: tuple[ColumnRole, ...] = ()
    n_no_target: int = 0

    @property
    def dropped(self) -> tuple[ColumnRole, ...]:
        """The columns that are not features, with why."""
        return tuple(role for role in self.roles if not role.is_feature)

    def format(self) -> str:
        """Render the summary as a plain-text table."""
        width = max([len(c.column) for c in self.columns] + [6])
        lines = [
            f"data: {self.source}: {self.n_rows} rows, {len(self.columns)} columns,"
            f" target {self.target} ({self.task})"
        ]
        if self.n_no_target:
            lines.append(f"dropped {self.n_no_target} rows without a value in {self.target}")
        if self.n_dropped:
            lines.append(f"dropped {self.n_dropped} rows with missing values (--drop-missing)")
        lines.append(
            f"{'column':<{width}}  {'role':<10}  {'count':>7}  {'missing':>7}"
            f"  {'mean':>12}  {'min':>12}  {'max':>12}"
        )
        for c in self.columns:
            lines.append(
                f"{c.column:<{width}}  {c.role:<10}  {c.count:>7}  {c.n_missing:>7}"
                f"  {c.values_text()}"
            )
        if self.dropped:
            shown = "; ".join(f"{r.column} ({r.role}: {r.reason})" for r in self.dropped)
            lines.append(
                f"warning: not used as features: {shown}."
                " Keep one with --feature COLUMN:TYPE, drop more with --ignore COLUMN"
            )
        if self.class_balance is not None:
            total = sum(n for _, n in self.class_balance) or 1
            shown = ", ".join(f"{k}: {n} ({100 * n / total:.1f}%)" for k, n in self.class_balance)
            lines.append(f"class balance ({self.target}): {shown}")
        return "\n".join(lines)


def _num(value: float | None) -> str:
    return f"{'' if value is None else f'{value:.6g}':>12}"


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


def summarize(
    *,
    source: str,
    original: pd.DataFrame,
    X: pd.DataFrame,
    y: pd.Series,
    roles: Sequence[ColumnRole],
    target: str,
    task: Task,
    classes: Sequence[Label] | None,
    n_dropped: int,
    n_no_target: int,
) -> DataSummary:
    """The summary of a loaded table: features as the model gets them, dropped columns as read."""
    columns: list[ColumnSummary] = []
    for role in roles:
        if role.is_feature:
            columns.append(_column(X[role.column], role.role))
        else:
            raw = original[role.column]
            columns.append(
                ColumnSummary(
                    role.column,
                    int(raw.count()),
                    None,
                    None,
                    None,
                    role=role.role,
                    n_missing=int(raw.isna().sum()),
                    note=f"dropped: {role.reason}",
                )
            )
    columns.append(_column(y, "target"))
    return DataSummary(
        source=source,
        n_rows=len(X),
        n_dropped=n_dropped,
        target=target,
        task=task,
        columns=tuple(columns),
        class_balance=_balance(y, classes),
        roles=tuple(roles),
        n_no_target=n_no_target,
    )


def _column(column: pd.Series, role: str) -> ColumnSummary:
    count = int(column.count())
    missing = int(column.isna().sum())
    name = str(column.name)
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return ColumnSummary(
            name, count, None, None, None, int(column.nunique()), role=role, n_missing=missing
        )
    values = column.astype(float)
    return ColumnSummary(
        name,
        count,
        float(values.mean()) if count else None,
        float(values.min()) if count else None,
        float(values.max()) if count else None,
        role=role,
        n_missing=missing,
    )


def _balance(y: pd.Series, classes: Sequence[Label] | None) -> tuple[tuple[Label, int], ...] | None:
    if classes is None:
        return None
    counts = {json_scalar(k): int(v) for k, v in y.value_counts().items()}
    return tuple((c, counts.get(c, 0)) for c in classes)
