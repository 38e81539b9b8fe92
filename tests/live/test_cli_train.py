"""`modelapi train` and `modelapi import` as a user runs them: real subprocesses, real stores."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from modelapi.bundle import read_bundle
from modelapi.predictor import Predictor
from modelapi.store import open_store

SAMPLE_ROW: list[float | str] = [6, 148, 72, 35, 0, 33.6, 0.627, 50]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m modelapi ARGS` and capture its output."""
    environment = dict(os.environ)
    environment.pop("MODELAPI_STORE", None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "modelapi", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
        env=environment,
        cwd=cwd,
    )


def test_train_pima_prints_summary_contract_accuracy_and_version(
    pima_csv: Path, tmp_path: Path
) -> None:
    store = tmp_path / "models"
    result = run("train", str(pima_csv), "--name", "diabetes", "--store", str(store))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "accuracy: 0.7835497835497836" in lines
    assert "stored: diabetes:1 in " + str(store) in lines
    # The classic pipeline: the raw numbers, then the notebook's estimator.
    assert (
        "pipeline: numeric (8): passthrough (unchanged); model: LogisticRegression(max_iter=1000)"
        in lines
    )
    assert f"report: {store}/diabetes/1/report.html" in lines
    assert (store / "diabetes" / "1" / "report.html").is_file()
    summary_at = next(i for i, line in enumerate(lines) if line.startswith("class balance"))
    assert summary_at < lines.index("accuracy: 0.7835497835497836")
    assert "Glucose" in result.stdout
    assert "Traceback" not in result.stderr
    bundle = read_bundle(store / "diabetes" / "1")
    [(label, _)] = Predictor(bundle).predict([SAMPLE_ROW])
    assert label == 1


def test_store_comes_from_modelapi_store_and_defaults_to_models(
    pima_csv: Path, tmp_path: Path
) -> None:
    env_store = tmp_path / "from-env"
    result = run(
        "train",
        str(pima_csv),
        "--model",
        "gradient_boosting",
        env={"MODELAPI_STORE": str(env_store)},
    )
    assert result.returncode == 0, result.stderr
    manifest = open_store(str(env_store)).read_manifest("pima", 1)
    assert (manifest.serving, manifest.estimator) == ("pipeline.json", "gradient_boosting")
    # The check's rows as the manifest records them: held-out, then generated, by kind.
    check = manifest.metrics["format_check"]
    assert isinstance(check, dict)
    generated = check["generated_rows"]
    assert generated["threshold"] > 0
    assert generated["out of range"] > 0
    kinds = ", ".join(f"{n:,} {kind}" for kind, n in generated.items())
    said = (
        f"serving: pipeline.json (matches scikit-learn on {check['rows']} held-out rows and"
        f" {sum(generated.values()):,} generated rows ({kinds}), largest difference "
    )
    assert [line for line in result.stdout.splitlines() if line.startswith(said)]
    assert "[default: ./models]" in " ".join(run("train", "--help").stdout.split())


def test_train_into_an_s3_store(pima_csv: Path, s3_store_uri: str, aws_env: str) -> None:
    result = run("train", str(pima_csv), "--name", "diabetes", "--store", s3_store_uri)
    assert result.returncode == 0, result.stderr
    assert "accuracy: 0.7835497835497836" in result.stdout.splitlines()
    assert f"stored: diabetes:1 in {s3_store_uri}" in result.stdout.splitlines()
    bundle = open_store(s3_store_uri).read("diabetes", 1)
    assert set(bundle.files) == {"linear.json", "model.skops", "report.html"}


def test_import_the_classic_pickle(pima_csv: Path, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    array = pd.read_csv(pima_csv).values
    X_train, _, Y_train, _ = train_test_split(
        array[:, 0:8], array[:, 8], test_size=0.3, random_state=1
    )
    model = LogisticRegression(solver="lbfgs", max_iter=1000).fit(X_train, Y_train)
    path = tmp_path / "finalized_model.pkl"
    path.write_bytes(pickle.dumps(model))
    store = tmp_path / "models"
    refused = run("import", str(path), "--data", str(pima_csv), "--store", str(store))
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [refused.stderr.strip()]
    assert refused.stderr.startswith("error: ")
    assert "--trust-pickle" in refused.stderr
    assert not store.exists()
    result = run(
        "import", str(path), "--trust-pickle", "--data", str(pima_csv), "--store", str(store)
    )
    assert result.returncode == 0, result.stderr
    assert "unpickling runs any code" in result.stderr
    assert "accuracy: 0.7835497835497836" in result.stdout.splitlines()
    assert "stored: finalized_model:1 in " + str(store) in result.stdout.splitlines()


def _text(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# (arguments, given a tmp folder and the Pima path; words the error line must hold)
ERROR_CASES = {
    "missing file": (lambda t, p: ["train", str(t / "absent.csv")], "no such file"),
    "empty file": (lambda t, p: ["train", _text(t, "e.csv", "")], "empty"),
    "unparsable": (lambda t, p: ["train", _text(t, "u.csv", 'a,b\n1,2\n3,4,5,6\n"x')], "readable"),
    "target absent": (lambda t, p: ["train", str(p), "--target", "Nope"], "no target column"),
    "text in numbers": (
        lambda t, p: ["train", _text(t, "n.csv", "a,b\n1,0\nsecret,1\n3,0\n4,1\n")],
        "column a is numeric",
    ),
    "missing target": (
        lambda t, p: ["train", _text(t, "m.csv", "a,b\n1,\n2,\n3,\n")],
        "no row has a value in the target column b",
    ),
    "single class": (
        lambda t, p: ["train", _text(t, "s.csv", "a,b\n1,0\n2,0\n")],
        "single class",
    ),
    "no header": (
        lambda t, p: ["train", _text(t, "h.csv", "6,148,72,1\n1,85,66,0\n")],
        "--columns a,b,c",
    ),
    "bad feature type": (
        lambda t, p: ["train", str(p), "--feature", "Age:years"],
        "COLUMN:TYPE",
    ),
    "unknown ignored column": (
        lambda t, p: ["train", str(p), "--ignore", "Weight"],
        "no column Weight",
    ),
    "model for another task": (
        lambda t, p: ["train", str(p), "--model", "ridge"],
        "does not do classification",
    ),
    "bad name": (lambda t, p: ["train", str(p), "--name", "../x"], "model name"),
    "bad store": (lambda t, p: ["train", str(p), "--store", "ftp://host/x"], "not supported"),
    "pickle without trust": (
        lambda t, p: ["import", _text(t, "x.pkl", "anything")],
        "--trust-pickle",
    ),
    "pickle missing": (
        lambda t, p: ["import", str(t / "absent.pkl"), "--trust-pickle"],
        "no such file",
    ),
    "pickle without feature names": (
        lambda t, p: ["import", _unnamed_model(t), "--trust-pickle"],
        "--data CSV",
    ),
}


def _unnamed_model(folder: Path) -> str:
    from sklearn.linear_model import LinearRegression

    path = folder / "unnamed.pkl"
    path.write_bytes(pickle.dumps(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])))
    return str(path)


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_each_error_is_one_line_without_traceback(
    case: str, tmp_path: Path, pima_csv: Path
) -> None:
    make_args, words = ERROR_CASES[case]
    args = make_args(tmp_path, pima_csv)
    result = (
        run(*args, "--store", str(tmp_path / "models")) if "--store" not in args else run(*args)
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert words in lines[0]
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr
    assert not (tmp_path / "models").exists()


def test_a_fit_that_does_not_converge_is_refitted_scaled_and_says_why(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    data = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(data, index=False)
    result = run("train", str(data), "--store", str(tmp_path / "models"))
    assert result.returncode == 0, result.stderr
    # scikit-learn's whole warning, its advice included, on one line; then what was done.
    warning = next(line for line in result.stderr.splitlines() if "lbfgs failed" in line)
    assert "Increase the number of iterations" in warning
    assert "scale the data" in warning
    assert "fitted again with them scaled (StandardScaler)" in result.stderr
    assert "pipeline: numeric (30): StandardScaler(); model: LogisticRegression" in result.stdout
    raw = run("train", str(data), "--scale", "never", "--store", str(tmp_path / "models"))
    assert raw.returncode == 0, raw.stderr
    assert "pipeline: numeric (30): passthrough (unchanged)" in raw.stdout
    assert "fitted again" not in raw.stderr


def test_ignore_and_feature_override_the_roles(pima_csv: Path, tmp_path: Path) -> None:
    result = run(
        "train",
        str(pima_csv),
        "--ignore",
        "Insulin",
        "--feature",
        "pregnancies:category",
        "--store",
        str(tmp_path / "models"),
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"\nInsulin +ignored .* dropped: --ignore\n", result.stdout)
    assert re.search(r"\nPregnancies +category +768 +0 +17 categories\n", result.stdout)
    features = read_bundle(tmp_path / "models" / "pima" / "1").manifest.features
    assert [f.key for f in features][:2] == ["pregnancies", "glucose"]
    assert "insulin" not in [f.key for f in features]
    assert features[0].type == "category"
