"""One CSV answer: the server's `text/csv` answer and `modelapi predict` write the same bytes.

For binary and multiclass linear models and a tree ensemble, on random rows, through both of
`modelapi predict`'s paths (numpy's block path and the record path without numpy).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelapi
from modelapi.config import Settings
from modelapi.predictor import Predictor
from tests.conftest import REPO_ROOT
from tests.servers import serve_model

N_ROWS = 4_000  # enough rows for 1-bit differences of exp to show (3-5 % of rows)
_WITHOUT_NUMPY = "import sys; sys.modules['numpy'] = None\n"


def _estimator(kind: str) -> tuple[object, pd.DataFrame]:
    from sklearn.datasets import load_iris, load_wine
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "wine-forest":
        frame = load_wine(as_frame=True).frame
        estimator: object = RandomForestClassifier(n_estimators=20, random_state=0)
    else:
        frame = load_iris(as_frame=True).frame
        estimator = LogisticRegression(max_iter=1000)
    X, y = frame.drop(columns="target"), frame["target"]
    if kind == "iris-binary":
        y = (y == 2).astype(int)
    estimator.fit(X, y)  # type: ignore[attr-defined]
    return estimator, X


def _random_rows(X: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    low, high = X.min(), X.max()
    span = high - low
    return pd.DataFrame(
        {c: np.round(rng.uniform(low[c] - span[c], high[c] + span[c], N_ROWS), 2) for c in X}
    )


def _answer_cells(text: str, n_answer_columns: int) -> list[list[str]]:
    return [row[-n_answer_columns:] for row in csv.reader(io.StringIO(text, newline=""))]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["iris-binary", "iris-multiclass", "wine-forest"])
def test_the_server_and_modelapi_predict_write_the_same_csv(kind: str, tmp_path: Path) -> None:
    estimator, X = _estimator(kind)
    result = modelapi.save(estimator, X, name="m", store=str(tmp_path / "models"))
    rows = _random_rows(X, seed=len(kind))
    data = tmp_path / "rows.csv"
    rows.to_csv(data, index=False)
    with serve_model(Predictor(result.bundle), Settings(store=str(tmp_path / "models"))) as url:
        request = urllib.request.Request(
            f"{url}/predict", data.read_bytes(), {"content-type": "text/csv"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            served = response.read().decode()
    n_answer = len(served.splitlines()[0].split(","))
    expected = _answer_cells(served, n_answer)
    assert len(expected) == N_ROWS + 1
    labels = [str(v) for v in estimator.predict(rows)]  # type: ignore[attr-defined]
    assert [row[0] for row in expected[1:]] == labels, "scikit-learn's own labels"
    assert len(set(labels)) > 1, "the rows reach more than one class"
    for prefix in ("", _WITHOUT_NUMPY):
        script = prefix + "from modelapi.cli import main; sys.exit(main(sys.argv[1:]))"
        out = tmp_path / "scored.csv"
        store = str(tmp_path / "models")
        args = ["predict", "m", str(data), "--store", store, "-o", str(out)]
        scored = subprocess.run(
            [sys.executable, "-c", "import sys\n" + script, *args],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=240,
            check=False,
        )
        assert scored.returncode == 0, scored.stderr
        assert _answer_cells(out.read_text(), n_answer) == expected, prefix or "with numpy"
