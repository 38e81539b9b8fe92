"""A real table end to end: `modelapi train` on it as it is, then its own rows scored everywhere.

The generated customers table (`tests.tables`) has empty cells, a 5-level plan, a True/False
column, a signup date, a customer id, a column named `Support Calls (last 90d)!`, a constant,
free-text notes and a yes/no target. It trains with every --model, and the trained model
scores that same file with `modelapi predict`, over HTTP (JSON with null, true and extra
fields; the CSV with its empty cells and True), through the Python client and on Lambda,
answering as scikit-learn does on the same rows. Nothing served lists an id or a note.

Two recipes: the table as it is (imputing pipelines), and --drop-missing (complete rows;
the others are then refused with `is missing` and skipped with --on-error skip).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelapi import Client
from modelapi.aws_lambda import LambdaHandler
from modelapi.bundle import Bundle, read_bundle
from modelapi.config import Settings
from modelapi.formats.skops import read_estimator
from modelapi.predictor import Predictor
from modelapi.training.roles import convert_column
from tests.aws_lambda.events import changed_event
from tests.conftest import REPO_ROOT
from tests.servers import serve_model
from tests.tables import customers, write_customers

CLASSIFIERS = ("logistic_regression", "random_forest", "gradient_boosting")
REGRESSORS = ("linear_regression", "ridge")
REGRESSION_TARGET = "Monthly Charges"
# Complete rows only: the models whose served formats are in place today.
COMPLETE_ROWS = ("logistic_regression", "gradient_boosting", "ridge")
FRAME = customers()
PRIVATE = [*FRAME["customer_id"], *FRAME["notes"]]


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m modelapi ARGS` with a clean MODELAPI_* environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELAPI_")}
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    return subprocess.run(
        [sys.executable, "-m", "modelapi", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


@dataclass(frozen=True)
class Trained:
    """A model trained by the CLI on the customers file, and where things are."""

    model: str
    complete_rows: bool
    folder: Path
    csv: Path
    bundle: Bundle
    stdout: str

    @property
    def predictor(self) -> Predictor:
        """The served model, as a server loads it."""
        return Predictor(read_bundle(self.folder, serving_only=True))

    def expected(self, frame: pd.DataFrame) -> list[tuple[object, list[float] | None]]:
        """scikit-learn's answers (model.skops) for the rows of `frame`, as the CSV has them."""
        estimator = read_estimator(self.bundle)
        manifest = self.bundle.manifest
        X = pd.DataFrame(
            {f.column: convert_column(frame[f.column], f.type, "test") for f in manifest.features}
        )
        if manifest.classes is None:
            return [(float(v), None) for v in estimator.predict(X)]
        proba = estimator.predict_proba(X)
        labels = [str(c) for c in estimator.classes_]
        return [(labels[int(np.argmax(p))], [float(x) for x in p]) for p in proba]


def _train(model: str, complete_rows: bool, root: Path) -> Trained:
    csv_path = write_customers(root / "customers.csv")
    target = REGRESSION_TARGET if model in REGRESSORS else "churn"
    extra = ["--drop-missing"] if complete_rows else []
    store = root / "models"
    result = run(
        "train",
        csv_path,
        "--target",
        target,
        "--model",
        model,
        "--name",
        "customers",
        "--store",
        store,
        *extra,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    folder = store / "customers" / "1"
    return Trained(model, complete_rows, folder, csv_path, read_bundle(folder), result.stdout)


RECIPES = [
    *(pytest.param((m, False), id=f"{m}-as-is") for m in CLASSIFIERS),
    *(pytest.param((m, False), id=f"{m}-as-is") for m in REGRESSORS),
    *(pytest.param((m, True), id=f"{m}-complete-rows") for m in COMPLETE_ROWS),
]


@pytest.fixture(scope="module", params=RECIPES)
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    model, complete_rows = request.param
    return _train(model, complete_rows, tmp_path_factory.mktemp(model))


def _raw() -> pd.DataFrame:
    """The file as text cells, empty where a cell is empty."""
    return pd.read_csv(io.StringIO(FRAME.to_csv(index=False)), dtype=str, keep_default_na=False)


def _complete(trained: Trained, raw: pd.DataFrame) -> pd.Series:
    """Which rows the model answers: those with every feature that does not accept a missing
    value (all of them unless trained on complete rows; an encoder that ignores unknown
    categories answers a missing one too, and the check then marks it accepted)."""
    features = trained.bundle.manifest.features
    columns = [f.column for f in features if not f.accepts_missing]
    if not trained.complete_rows:
        assert not columns
        return pd.Series(True, index=raw.index)
    return (raw[columns] != "").all(axis=1)


def _same(answers: list[tuple[object, list[float] | None]], expected: list[object]) -> None:
    assert len(answers) == len(expected)
    for (label, probabilities), (want_label, want) in zip(answers, expected, strict=True):  # type: ignore[misc]
        if probabilities is None:
            assert math.isclose(float(label), want_label, rel_tol=1e-5, abs_tol=1e-5)  # type: ignore[arg-type]
        else:
            assert label == want_label
            assert np.allclose(probabilities, want, rtol=0, atol=1e-5)


def _answers_of(
    trained: Trained, body: list[dict[str, object]]
) -> list[tuple[object, list[float] | None]]:
    manifest = trained.bundle.manifest
    key = manifest.target.key
    if manifest.classes is None:
        return [(a[key], None) for a in body]
    return [(a[key], [a["probabilities"][str(c)] for c in manifest.classes]) for a in body]  # type: ignore[index]


def test_train_prints_roles_pipeline_and_report(trained: Trained) -> None:
    out = trained.stdout
    assert "customer_id                identifier" in out
    assert "signup_date                datetime" in out
    assert "Autopay                    boolean" in out
    assert "warning: not used as features: customer_id (identifier" in out
    assert "pipeline: numeric (" in out
    assert f"report: {trained.folder / 'report.html'}" in out
    keys = [f.key for f in trained.bundle.manifest.features]
    assert "support_calls_last_90d" in keys
    assert "customer_id" not in keys
    for value in PRIVATE[:100]:
        assert value not in out


def test_modelapi_predict_scores_the_same_file(trained: Trained, tmp_path: Path) -> None:
    raw = _raw()
    complete = _complete(trained, raw)
    out = tmp_path / "scored.csv"
    result = run(
        "predict", trained.folder, trained.csv, "-o", out, "--on-error", "skip", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    manifest = trained.bundle.manifest
    key = manifest.target.key
    # The target column is kept; the answer steps aside when it has the same name.
    answer = f"predicted_{key}" if key in raw.columns else key
    assert list(scored.columns[: len(raw.columns)]) == list(raw.columns)
    assert scored.columns[len(raw.columns)] == answer
    assert list(scored["customer_id"]) == list(raw.loc[complete, "customer_id"])
    expected = trained.expected(FRAME[complete.to_numpy()])
    if manifest.classes is None:
        answers = [(float(v), None) for v in scored[answer]]
    else:
        names = [f"probability_{c}" for c in manifest.classes]
        answers = [
            (label, [float(p) for p in probs])
            for label, *probs in scored[[answer, *names]].itertuples(index=False)
        ]
    _same(answers, expected)  # type: ignore[arg-type]
    errors_text = (tmp_path / "scored.csv.errors.csv").read_text()
    errors = list(csv.DictReader(io.StringIO(errors_text)))
    # One row per refused field, in file order; the header is line 1.
    lines = [int(e["line"]) for e in errors]
    assert lines == sorted(lines)
    assert sorted(set(lines)) == [int(i) + 2 for i in raw.index[~complete]]
    assert all(e["reason"] == "is missing" for e in errors)
    assert f"skipped {int((~complete).sum())} invalid lines" in result.stderr
    for value in PRIVATE[:100]:
        assert value not in errors_text


def _json_rows(raw: pd.DataFrame) -> list[dict[str, object]]:
    """The file's rows as a JSON client sends them: null, true/false, numbers, extra fields."""
    rows = []
    for record in raw.to_dict("records"):
        row: dict[str, object] = {}
        for column, text in record.items():
            if text == "":
                row[column] = None
            elif text in ("True", "False"):
                row[column] = text == "True"
            else:
                try:
                    row[column] = float(text) if "." in text else int(text)
                except ValueError:
                    row[column] = text
        rows.append(row)
    return rows


@pytest.fixture
def served(trained: Trained) -> Iterator[str]:
    with serve_model(trained.predictor, Settings(store="/nonexistent", reload_interval_s=0)) as url:
        yield url


def test_http_json_csv_and_the_client_answer_as_scikit_learn(trained: Trained, served: str) -> None:
    import httpx

    raw = _raw()
    complete = _complete(trained, raw)
    rows = [row for row, ok in zip(_json_rows(raw), complete, strict=True) if ok]
    expected = trained.expected(FRAME[complete.to_numpy()])
    response = httpx.post(f"{served}/predict", json=rows, timeout=60)
    assert response.status_code == 200, response.text[:300]
    # customer_id, notes, country (and churn beside a regressor) are not features: ignored.
    ignored = response.headers["x-ignored-fields"]
    assert "customer_id" in ignored
    assert "notes" in ignored
    _same(_answers_of(trained, response.json()), expected)
    with Client(served) as client:
        assert client.predict(rows) == response.json()
        lines = [trained.csv.read_text().splitlines()[0]]
        lines += [
            line
            for line, ok in zip(trained.csv.read_text().splitlines()[1:], complete, strict=True)
            if ok
        ]
        answer = client.predict_csv(("\n".join(lines) + "\n").encode())
    table = list(csv.reader(io.StringIO(answer.decode())))
    key = trained.bundle.manifest.target.key
    assert table[0][0] == key
    assert [r[0] for r in table[1:]] == [str(a[key]) for a in response.json()]


def test_a_missing_value_is_answered_or_named(trained: Trained, served: str) -> None:
    import httpx

    row = _json_rows(_raw())[0]
    features = {f.column: f for f in trained.bundle.manifest.features}
    row["Tenure Months"] = None
    del row["Autopay"]
    response = httpx.post(f"{served}/predict", json=row, timeout=30)
    if trained.complete_rows:
        assert response.status_code == 422
        details = {d["field"]: d["reason"] for d in response.json()["details"]}
        assert details == {
            features["Tenure Months"].key: "is missing",
            features["Autopay"].key: "is missing",
        }
    else:
        assert response.status_code == 200, response.text


def test_lambda_answers_json_and_csv_like_the_server(
    trained: Trained, served: str, tmp_path: Path
) -> None:
    import httpx

    raw = _raw()
    complete = _complete(trained, raw)
    rows = [row for row, ok in zip(_json_rows(raw), complete, strict=True) if ok][:50]
    handler = LambdaHandler(Settings(store=str(tmp_path / "empty")), embedded_model=trained.folder)
    event = changed_event("function_url_predict.json", body=json.dumps(rows), isBase64Encoded=False)
    answer = handler.handle(event)
    assert isinstance(answer, dict)
    assert answer["statusCode"] == 200, answer["body"][:300]
    assert (
        json.loads(answer["body"]) == httpx.post(f"{served}/predict", json=rows, timeout=30).json()
    )
    assert "customer_id" in answer["headers"]["x-ignored-fields"]


def test_nothing_served_lists_an_id_or_a_note(trained: Trained, served: str) -> None:
    import httpx

    bodies = [
        httpx.get(f"{served}{path}", timeout=30).content
        for path in ("/", "/model", "/openapi.json")
    ]
    row = _json_rows(_raw())[0] | {"plan": "platinum"}
    bodies.append(httpx.post(f"{served}/predict", json=row, timeout=30).content)
    bodies.append(trained.bundle.files["report.html"])
    for body in bodies:
        for value in PRIVATE:
            assert value.encode() not in body


@pytest.fixture(scope="module")
def tutorial(pima_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tutorial's pima-indians-diabetes.data.csv: the Pima rows without a header line."""
    folder = tmp_path_factory.mktemp("tutorial")
    path = folder / "pima-indians-diabetes.data.csv"
    path.write_text("".join(pima_csv.read_text().splitlines(keepends=True)[1:]))
    return path


def test_a_headerless_file_is_refused_and_trains_with_columns(
    tutorial: Path, pima_csv: Path, tmp_path: Path
) -> None:
    refused = run("train", tutorial, "--store", tmp_path / "models", cwd=tmp_path)
    assert refused.returncode != 0
    [line] = [x for x in refused.stderr.splitlines() if not x.startswith("warning: ")]
    assert "no header line" in line
    assert "--columns a,b,c" in line
    assert "f_148" not in refused.stdout + refused.stderr
    columns = pima_csv.read_text().splitlines()[0]
    trained = run(
        "train",
        tutorial,
        "--columns",
        columns,
        "--name",
        "tutorial",
        "--store",
        tmp_path / "models",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    assert "accuracy: 0.7835497835497836" in trained.stdout.splitlines()
    folder = tmp_path / "models" / "tutorial" / "1"
    refused = run("predict", folder, tutorial, cwd=tmp_path)
    assert refused.returncode != 0
    assert "--no-header" in refused.stderr
    scored = run("predict", folder, tutorial, "--no-header", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    table = list(csv.reader(io.StringIO(scored.stdout)))
    names = columns.split(",")
    assert table[0] == [*names[:8], "column_9", "outcome", "probability_0", "probability_1"]
    assert len(table) == 1 + len(tutorial.read_text().splitlines())
    assert table[1][:8] == ["6", "148", "72", "35", "0", "33.6", "0.627", "50"]
    assert table[1][9] == "1"  # the contract row predicts 1
