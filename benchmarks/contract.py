"""The contract's model, fitted here with scikit-learn: the labels every server is checked against.

The Pima logistic regression is trained as the contract trains it (the CSV's last column is the
label, `train_test_split(test_size=0.3, random_state=1)`, `LogisticRegression(solver="lbfgs",
max_iter=1000)`). Its test rows are the rows every peer must label exactly as modelapi does
before it is measured, and its label for the example is what a cold start waits for.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.csv_run import COLUMNS

__all__ = [
    "FIELDS",
    "PIMA_EXAMPLE",
    "Contract",
    "Row",
    "fit_contract",
    "generated_rows",
    "row_values",
]

# The exact body existing clients send (the contract example).
PIMA_EXAMPLE = (
    b'{"pregnancies": 2, "glucose": 148, "blood_pressure": 72, "skin_thickness": 35,'
    b' "insulin": 0, "bmi": 33.6, "diabetes_pedigree_function": 0.674, "age": 22}'
)
# The wire names, in the CSV's column order (the example lists them in that order).
FIELDS: tuple[str, ...] = tuple(json.loads(PIMA_EXAMPLE))
Row = dict[str, int | float]


def generated_rows(n_rows: int, *, seed: int = 0) -> list[Row]:
    """`n_rows` seeded rows inside the Pima training ranges (the batch body's rows)."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for _ in range(n_rows):
        row: Row = {}
        for name, (_, low, high, decimals) in zip(FIELDS, COLUMNS, strict=True):
            value = rng.uniform(low, high)
            row[name] = round(value, decimals) if decimals else int(value)
        rows.append(row)
    return rows


def row_values(row: Row) -> list[float]:
    """A row's values in the CSV's column order, as floats (what a tensor or array carries)."""
    return [float(row[name]) for name in FIELDS]


@dataclass(frozen=True, slots=True)
class Contract:
    """The fitted model (scikit-learn's, untyped) and the contract's test rows."""

    model: object
    test_rows: list[Row]

    def labels(self, rows: Sequence[Row]) -> list[int]:
        """scikit-learn's labels for the rows."""
        import numpy as np

        matrix = np.array([row_values(row) for row in rows], dtype=float)
        return [int(label) for label in self.model.predict(matrix)]  # type: ignore[attr-defined]

    def decided_rows(self, n_rows: int, *, margin: float = 1e-3) -> list[Row]:
        """The first `n_rows` generated rows whose probability is `margin` or more from 0.5.

        Nearer the boundary, two fits of the same model (another BLAS, another thread count:
        lbfgs stops within its tolerance) may give the same row different labels.
        """
        import numpy as np

        pool = generated_rows(2 * n_rows + 100)
        matrix = np.array([row_values(row) for row in pool], dtype=float)
        proba = self.model.predict_proba(matrix)[:, 1]  # type: ignore[attr-defined]
        rows = [row for row, p in zip(pool, proba, strict=True) if abs(p - 0.5) >= margin]
        if len(rows) < n_rows:
            raise RuntimeError(f"only {len(rows)} generated rows are clear of the boundary")
        return rows[:n_rows]


def fit_contract(data: Path) -> Contract:
    """Train the contract's model on the Pima CSV at `data`; keep its test rows."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    table = np.loadtxt(data, delimiter=",", skiprows=1)
    if table.ndim != 2 or table.shape[1] != len(FIELDS) + 1:
        raise RuntimeError(
            f"{data} must have {len(FIELDS)} feature columns and the label last"
            " (the Pima CSV); pass the right file with --data"
        )
    x_train, x_test, y_train, _ = train_test_split(
        table[:, :-1], table[:, -1], test_size=0.3, random_state=1
    )
    model = LogisticRegression(solver="lbfgs", max_iter=1000).fit(x_train, y_train)
    # Whole-number columns go out as JSON integers, as clients send them.
    test_rows: list[Row] = [
        {
            name: int(value) if decimals == 0 else float(value)
            for name, value, (_, _, _, decimals) in zip(FIELDS, row, COLUMNS, strict=True)
        }
        for row in x_test.tolist()
    ]
    return Contract(model, test_rows)
