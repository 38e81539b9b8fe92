"""Error answers are bounded: at most 100 details, then one that counts the rest.

A batch of 10,000 empty objects (30 KB) named 80,000 missing fields, a 4.3 MB answer. Now
every error body lists the first problems in order and says how many more there were.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from modelapi.service import MAX_ERROR_DETAILS
from tests.servers import HttpSend, ServeProcess, serve_process

N_ROWS = 10_000
N_FEATURES = 8
# A bounded error body: 100 details of at most ~150 bytes each.
MAX_ERROR_BODY_BYTES = 16 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """`modelapi serve` with the default limits."""
    with serve_process(tmp_path_factory.mktemp("serve-errors")) as process:
        yield process


def _bodies() -> list[tuple[str, str, bytes, int, str]]:
    """(path, content type, body, number of problems, first field) for many-problem bodies."""
    header = (
        b"Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age"
    )
    bad_csv = header + b"\n" + b"x,x,x,x,x,x,x,x\n" * N_ROWS
    tensors = [{"name": f"t{i}", "shape": [1], "datatype": "FP64", "data": [1]} for i in range(500)]
    return [
        (
            "/predict",
            "application/json",
            b"[" + b",".join([b"{}"] * N_ROWS) + b"]",
            N_ROWS * N_FEATURES,
            "[0].pregnancies",
        ),
        ("/predict", "text/csv", bad_csv, N_ROWS * N_FEATURES, "[0].pregnancies"),
        (
            "/v2/models/diabetes/infer",
            "application/json",
            msgspec.json.encode({"inputs": tensors}),
            500 + N_FEATURES,
            "inputs[0].name",
        ),
    ]


@pytest.mark.parametrize(("path", "content_type", "body", "n_problems", "first"), _bodies())
def test_an_error_lists_at_most_100_details_and_counts_the_rest(
    server: ServeProcess, path: str, content_type: str, body: bytes, n_problems: int, first: str
) -> None:
    with HttpSend(server.url) as send:
        status, _, answer = send("POST", path, {"content-type": content_type}, body)
    assert status == 422
    assert len(answer) < MAX_ERROR_BODY_BYTES, len(answer)
    details = msgspec.json.decode(answer)["details"]
    assert len(details) == MAX_ERROR_DETAILS + 1
    assert details[0]["field"] == first
    more = n_problems - MAX_ERROR_DETAILS
    assert details[-1] == {
        "field": "body",
        "reason": f"{more} more problems were not listed; fix these and send it again",
    }


def test_one_problem_more_than_the_cap_is_counted_in_the_singular(server: ServeProcess) -> None:
    # Each row lacks its age: one problem a row, one row more than the cap.
    row = dict.fromkeys(
        (
            "pregnancies",
            "glucose",
            "blood_pressure",
            "skin_thickness",
            "insulin",
            "bmi",
            "diabetes_pedigree_function",
        ),
        1,
    )
    body = msgspec.json.encode([row] * (MAX_ERROR_DETAILS + 1))
    with HttpSend(server.url) as send:
        status, _, answer = send("POST", "/predict", {}, body)
    assert status == 422
    details = msgspec.json.decode(answer)["details"]
    assert len(details) == MAX_ERROR_DETAILS + 1
    assert details[-1]["reason"].startswith("1 more problem was not listed")
