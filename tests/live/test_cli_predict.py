"""`modelapi predict` through a subprocess: in process, and against uvicorn on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelapi.config import Settings
from modelapi.predictor import Predictor
from tests.conftest import REPO_ROOT
from tests.servers import serve_model

API_KEY = "batch-key-for-tests"
FEATURE_HEADER = (
    "Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age"
)


@pytest.fixture(scope="module")
def server_url(
    pima_predictor: Predictor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The Pima model behind an API key, with a body limit small enough to split requests."""
    settings = Settings(
        store=str(tmp_path_factory.mktemp("models")),
        reload_interval_s=0,
        api_key=API_KEY,
        max_body_bytes=8192,
    )
    with serve_model(pima_predictor, settings) as url:
        yield url


def run_cli(
    *args: str | Path, cwd: Path, api_key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m modelapi predict ARGS` with a clean MODELAPI_* environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELAPI_")}
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    if api_key is not None:
        env["MODELAPI_API_KEY"] = api_key
    return subprocess.run(
        [sys.executable, "-m", "modelapi", "predict", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_scored(output: str, source: Path, predictor: Predictor) -> None:
    """Input columns unchanged; prediction and probabilities as the Predictor computes them."""
    rows = read_csv(source.read_text())
    out = read_csv(output)
    assert out[0] == [*rows[0], "outcome", "probability_0", "probability_1"]
    assert [r[: len(rows[0])] for r in out] == rows
    features = [[float(v) for v in r[:8]] for r in rows[1:]]
    for line, (label, probs) in zip(out[1:], predictor.predict(features), strict=True):
        assert line[-3] == str(label)
        assert [float(p) for p in line[-2:]] == pytest.approx(list(probs or ()), abs=1e-12)


def feature_file(pima_csv: Path, path: Path, *, replace: dict[int, str] | None = None) -> Path:
    """The Pima rows without the Outcome column; `replace` swaps whole file lines (1-based)."""
    lines = [",".join(r[:8]) for r in read_csv(pima_csv.read_text())]
    for number, text in (replace or {}).items():
        lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return path


def test_in_process_output_matches_the_predictor(
    pima_csv: Path, pima_predictor: Predictor, tmp_path: Path
) -> None:
    result = run_cli("diabetes", pima_csv, "-o", "scored.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_scored((tmp_path / "scored.csv").read_text(), pima_csv, pima_predictor)
    assert result.stderr.splitlines()[-1].startswith(
        "scored 768 rows with diabetes:1 (built in: ./models has no model diabetes) in "
    )
    assert result.stdout == ""


def test_a_model_the_store_holds_is_named_without_a_note(
    pima_csv: Path, pima_predictor: Predictor, tmp_path: Path
) -> None:
    builtin = REPO_ROOT / "src/modelapi/models/diabetes"
    shutil.copytree(builtin, tmp_path / "models/diabetes")
    result = run_cli("diabetes", pima_csv, "-o", "scored.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_scored((tmp_path / "scored.csv").read_text(), pima_csv, pima_predictor)
    assert result.stderr.splitlines()[-1].startswith("scored 768 rows with diabetes:1 in ")


def test_chunk_boundaries_workers_and_stdout_change_nothing(pima_csv: Path, tmp_path: Path) -> None:
    # A quoted first row sends the first chunk down the record path: its lines are written
    # (to stdout's buffer) before the workers are forked, and must appear once.
    rows = read_csv(pima_csv.read_text())
    text = '"' + '","'.join(rows[1]) + '"\n'
    source = tmp_path / "mixed.csv"
    source.write_text(
        ",".join(rows[0]) + "\n" + text + "".join(",".join(r) + "\n" for r in rows[2:])
    )
    whole = run_cli("diabetes", source, "--workers", "1", "-o", "whole.csv", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    expected = (tmp_path / "whole.csv").read_text()
    for workers in ("1", "2", "3"):
        chunked = run_cli(
            "diabetes", source, "--chunk-rows", "7", "--workers", workers, "-o", "-", cwd=tmp_path
        )
        assert chunked.returncode == 0, chunked.stderr
        assert chunked.stdout == expected


def test_a_bundle_folder_and_the_record_path(
    pima_csv: Path, pima_predictor: Predictor, tmp_path: Path
) -> None:
    # Quoted cells and CRLF line ends are read by the csv module, not the numpy path.
    rows = read_csv(pima_csv.read_text())[:60]
    text = "\r\n".join(",".join(f'"{v}"' for v in r) for r in rows) + "\r\n"
    source = tmp_path / "quoted.csv"
    source.write_bytes(text.encode())
    folder = REPO_ROOT / "src/modelapi/models/diabetes/1"
    result = run_cli(folder, source, "--chunk-rows", "16", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(",".join(r) for r in rows) + "\n")
    assert_scored(result.stdout, plain, pima_predictor)


def test_against_a_server_as_in_process(
    server_url: str, pima_csv: Path, pima_predictor: Predictor, tmp_path: Path
) -> None:
    remote = run_cli(server_url, pima_csv, "--chunk-rows", "300", cwd=tmp_path, api_key=API_KEY)
    assert remote.returncode == 0, remote.stderr
    assert_scored(remote.stdout, pima_csv, pima_predictor)
    assert "scored 768 rows with diabetes:1" in remote.stderr
    # A header of exactly the features goes out block by block as it is.
    features = feature_file(pima_csv, tmp_path / "features.csv")
    flag = ["--api-key", API_KEY]
    sent = run_cli(server_url, features, *flag, "-o", "out.csv", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert_scored((tmp_path / "out.csv").read_text(), features, pima_predictor)


def test_a_server_without_the_key_refuses(server_url: str, pima_csv: Path, tmp_path: Path) -> None:
    result = run_cli(server_url, pima_csv, "-o", "out.csv", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: send the API key")
    assert not (tmp_path / "out.csv").exists()


BAD_FILES = {
    "bad value": (
        {500: "6,abc,72,35,0,33.6,0.627,50.5"},
        "error: line 500, glucose: must be a number; line 500, age: must be a whole number",
    ),
    "missing column": (
        {
            1: "Pregnancies,BloodPressure,SkinThickness,Insulin,BMI,"
            "DiabetesPedigreeFunction,Age,Outcome"
        },
        "error: header: has no column Glucose (glucose)",
    ),
    "malformed": ({3: "1,2,3"}, "error: line 3: has 3 values for 8 columns"),
    "not utf-8": ({700: "6,148,72,35,0,33.6,0.627,\udcff"}, "error: line 700: is not UTF-8 text"),
}


@pytest.mark.parametrize("where", ["in process", "server"])
@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_input_is_one_line_naming_line_and_field(
    case: str, where: str, server_url: str, pima_csv: Path, tmp_path: Path
) -> None:
    replace, message = BAD_FILES[case]
    source = feature_file(pima_csv, tmp_path / "input.csv")
    lines = source.read_bytes().split(b"\n")
    for number, text in replace.items():
        lines[number - 1] = text.encode("utf-8", "surrogateescape")
    source.write_bytes(b"\n".join(lines))
    model = "diabetes" if where == "in process" else server_url
    result = run_cli(model, source, "-o", "out.csv", cwd=tmp_path, api_key=API_KEY)
    assert (result.returncode, result.stderr) == (1, message + "\n")
    assert not (tmp_path / "out.csv").exists()
    assert list(tmp_path.iterdir()) == [source]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "error: missing.csv: does not exist"),
        (b"", "error: input: is empty: the first line must be a header naming the columns"),
    ],
)
def test_missing_and_empty_files(content: bytes | None, message: str, tmp_path: Path) -> None:
    if content is not None:
        (tmp_path / "missing.csv").write_bytes(content)
    result = run_cli("diabetes", "missing.csv", cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (1, message + "\n", "")


def test_a_header_alone_scores_no_rows(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text(FEATURE_HEADER + "\n")
    result = run_cli("diabetes", "header.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == FEATURE_HEADER + ",outcome,probability_0,probability_1\n"


def test_unknown_models_and_unreachable_servers(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(FEATURE_HEADER + "\n")
    unknown = run_cli("nosuchmodel", "in.csv", "--store", "models", cwd=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: ")
    assert "nosuchmodel" in unknown.stderr
    assert len(unknown.stderr.splitlines()) == 1
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    down = run_cli(url, "in.csv", cwd=tmp_path)
    assert (down.returncode, down.stderr) == (
        1,
        f"error: {url}: connection refused; is the server running on this host and port?\n",
    )
