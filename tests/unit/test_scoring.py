"""Batch scoring of CSV streams: the record path, the numpy columnar path, and their agreement."""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelapi.answers import answer_columns, format_probability
from modelapi.bodies.csv_rows import header_columns, parse_csv
from modelapi.client import ServerError
from modelapi.errors import InvalidInput, PayloadTooLarge
from modelapi.formats.linear import LinearSpec
from modelapi.predictor import OUT_OF_RANGE, Predictor
from modelapi.schema import Feature
from modelapi.scoring.scorers import LocalScorer, RemoteScorer
from modelapi.scoring.stream import score_csv
from tests.gap_model import HEADER, gap_predictor, gap_rows
from tests.http.toy_models import toy_predictor
from tests.linear_models import linear_predictor as in_memory_predictor

pytest.importorskip("numpy")

PIMA_HEADER = (
    "Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age"
)


def linear_predictor(
    kind: str,
    intercept: list[float],
    weights: list[list[float]],
    classes: tuple[object, ...] | None,
) -> tuple[Predictor, LinearSpec]:
    """A numeric-feature linear model (x integer, y and z numbers) built in memory."""
    spec = LinearSpec(kind=kind, intercept=intercept, weights=weights)  # type: ignore[arg-type]
    features = (
        Feature(column="X", key="x", type="integer"),
        Feature(column="Y val", key="y_val", type="number"),
        Feature(column="Z", key="z", type="number"),
    )
    return in_memory_predictor(msgspec.to_builtins(spec), features, classes, name="numeric"), spec


NUMERIC_MODELS = {
    "binary": linear_predictor("logistic", [-0.5], [[0.25], [-1.5], [0.003]], (0, 1)),
    "multiclass": linear_predictor(
        "logistic",
        [0.1, -0.2, 0.05],
        [[0.2, -0.1, 0.05], [-0.05, 0.1, 0.02], [1.0, 0.0, -1.0]],
        ("setosa", "versi,color", 'vir"ginica'),
    ),
    "regression": linear_predictor("regression", [1.0], [[2.0], [0.25], [-3.5]], None),
}


def run(
    predictor: Predictor,
    data: bytes,
    *,
    linear: LinearSpec | None,
    chunk_rows: int,
    workers: int = 1,
) -> bytes:
    """Score `data` the way `modelapi predict` does; the bytes written."""
    out = io.BytesIO()

    def scorer_for(header: list[str]) -> tuple[LocalScorer, list[str]]:
        return LocalScorer(predictor, header, columnar=linear is not None), answer_columns(
            predictor.manifest
        )

    score_csv(io.BytesIO(data), out, scorer_for, chunk_rows=chunk_rows, workers=workers)
    return out.getvalue()


def outcome(
    predictor: Predictor, data: bytes, *, linear: LinearSpec | None, chunk_rows: int = 4
) -> bytes | str:
    """The output, or the error message."""
    try:
        return run(predictor, data, linear=linear, chunk_rows=chunk_rows)
    except InvalidInput as exc:
        return f"{type(exc).__name__}: {exc}"


def test_pima_rows_answer_as_the_predictor_does(pima_predictor: Predictor) -> None:
    rows = [[6, 148, 72, 35, 0, 33.6, 0.627, 50], [1, 85, 66, 29, 0, 26.6, 0.351, 31]]
    body = "\n".join([PIMA_HEADER, *(",".join(map(str, r)) for r in rows)]) + "\n"
    out = run(pima_predictor, body.encode(), linear=None, chunk_rows=10)
    parsed = list(csv.reader(io.StringIO(out.decode())))
    assert parsed[0] == [*PIMA_HEADER.split(","), "outcome", "probability_0", "probability_1"]
    expected = pima_predictor.predict([[float(v) for v in r] for r in rows])
    assert parsed[1][8] == "1"  # the contract row
    for line, (label, probs) in zip(parsed[1:], expected, strict=True):
        assert line[8] == str(label)
        assert [float(p) for p in line[9:]] == pytest.approx(list(probs or ()), abs=1e-15)


@pytest.mark.parametrize("model", NUMERIC_MODELS)
@pytest.mark.parametrize("chunk_rows", [1, 3, 1000])
def test_columnar_path_answers_as_the_record_path(model: str, chunk_rows: int) -> None:
    predictor, spec = NUMERIC_MODELS[model]
    lines = ["id,Z,X,Y val,note"]
    for i in range(40):
        lines.append(f"r{i},{i * 0.37 - 5:.3f},{i - 20},{(i * 7919) % 101 / 8},text {i}")
    data = ("\r\n" if chunk_rows == 3 else "\n").join(lines).encode() + b"\n"
    fast = run(predictor, data, linear=spec, chunk_rows=chunk_rows)
    slow = run(predictor, data, linear=None, chunk_rows=chunk_rows)
    parsed = list(csv.reader(io.StringIO(fast.decode())))
    recorded = list(csv.reader(io.StringIO(slow.decode())))
    n_text = 5 if predictor.manifest.classes is None else 6
    assert [r[:n_text] for r in parsed] == [r[:n_text] for r in recorded]
    for numpy_row, python_row in zip(parsed[1:], recorded[1:], strict=True):
        numbers = [float(v) for v in numpy_row[n_text:]]
        assert numbers == pytest.approx([float(v) for v in python_row[n_text:]], abs=1e-12)
    assert parsed[0] == ["id", "Z", "X", "Y val", "note", *answer_columns(predictor.manifest)]
    rows = [[float(r[2]), float(r[3]), float(r[1])] for r in parsed[1:]]
    for line, (value, probs) in zip(parsed[1:], predictor.predict(rows), strict=True):
        assert line[:5] == next(csv.reader([lines[parsed.index(line)]]))
        if probs is None:
            assert float(line[5]) == value
        else:
            assert line[5] == str(value)
            assert [float(p) for p in line[6:]] == pytest.approx(list(probs), abs=1e-12)


CELL = st.one_of(
    st.integers(-(10**17), 10**17).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(places=4, allow_nan=False, allow_infinity=False).map(str),
    st.from_regex(r"[ +\-]?[0-9]{0,9}(\.[0-9]{0,9})?([eE][+\-]?[0-9]{1,3})? ?", fullmatch=True),
    st.sampled_from(["", " ", "-", ".", "+.5", "5.", "-0", "0x10", "1_000", "nan", "١٢", '"7"']),
)


def assert_same_answers(fast: bytes | str, slow: bytes | str, n_text: int) -> None:
    """The same error, or the same cells: text exactly, answer numbers within 1e-12."""
    if isinstance(fast, str) or isinstance(slow, str):
        assert fast == slow
        return
    fast_rows = list(csv.reader(io.StringIO(fast.decode())))
    slow_rows = list(csv.reader(io.StringIO(slow.decode())))
    assert [r[:n_text] for r in fast_rows] == [r[:n_text] for r in slow_rows]
    for fast_row, slow_row in zip(fast_rows[1:], slow_rows[1:], strict=True):
        numbers = [float(v) for v in fast_row[n_text:]]
        assert numbers == pytest.approx([float(v) for v in slow_row[n_text:]], abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(cells=st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=6))
def test_columnar_and_record_paths_agree_on_any_cells(cells: list[tuple[str, str, str]]) -> None:
    predictor, spec = NUMERIC_MODELS["binary"]
    body = "X,Y val,Z\n" + "".join(f"{x},{y},{z}\n" for x, y, z in cells)
    fast = outcome(predictor, body.encode(), linear=spec)
    slow = outcome(predictor, body.encode(), linear=None)
    assert_same_answers(fast, slow, 4)


TRICKY_CELLS = [
    "1.2.3",
    "1..2",
    "--1",
    "+-1",
    "1-",
    "1.-2",
    "1+",
    ".",
    "-.",
    "+",
    "-",
    "",
    " ",
    " 7",
    "7 ",
    "007",
    "-0",
    "+0.",
    ".5",
    "-.5",
    "5.",
    "1e3",
    "1E-2",
    "1e",
    "e1",
    "0x1F",
    "1_0",
    "nan",
    "inf",
    "-Infinity",
    "١٢",
    "7\u00a0",
    "123456789012345",
    "1234567890123456",
    "99999999.9999999",
    "9007199254740993",
    "0.1000000000000000055511151231257827",
]


@pytest.mark.parametrize("cell", TRICKY_CELLS)
@pytest.mark.parametrize("column", [0, 1])
def test_columnar_and_record_paths_agree_on_tricky_cells(cell: str, column: int) -> None:
    predictor, spec = NUMERIC_MODELS["binary"]
    row = ["3", "2.5", "-1"]
    row[column] = cell
    body = f"X,Y val,Z\n1,2,3\n{','.join(row)}\n4,5,6\n".encode()
    fast = outcome(predictor, body, linear=spec)
    slow = outcome(predictor, body, linear=None)
    assert_same_answers(fast, slow, 4)


DECIMAL = st.from_regex(r"[+\-]?([0-9]{1,8}(\.[0-9]{0,7})?|\.[0-9]{1,7})", fullmatch=True)
WHOLE = st.one_of(
    st.integers(-(10**15), 10**15).map(str),
    st.integers(-(10**8), 10**8).map(lambda n: f"{n}."),
    st.integers(0, 10**6).map(lambda n: f"+{n:08d}.000"),
)


@settings(max_examples=150, deadline=None)
@given(
    model=st.sampled_from(sorted(NUMERIC_MODELS)),
    cells=st.lists(st.tuples(WHOLE, DECIMAL, DECIMAL), min_size=1, max_size=8),
)
def test_columnar_path_reads_numbers_exactly(model: str, cells: list[tuple[str, str, str]]) -> None:
    predictor, spec = NUMERIC_MODELS[model]
    body = "X,Y val,Z\n" + "".join(f"{x},{y},{z}\n" for x, y, z in cells)
    fast = outcome(predictor, body.encode(), linear=spec)
    slow = outcome(predictor, body.encode(), linear=None)
    assert isinstance(slow, bytes), slow
    assert_same_answers(fast, slow, 3 if predictor.manifest.classes is None else 4)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "InvalidInput: input: is empty: the first line must be a header naming the columns"),
        (
            b"X,Z\n1,2\n",
            "InvalidInput: header: has no column Y val (y_val)",
        ),
        (
            b"X,y_val,Y val,Z\n1,2,3,4\n",
            "InvalidInput: header: names y_val twice; keep one column",
        ),
        (
            b"1,2.5,3\n1,2,3\n",
            "InvalidInput: header: holds only numbers, so the first line looks like data, not"
            " column names; send a first line naming the columns (the features' JSON keys or CSV"
            " names)",
        ),
        (b"X,Y val,Z\n1,2,3\n4,5\n", "InvalidInput: line 3: has 2 values for 3 columns"),
        (
            b"X,Y val,Z\n1,2,3\n1.5,abc,\n",
            "InvalidInput: line 3, x: must be a whole number; line 3, y_val: must be a number;"
            " line 3, z: is missing",
        ),
        (b"X,Y val,Z\n1,2,3\n\n\n1,2,1e999\n", "InvalidInput: line 5, z: must be a finite number"),
        (b"X,Y val,Z\n1,2,3\n1,2,\xff\n", "MalformedBody: line 3: is not UTF-8 text"),
        (b'X,Y val,Z\n1,"2\n\n",3\n1,2,x\n', "InvalidInput: line 5, z: must be a number"),
    ],
)
@pytest.mark.parametrize("columnar", [True, False])
def test_bad_files_name_the_line_and_field(body: bytes, message: str, columnar: bool) -> None:
    predictor, spec = NUMERIC_MODELS["binary"]
    assert outcome(predictor, body, linear=spec if columnar else None) == message


def test_quoted_cells_and_blank_lines_take_the_record_path() -> None:
    predictor, spec = NUMERIC_MODELS["regression"]
    body = b'"X","Y val",note,Z\r\n1,"2.5","a, ""quoted""\nnote",3\r\n\r\n4,5,,6\r\n'
    out = run(predictor, body, linear=spec, chunk_rows=1)
    parsed = list(csv.reader(io.StringIO(out.decode(), newline="")))
    assert parsed[1][:4] == ["1", "2.5", 'a, "quoted"\nnote', "3"]
    assert len(parsed) == 3
    expected = predictor.predict([[1.0, 2.5, 3.0], [4.0, 5.0, 6.0]])
    assert [float(r[4]) for r in parsed[1:]] == [v for v, _ in expected]


def test_header_only_scores_nothing() -> None:
    predictor, spec = NUMERIC_MODELS["binary"]
    out = run(predictor, b"\xef\xbb\xbfX,Y val,Z", linear=spec, chunk_rows=5)
    assert out == b"X,Y val,Z,y,probability_0,probability_1\n"


def test_categorical_models_score_through_the_record_path() -> None:
    predictor = toy_predictor()
    body = b"Colour,Size cm,Count\nred,2.5,3\nred,9,0\n"
    out = run(predictor, body, linear=None, chunk_rows=1)
    parsed = list(csv.reader(io.StringIO(out.decode())))
    expected = predictor.predict([["red", 2.5, 3.0], ["red", 9.0, 0.0]])
    assert [r[3] for r in parsed[1:]] == [label for label, _ in expected]


def test_the_header_rule_takes_csv_names_or_json_keys_and_ignores_the_rest() -> None:
    table = NUMERIC_MODELS["binary"][0].features
    found = header_columns(table, ["z", "extra", "Y val", "x"])
    assert (found.positions, found.ignored) == ([3, 2, 0], ["extra"])


@pytest.mark.parametrize("p", [0.0, 1.0, 0.5, 1e-20, 0.1234567890123456, 1 - 2**-53, 2**-30])
def test_probabilities_have_fifteen_decimals(p: float) -> None:
    text = format_probability(p)
    assert len(text.split(".")[1]) == 15
    assert math.isclose(float(text), p, abs_tol=5.1e-16)


@pytest.mark.parametrize("platform", ["linux", "darwin"])  # forked processes, or threads
@pytest.mark.parametrize("linear", [True, False])
def test_workers_keep_the_order_and_report_the_first_bad_line(
    linear: bool, platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    predictor, spec = NUMERIC_MODELS["binary"]
    lines = [f"{i},{i / 7:.4f},{-i}" for i in range(200)]
    data = ("X,Y val,Z\n" + "\n".join(lines) + "\n").encode()
    one = run(predictor, data, linear=spec if linear else None, chunk_rows=1000)
    many = run(predictor, data, linear=spec if linear else None, chunk_rows=5, workers=3)
    assert many == one
    lines[150], lines[180] = "1,x,2", "y,1,2"
    data = ("X,Y val,Z\n" + "\n".join(lines) + "\n").encode()
    out = io.BytesIO()
    with pytest.raises(InvalidInput, match=r"^line 152, y_val: must be a number$"):
        score_csv(
            io.BytesIO(data),
            out,
            lambda h: (LocalScorer(predictor, h), answer_columns(predictor.manifest)),
            chunk_rows=5,
            workers=3,
        )
    written = out.getvalue().splitlines()
    assert written == one.splitlines()[: len(written)]
    assert len(written) <= 151


def test_a_file_of_one_block_starts_no_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelapi.scoring import stream

    predictor, spec = NUMERIC_MODELS["binary"]
    data = ("X,Y val,Z\n" + "".join(f"{i},{i / 7:.4f},{-i}\n" for i in range(50))).encode()
    one = run(predictor, data, linear=spec, chunk_rows=50)
    monkeypatch.setattr(stream, "_Workers", None)  # any use of it would fail
    assert run(predictor, data, linear=spec, chunk_rows=100, workers=2) == one
    with pytest.raises(TypeError):
        run(predictor, data, linear=spec, chunk_rows=49, workers=2)


@pytest.mark.parametrize(
    ("in_bytes", "out_bytes"),
    [(1 << 20, 1 << 20), (1 << 20, 150), (100, 1 << 20), (150, 300)],
    ids=["regions", "answer-too-big", "block-too-big", "some-fit"],
)
def test_blocks_and_answers_that_miss_the_shared_regions_take_the_pipe(
    in_bytes: int, out_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelapi.scoring import stream

    monkeypatch.setattr(stream._Workers, "_IN_BYTES", in_bytes)
    monkeypatch.setattr(stream._Workers, "_OUT_BYTES", out_bytes)
    predictor, spec = NUMERIC_MODELS["multiclass"]
    lines = [f"{i},{i / 7:.4f},{-i}" for i in range(300)]
    # Blocks of 3 to 12 lines: some fit a small region and some do not.
    lines[40::37] = [f"{i},{i / 3:.9f},{-i * 1000.5}" for i in range(len(lines[40::37]))]
    data = ("X,Y val,Z\n" + "\n".join(lines) + "\n").encode()
    one = run(predictor, data, linear=spec, chunk_rows=1000)
    for chunk_rows in (3, 12):
        assert run(predictor, data, linear=spec, chunk_rows=chunk_rows, workers=2) == one


def remote_run(
    predictor: Predictor, data: bytes, post: Callable[[bytes], bytes], request_rows: int
) -> bytes:
    """Score through RemoteScorer with `post` standing in for the HTTP call."""
    out = io.BytesIO()

    def scorer_for(header: list[str]) -> tuple[RemoteScorer, list[str]]:
        scorer = RemoteScorer(post, predictor.manifest, header, request_rows=request_rows)
        return scorer, answer_columns(predictor.manifest)

    score_csv(io.BytesIO(data), out, scorer_for, chunk_rows=16)
    return out.getvalue()


@pytest.mark.parametrize("extra_column", [False, True])
def test_remote_scoring_halves_requests_on_413_and_names_file_lines(extra_column: bool) -> None:
    predictor, _ = NUMERIC_MODELS["binary"]
    lines = [f"{i},{i / 3:.3f},{-i}" + (f",id{i}" if extra_column else "") for i in range(40)]
    header = "X,Y val,Z" + (",id" if extra_column else "")
    data = (header + "\n" + "\n".join(lines) + "\n").encode()
    sizes: list[int] = []

    def post(body: bytes) -> bytes:
        assert body.startswith(b"X,Y val,Z\n")  # only the features go to the server
        sizes.append(body.count(b"\n") - 1)
        if sizes[-1] > 3:
            raise PayloadTooLarge("body", "must hold at most 3 rows")
        # The server's own CSV path, as Service.predict runs it.
        return predictor.answers.csv(predictor.predict(parse_csv(predictor.features, body, 3)))

    remote = remote_run(predictor, data, post, request_rows=8)
    local = run(predictor, data, linear=None, chunk_rows=16)
    assert remote == local
    assert sizes[:3] == [8, 4, 2]
    assert max(sizes[1:]) == 4
    assert sum(s for s in sizes if s <= 3) == 40
    lines[25] = "1,2,x" + (",id" if extra_column else "")
    data = (header + "\n" + "\n".join(lines) + "\n").encode()
    with pytest.raises(InvalidInput, match=r"^line 27, z: must be a number$"):
        remote_run(predictor, data, post, request_rows=8)


@pytest.mark.parametrize(
    "answer",
    [b"", b"y,probability_0\n1,0.5\n", b"y,probability_0,probability_1\n1,0.5\n", b"\xff"],
)
def test_a_server_answer_that_does_not_fit_is_a_server_error(answer: bytes) -> None:
    predictor, _ = NUMERIC_MODELS["binary"]
    data = b"X,Y val,Z\n1,2,3\n4,5,6\n"
    with pytest.raises(ServerError, match="is not 2 rows of y, probability_0, probability_1"):
        remote_run(predictor, data, lambda body: answer, request_rows=8)


@pytest.mark.parametrize("columnar", [True, False])
@pytest.mark.parametrize("chunk_rows", [1, 10])
def test_a_prediction_past_a_double_names_its_line(columnar: bool, chunk_rows: int) -> None:
    predictor, spec = linear_predictor("regression", [0.0], [[1e300], [1.0], [1.0]], None)
    body = b"X,Y val,Z\n1,2,3\n999999999,2,3\n4,5,6\n"
    message = outcome(predictor, body, linear=spec if columnar else None, chunk_rows=chunk_rows)
    assert message == f"InvalidInput: line 3: {OUT_OF_RANGE}"


@settings(max_examples=100, deadline=None)
@given(cells=st.lists(st.tuples(WHOLE, DECIMAL, DECIMAL), min_size=1, max_size=40))
def test_columnar_regression_answers_are_the_record_paths_to_the_bit(
    cells: list[tuple[str, str, str]],
) -> None:
    # Values are written with repr, so any difference in a parsed number would show.
    predictor, spec = linear_predictor("regression", [0.0], [[1.0], [1.0], [1e-3]], None)
    body = "X,Y val,Z\n" + "".join(f"{x},{y},{z}\n" for x, y, z in cells)
    fast = outcome(predictor, body.encode(), linear=spec, chunk_rows=1000)
    slow = outcome(predictor, body.encode(), linear=None, chunk_rows=1000)
    assert fast == slow


@pytest.mark.parametrize("intercept", [0.0, 1e-9, -1e-9, 3.7, -3.7, 35.0, -35.0, 40.0, -745.0])
def test_columnar_probabilities_are_format_probability_of_the_numbers(intercept: float) -> None:
    np = pytest.importorskip("numpy")
    predictor, spec = linear_predictor("logistic", [intercept], [[0.0], [0.0], [0.0]], (0, 1))
    out = run(predictor, b"X,Y val,Z\n1,2,3\n4,5,6\n", linear=spec, chunk_rows=10)
    e = np.exp(-abs(intercept))
    p1 = float(1.0 / (1.0 + e) if intercept >= 0 else e / (1.0 + e))
    label = "1" if intercept > 0 else "0"
    cells = f"{label},{format_probability(1.0 - p1)},{format_probability(p1)}"
    assert out.decode().splitlines()[1:] == [f"1,2,3,{cells}", f"4,5,6,{cells}"]


def test_lines_longer_than_a_columnar_pass_score_as_the_record_path() -> None:
    predictor, spec = NUMERIC_MODELS["binary"]
    # Two notes of 100,000 characters: a line past 128 kB, each cell within csv's field limit.
    note = ",".join(["t" * 100_000] * 2)
    lines = [f"{i},{i / 3:.4f},{-i},{note if i % 7 == 3 else 'a,b'}" for i in range(40)]
    data = ("X,Y val,Z,note,more\n" + "\n".join(lines) + "\n").encode()
    fast = run(predictor, data, linear=spec, chunk_rows=1000)
    slow = run(predictor, data, linear=None, chunk_rows=1000)
    assert_same_answers(fast, slow, 6)
    assert fast.count(b"\n") == 41


@pytest.mark.parametrize("columnar", [True, False])
def test_blank_lines_in_plain_blocks_are_dropped_and_counted(columnar: bool) -> None:
    predictor, spec = NUMERIC_MODELS["binary"]
    linear = spec if columnar else None
    body = b"X,Y val,Z\n\n1,2,3\n\n\n4,5,6\n\n"
    out = run(predictor, body, linear=linear, chunk_rows=1000)
    assert out.count(b"\n") == 3
    assert out == run(predictor, b"X,Y val,Z\n1,2,3\n4,5,6\n", linear=linear, chunk_rows=1000)
    bad = outcome(predictor, b"X,Y val,Z\n1,2,3\n\n4,x,6\n", linear=linear, chunk_rows=1000)
    assert bad == "InvalidInput: line 4, y_val: must be a number"


def test_remote_scoring_sends_no_blank_rows() -> None:
    predictor, _ = NUMERIC_MODELS["binary"]

    def post(body: bytes) -> bytes:
        assert b"\n\n" not in body
        return predictor.answers.csv(predictor.predict(parse_csv(predictor.features, body, 100)))

    data = b"X,Y val,Z\n1,2,3\n\n4,5,6\n"
    remote = remote_run(predictor, data, post, request_rows=8)
    assert remote == run(predictor, data, linear=None, chunk_rows=16)


def _die(*args: object) -> None:
    os._exit(9)  # as the out-of-memory killer would: the worker is gone without a word


def test_a_worker_that_dies_stops_the_command_with_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelapi.cli import main
    from modelapi.scoring import stream

    monkeypatch.setattr(stream, "_score_shared", _die)
    source = tmp_path / "rows.csv"
    row = "6,148,72,35,0,33.6,0.627,50\n"
    source.write_text(PIMA_HEADER + "\n" + row * 200)
    monkeypatch.chdir(tmp_path)
    argv = ["predict", "diabetes", str(source), "-o", "scored.csv", "--chunk-rows", "20"]
    assert main([*argv, "--workers", "2", "--no-progress"]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("error: a scoring worker process stopped before its block")
    assert "scored.csv was not written" in error[-1]
    assert not list(tmp_path.glob("*scored.csv*"))


def test_empty_cells_are_missing_values_on_the_columnar_path() -> None:
    gaps_model = gap_predictor()
    rows = gap_rows(300)
    data = (HEADER + "\n" + "\n".join(rows) + "\n").encode()
    scorer = LocalScorer(gaps_model, HEADER.split(","))
    assert scorer.score_block(data.partition(b"\n")[2], 2) is not None  # not handed over
    fast = scored(gaps_model, data, columnar=True)
    assert isinstance(fast, bytes)
    assert fast == scored(gaps_model, data, columnar=False)
    # A lone sign is neither a number nor a gap: both paths name it.
    rows[9] = "id9,-,3.5,0.1"
    bad = (HEADER + "\n" + "\n".join(rows) + "\n").encode()
    message = scored(gaps_model, bad, columnar=True)
    assert message == scored(gaps_model, bad, columnar=False) == "line 11, visits: must be a number"


def test_a_blank_line_of_a_one_column_file_is_dropped_not_missing() -> None:
    predictor = gap_predictor(only_score=True)
    data = b"Score\n0.5\n\n-1.25\n\n\n2\n"
    assert LocalScorer(predictor, ["Score"]).score_block(data[6:], 2) is None
    fast = scored(predictor, data, columnar=True)
    assert fast == scored(predictor, data, columnar=False)
    assert isinstance(fast, bytes)
    assert fast.count(b"\n") == 4


def scored(predictor: Predictor, data: bytes, *, columnar: bool) -> bytes | str:
    """What `modelapi predict` writes (chunks of 64 lines), or its error."""
    out = io.BytesIO()

    def scorer_for(header: list[str]) -> tuple[LocalScorer, list[str]]:
        scorer = LocalScorer(predictor, header, columnar=columnar)
        return scorer, answer_columns(predictor.manifest)

    try:
        score_csv(io.BytesIO(data), out, scorer_for, chunk_rows=64)
    except InvalidInput as exc:
        return str(exc)
    return out.getvalue()
