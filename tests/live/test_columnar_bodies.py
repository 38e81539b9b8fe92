"""MLflow bodies and /invocations on a real uvicorn socket, sent by curl and by a plain client.

The answers are compared with the array-of-objects answer of the same server and with
scikit-learn's predictions from the bundle's `model.skops`.
"""

from __future__ import annotations

import csv
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.predictor import Predictor
from tests.conftest import require_tool
from tests.servers import serve_model

N_ROWS = 300


@pytest.fixture(scope="module")
def base_url(pima_predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn on 127.0.0.1 serving the shipped model."""
    settings = Settings(store=str(tmp_path_factory.mktemp("store")))
    with serve_model(pima_predictor, settings) as url:
        yield url


@pytest.fixture(scope="module")
def pima_frame(pima_csv: Path) -> list[dict[str, str]]:
    with pima_csv.open() as handle:
        return list(csv.DictReader(handle))[:N_ROWS]


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, body, {"content-type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def test_dataframe_split_by_curl_is_scikit_learns_answer(
    base_url: str, builtin_bundle: Bundle, pima_frame: list[dict[str, str]], tmp_path: Path
) -> None:
    import pandas as pd

    from modelapi.formats.skops import read_estimator

    curl = require_tool("curl", "sends the body as the documentation shows")
    columns = [f.column for f in builtin_bundle.manifest.features]
    frame = pd.DataFrame([[float(row[c]) for c in columns] for row in pima_frame], columns=columns)
    body = tmp_path / "split.json"
    body.write_text(json.dumps({"dataframe_split": frame.to_dict(orient="split")}))
    # curl -d sends the form content type; /predict reads it as JSON.
    done = subprocess.run(
        [curl, "-sS", "--fail-with-body", f"{base_url}/predict", "-d", f"@{body}"],
        capture_output=True,
        check=True,
        timeout=30,
    )
    predictions = json.loads(done.stdout)["predictions"]
    estimator = read_estimator(builtin_bundle)
    assert [p["outcome"] for p in predictions] == estimator.predict(frame).tolist()  # type: ignore[attr-defined]
    expected = estimator.predict_proba(frame)[:, 1].tolist()  # type: ignore[attr-defined]
    got = [p["probabilities"]["1"] for p in predictions]
    assert got == pytest.approx(expected, abs=1e-12)


def test_invocations_answers_csv_lines_and_json_as_predict(
    base_url: str, pima_predictor: Predictor, pima_frame: list[dict[str, str]]
) -> None:
    columns = [f.column for f in pima_predictor.manifest.features]
    lines = "".join(",".join(row[c] for c in columns) + "\n" for row in pima_frame).encode()
    header = ",".join(columns).encode() + b"\n"
    status, _, with_header = _post(f"{base_url}/predict", header + lines, "text/csv")
    assert status == 200
    status, headers, answer = _post(f"{base_url}/invocations", lines, "text/csv")
    assert status == 200
    assert headers["content-type"] == "text/csv; charset=utf-8"
    assert answer == with_header.partition(b"\n")[2]
    assert len(answer.splitlines()) == N_ROWS

    rows = [{c: json.loads(row[c]) for c in columns} for row in pima_frame]
    _, _, objects = _post(f"{base_url}/predict", json.dumps(rows).encode(), "application/json")
    for body in (
        {"instances": rows},
        {"dataframe_records": rows},
        {"inputs": [[row[c] for c in columns] for row in rows]},
    ):
        status, _, answer = _post(
            f"{base_url}/invocations", json.dumps(body).encode(), "application/json"
        )
        assert status == 200
        assert answer == b'{"predictions":' + objects + b"}"


def test_a_bad_columnar_body_gets_a_named_error_over_the_socket(base_url: str) -> None:
    body = json.dumps({"dataframe_split": {"columns": ["Glucose"], "data": [[1, 2]]}}).encode()
    request = urllib.request.Request(
        f"{base_url}/predict", body, {"content-type": "application/json"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 422
    details = json.loads(raised.value.read())["details"]
    assert {"field": "dataframe_split.columns", "reason": "has no column Age (age)"} in details
