"""Bulk bodies over HTTP: the same 1,000 rows as MLflow's `dataframe_split` and as CSV lines.

Each shape is a body file and a content type that `lua/post.lua` POSTs as is, so the load
needs nothing but the shape:

- `{"dataframe_split": {"columns": [CSV column names], "data": [[...], ...]}}` on
  POST /predict and on POST /invocations;
- `text/csv` lines without a header on POST /invocations.

Before any load, one POST of each body must be answered with scikit-learn's labels. A shape
answered with a 4xx (a server without that route or body) is recorded with its status and not
loaded: its targets are then not measured. A 5xx, or other labels, fails the phase.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.contract import FIELDS, Row
from benchmarks.csv_run import COLUMNS
from benchmarks.processes import Answer, Server, post
from benchmarks.wrk import merged, run_rounds

__all__ = ["SHAPES", "Shape", "answer_labels", "csv_lines_body", "measure_bulk", "split_body"]

JSON, CSV = "application/json", "text/csv"


def split_body(rows: Sequence[Row]) -> bytes:
    """MLflow's `dataframe_split`: the CSV column names, then each row's values in that order."""
    split = {
        "columns": [column for column, *_ in COLUMNS],
        "data": [[row[name] for name in FIELDS] for row in rows],
    }
    return json.dumps({"dataframe_split": split}).encode()


def csv_lines_body(rows: Sequence[Row]) -> bytes:
    """One CSV line per row, values in the column order, and no header line."""
    return "".join(",".join(str(row[name]) for name in FIELDS) + "\n" for row in rows).encode()


@dataclass(frozen=True, slots=True)
class Shape:
    """One bulk body: its name in the figures, the path it goes to, its content type, its bytes."""

    name: str
    path: str
    content_type: str
    body: Callable[[Sequence[Row]], bytes]


SHAPES: tuple[Shape, ...] = (
    Shape("dataframe_split_predict", "/predict", JSON, split_body),
    Shape("dataframe_split_invocations", "/invocations", JSON, split_body),
    Shape("csv_invocations", "/invocations", CSV, csv_lines_body),
)


def answer_labels(answer: Answer) -> list[int]:
    """The labels of a bulk answer: MLflow's `{"predictions": [...]}`, a JSON list, or CSV.

    A prediction is an `{"outcome": n}` object or a bare label; a CSV answer's labels are its
    `outcome` column under a header line, or its first column without one. Raises ValueError
    for anything else.
    """
    text = answer.body.decode()
    if text.lstrip().startswith(("{", "[")):
        found = json.loads(text)
        if isinstance(found, dict):
            found = found.get("predictions")
        if not isinstance(found, list):
            raise ValueError('a JSON answer must be a list or {"predictions": [...]}')
        return [_label(item.get("outcome") if isinstance(item, dict) else item) for item in found]
    lines = [line for line in csv.reader(io.StringIO(text)) if line]
    if lines and "outcome" in lines[0]:
        column = lines[0].index("outcome")
        lines = lines[1:]
    else:
        column = 0
    return [_label(_number(line[column])) for line in lines]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"a CSV outcome must be a number, not {text[:20]!r}") from None


def _label(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in (0, 1):
        raise ValueError("a label must be 0 or 1")
    return int(value)


def measure_bulk(
    server: Server,
    rows: Sequence[Row],
    expected: Sequence[int],
    scratch: Path,
    *,
    rounds: int,
    warmup_s: float,
    duration_s: float,
    connections: int,
) -> dict[str, object]:
    """Check each shape's answer once, then interleaved wrk rounds of the accepted ones: rows/s.

    Raises RuntimeError for a 5xx or labels other than `expected` (scikit-learn's).
    """
    found: dict[str, object] = {}
    targets: dict[str, tuple[str, Path]] = {}
    for shape in SHAPES:
        path = scratch / f"bulk-{shape.name}.body"
        path.write_bytes(shape.body(rows))
        answer = post(server.port, shape.path, path.read_bytes(), shape.content_type)
        if 400 <= answer.status < 500:
            found[shape.name] = {"refused_with": answer.status}
            print(f"  {shape.name}: answered {answer.status}, not measured", flush=True)
            continue
        if answer.status != 200:
            raise RuntimeError(f"modelapi answered the {shape.name} body with {answer.status}")
        if answer_labels(answer) != list(expected):
            raise RuntimeError(
                f"modelapi's labels for the {shape.name} body are not scikit-learn's"
            )
        targets[shape.name] = (server.url + shape.path, path)
    if targets:
        types = {shape.name: shape.content_type for shape in SHAPES}
        loaded = run_rounds(
            targets,
            rounds=rounds,
            warmup_s=warmup_s,
            duration_s=duration_s,
            connections=connections,
            content_types=types,
        )
        for name, runs in loaded.items():
            figures = merged(runs)
            rate = figures["requests_per_s"]
            assert isinstance(rate, float)
            figures.update(rows_per_request=len(rows), rows_per_s=round(rate * len(rows)))
            found[name] = figures
    return found
