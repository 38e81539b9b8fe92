"""Generated training tables with the traits of real data (never real data, never committed).

`customers()` is the table a new user brings: 2,000 customers with empty cells, a 5-level
plan, a True/False autopay column, a signup date, a customer id, a column named
`Support Calls (last 90d)!`, a constant column, free-text notes and a yes/no churn target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["PLANS", "customers", "write_customers"]

PLANS = ("basic", "standard", "plus", "premium", "enterprise")
_WORDS = ("called", "about", "billing", "happy", "slow", "router", "asked", "price", "again")


def customers(n_rows: int = 2000, seed: int = 7) -> pd.DataFrame:
    """The customers table, built from a seed (the same frame on every machine)."""
    rng = np.random.default_rng(seed)
    plan_index = rng.choice(len(PLANS), n_rows, p=[0.35, 0.25, 0.2, 0.15, 0.05])
    autopay = rng.random(n_rows) < 0.55
    tenure = rng.integers(1, 72, n_rows)
    charges = np.round(rng.normal(40 + 15 * plan_index, 8), 2)
    calls = rng.poisson(1.5 + 1.5 * (~autopay), n_rows)
    start = np.datetime64("2021-01-01")
    signup = start + rng.integers(0, 4 * 365, n_rows).astype("timedelta64[D]")
    z = -1.2 + 0.45 * calls - 0.04 * tenure + 0.6 * (plan_index == 0) - 0.7 * autopay
    churn = rng.random(n_rows) < 1 / (1 + np.exp(-z))
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{n:06d}" for n in rng.permutation(n_rows) + 100_000],
            "plan": [PLANS[i] for i in plan_index],
            "Autopay": pd.Series(autopay, dtype=object),
            "signup_date": pd.Series(signup).dt.strftime("%Y-%m-%d"),
            "Tenure Months": tenure,
            "Monthly Charges": charges,
            "Support Calls (last 90d)!": pd.array(calls, dtype="Int64"),
            "country": "NZ",
            "notes": [
                " ".join(rng.choice(_WORDS, rng.integers(4, 9))) + f" #{i}" for i in range(n_rows)
            ],
            "churn": np.where(churn, "yes", "no"),
        }
    )
    # Empty cells, as exported spreadsheets have them: a few in most feature columns.
    for column, share in (
        ("plan", 0.03),
        ("Autopay", 0.04),
        ("Monthly Charges", 0.05),
        ("Support Calls (last 90d)!", 0.04),
        ("signup_date", 0.02),
    ):
        frame.loc[rng.random(n_rows) < share, column] = None
    return frame


def write_customers(path: Path, **options: int) -> Path:
    """Write the customers table as a CSV (empty cells, True/False, ISO dates); return path."""
    customers(**options).to_csv(path, index=False)
    return path
