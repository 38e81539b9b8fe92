"""The bulk bodies, the labels read from their answers, the forest zip without its model."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from benchmarks.bulk import SHAPES, answer_labels, csv_lines_body, split_body
from benchmarks.contract import FIELDS, fit_contract, generated_rows, row_values
from benchmarks.csv_run import COLUMNS
from benchmarks.pipeline_serving import zip_without
from benchmarks.processes import Answer
from benchmarks.tests.test_peers import pima_csv

CSV_NAMES = [name for name, *_ in COLUMNS]


def test_dataframe_split_holds_the_csv_columns_and_each_row_in_their_order() -> None:
    rows = generated_rows(3)
    body = json.loads(split_body(rows))
    assert list(body) == ["dataframe_split"]
    assert body["dataframe_split"]["columns"] == CSV_NAMES
    assert body["dataframe_split"]["data"] == [[row[name] for name in FIELDS] for row in rows]
    assert CSV_NAMES[1] == "Glucose"
    assert FIELDS[1] == "glucose"


def test_csv_lines_have_no_header_and_one_line_per_row() -> None:
    rows = generated_rows(4)
    text = csv_lines_body(rows).decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert len(lines) == 4
    assert text.endswith("\n")
    assert lines[0] == [str(rows[0][name]) for name in FIELDS]
    assert not set(lines[0]) & set(CSV_NAMES)
    # Whole-number columns are written as integers, as a CSV export writes them.
    assert "." not in lines[0][0]


def test_the_shapes_go_where_each_is_taken() -> None:
    routes = {(s.name, s.path, s.content_type) for s in SHAPES}
    assert routes == {
        ("dataframe_split_predict", "/predict", "application/json"),
        ("dataframe_split_invocations", "/invocations", "application/json"),
        ("csv_invocations", "/invocations", "text/csv"),
    }


@pytest.mark.parametrize(
    ("body", "labels"),
    [
        (b'{"predictions": [{"outcome": 1, "probability_1": 0.9}, {"outcome": 0}]}', [1, 0]),
        (b'[{"outcome": 0}, {"outcome": 1}, {"outcome": 1}]', [0, 1, 1]),
        (b'{"predictions": [1, 0.0]}', [1, 0]),
        (b"outcome,probability_0,probability_1\n0,0.9,0.1\n1,0.2,0.8\n", [0, 1]),
        (b"probability_1,outcome\r\n0.8,1\r\n", [1]),
        (b"1\n0\n1\n", [1, 0, 1]),
    ],
)
def test_answer_labels_of_every_answer_form(body: bytes, labels: list[int]) -> None:
    assert answer_labels(Answer(200, body)) == labels


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"outcome": 1}', "must be a list"),
        (b'{"predictions": [2]}', "0 or 1"),
        (b'{"predictions": [true]}', "0 or 1"),
        (b'[{"label": 1}]', "0 or 1"),
        (b"outcome\nyes\n", "must be a number"),
    ],
)
def test_answer_labels_refuse_what_is_not_labels(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        answer_labels(Answer(200, body))


def test_zip_size_without_the_models_entry(tmp_path: Path) -> None:
    path = tmp_path / "lambda.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("modelapi/__init__.py", "x = 1\n" * 100)
        archive.writestr("model/pipeline.json", json.dumps({"trees": list(range(5000))}))
    with zipfile.ZipFile(path) as archive:
        (entry,) = [i for i in archive.infolist() if i.filename == "model/pipeline.json"]
    assert zip_without(path, "pipeline.json") == (path.stat().st_size, entry.compress_size)
    assert 0 < entry.compress_size < entry.file_size


def test_zip_without_refuses_a_zip_without_exactly_one_such_entry(tmp_path: Path) -> None:
    path = tmp_path / "lambda.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/pipeline.json", "{}")
        archive.writestr("b/pipeline.json", "{}")
    with pytest.raises(RuntimeError, match="2 entries"):
        zip_without(path, "pipeline.json")
    with pytest.raises(RuntimeError, match="0 entries"):
        zip_without(path, "model.onnx")


def test_decided_rows_are_the_generated_ones_clear_of_the_boundary() -> None:
    import numpy as np

    contract = fit_contract(pima_csv())
    pool = generated_rows(2_000)
    matrix = np.array([row_values(row) for row in pool])
    proba = contract.model.predict_proba(matrix)[:, 1]  # type: ignore[attr-defined]
    near = [row for row, p in zip(pool, proba, strict=True) if abs(p - 0.5) < 1e-2]
    assert near  # the seeded rows do come near the boundary
    rows = contract.decided_rows(1_000, margin=1e-2)
    assert len(rows) == 1_000
    assert not [row for row in rows if row in near]
    assert rows == [row for row in pool if row not in near][:1_000]
