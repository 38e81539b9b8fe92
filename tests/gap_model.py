"""A model trained on a table with gaps: a HistGradientBoosting whose every feature accepts a
missing value, and rows for it with empty cells."""

from __future__ import annotations

from functools import lru_cache

from modelapi.predictor import Predictor

HEADER = "id,Visits,Spend (usd),Score"


@lru_cache(maxsize=2)
def gap_predictor(*, only_score: bool = False) -> Predictor:
    """The model, trained once per process (on the Score column alone, if asked)."""
    import numpy as np
    import pandas as pd

    from modelapi.training.data import load_dataset
    from modelapi.training.workflow import train

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "Visits": rng.integers(0, 20, 400).astype(float),
            "Spend (usd)": rng.normal(50, 20, 400).round(2),
            "Score": rng.normal(0, 1, 400).round(4),
        }
    )
    frame["Churned"] = (frame["Visits"] + frame["Score"] * 3 > 10).astype(int)
    for column in ("Visits", "Spend (usd)", "Score"):
        frame.loc[rng.random(400) < 0.15, column] = np.nan
    if only_score:
        frame = frame[["Score", "Churned"]]
    result = train(load_dataset(frame, target="Churned"), model="hist_gradient_boosting")
    assert result.manifest.serving == "pipeline.json"
    assert all(f.accepts_missing for f in result.manifest.features)
    return Predictor(result.bundle)


def gap_rows(n: int, seed: int = 8) -> list[str]:
    """`id,visits,spend,score` lines, a fifth of the cells empty, line 8 with every one."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        cells = [str(int(rng.integers(0, 20))), f"{rng.normal(50, 20):.2f}", f"{rng.normal():.4f}"]
        for j in range(3):
            if rng.random() < 0.2:
                cells[j] = ""
        rows.append(",".join([f"id{i}", *cells]))
    rows[7] = "id7,,,"
    return rows
