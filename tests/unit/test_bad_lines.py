"""`modelapi predict`'s scoring of real files: bad lines skipped, no header, answer names."""

from __future__ import annotations

import csv
import io

import pytest

from modelapi.answers import answer_columns
from modelapi.bodies.csv_rows import parse_csv
from modelapi.errors import InvalidInput
from modelapi.predictor import OUT_OF_RANGE, Predictor
from modelapi.scoring.columnar import ColumnarScorer
from modelapi.scoring.scorers import LocalScorer, RemoteScorer, headerless_names, output_columns
from modelapi.scoring.stream import BlockScorer, score_csv
from tests.unit.test_scoring import NUMERIC_MODELS, linear_predictor

HEADER = "X,Y val,Z,note"
GOOD = [f"{i},{i / 4},{-i},n{i}" for i in range(30)]


def _score(
    predictor: Predictor,
    data: bytes,
    *,
    remote: bool = False,
    columnar: bool = True,
    chunk_rows: int = 7,
    workers: int = 1,
    no_header: bool = False,
) -> tuple[bytes, list[InvalidInput], int]:
    out = io.BytesIO()
    rejected: list[InvalidInput] = []

    def post(body: bytes) -> bytes:
        # The server's own CSV path, as Service.predict runs it.
        rows = parse_csv(predictor.features, body, 1000)
        return predictor.answers.csv(predictor.predict(rows))

    def scorer_for(header: list[str]) -> tuple[BlockScorer, list[str]]:
        scorer: BlockScorer
        if remote:
            scorer = RemoteScorer(post, predictor.manifest, header, skip_bad_lines=True)
        else:
            scorer = LocalScorer(predictor, header, columnar=columnar, skip_bad_lines=True)
        return scorer, output_columns(answer_columns(predictor.manifest), header)

    features = predictor.manifest.features
    n_rows = score_csv(
        io.BytesIO(data),
        out,
        scorer_for,
        chunk_rows=chunk_rows,
        workers=workers,
        rejected=rejected.append,
        header_names=(lambda width: headerless_names(features, width)) if no_header else None,
    )
    return out.getvalue(), rejected, n_rows


@pytest.mark.parametrize(
    ("remote", "columnar", "workers"),
    [(False, True, 1), (False, False, 1), (False, True, 3), (True, False, 1)],
)
def test_skip_scores_the_good_lines_and_lists_the_bad_ones_in_order(
    remote: bool, columnar: bool, workers: int
) -> None:
    predictor, _ = NUMERIC_MODELS["binary"]
    lines = list(GOOD)
    lines[3] = "1.5,2,3,secret-1"  # line 5: x must be whole
    lines[10] = "1,abc,,secret-2"  # line 12: two bad cells
    lines[20] = "1,2"  # line 22: short
    data = ("\n".join([HEADER, *lines]) + "\n").encode()
    out, rejected, n_rows = _score(
        predictor, data, remote=remote, columnar=columnar, workers=workers
    )
    assert [str(e) for e in rejected] == [
        "line 5, x: must be a whole number",
        "line 12, y_val: must be a number; line 12, z: is missing",
        "line 22: has 2 values for 4 columns",
    ]
    assert n_rows == 27
    good = [line for i, line in enumerate(lines) if i not in (3, 10, 20)]
    expected, _, _ = _score(predictor, ("\n".join([HEADER, *good]) + "\n").encode())
    assert out == expected
    assert b"secret" not in b"".join(str(e).encode() for e in rejected)


def test_skip_leaves_out_a_prediction_past_a_double() -> None:
    predictor, _ = linear_predictor("regression", [0.0], [[1e300], [1.0], [1.0]], None)
    data = b"X,Y val,Z\n1,2,3\n999999999,2,3\n4,5,6\n"
    out, rejected, n_rows = _score(predictor, data, columnar=False)
    assert [str(e) for e in rejected] == [f"line 3: {OUT_OF_RANGE}"]
    assert n_rows == 2
    assert out.count(b"\n") == 3


def test_a_file_without_a_header_is_read_in_feature_order() -> None:
    predictor, _ = NUMERIC_MODELS["binary"]
    headerless = ("\n".join(line.rsplit(",", 1)[0] + ",extra" for line in GOOD) + "\n").encode()
    out, _, n_rows = _score(predictor, headerless, no_header=True)
    assert n_rows == 30
    rows = list(csv.reader(io.StringIO(out.decode())))
    assert rows[0] == ["X", "Y val", "Z", "column_4", "y", "probability_0", "probability_1"]
    named, _, _ = _score(predictor, b"X,Y val,Z,column_4\n" + headerless)
    assert out == named
    with pytest.raises(InvalidInput, match="without a header the first 3 columns"):
        headerless_names(predictor.manifest.features, 2)


def test_the_refusal_of_a_headerless_file_says_how_to_read_it() -> None:
    predictor, _ = NUMERIC_MODELS["binary"]
    with pytest.raises(InvalidInput, match=r"looks like data.*pass --no-header$"):
        LocalScorer(predictor, ["1", "2.5", "3"], header_fix="pass --no-header")


def test_answer_columns_step_aside_for_an_input_column_of_the_same_name() -> None:
    answers = ["churn", "probability_no", "probability_yes"]
    assert output_columns(answers, ["Churn", "id"]) == answers
    assert output_columns(answers, ["churn", "id"]) == ["predicted_churn", *answers[1:]]
    twice = output_columns(answers, ["churn", "predicted_churn", "probability_no"])
    assert twice == ["predicted_predicted_churn", "predicted_probability_no", answers[2]]


def test_booleans_and_dates_are_never_read_by_the_columnar_path() -> None:
    from modelapi.schema import Feature

    predictor, _ = NUMERIC_MODELS["binary"]
    numeric = predictor.manifest.features
    assert ColumnarScorer.supports(predictor.model, numeric)
    for kind in ("boolean", "datetime"):
        changed = (Feature(column="X", key="x", type=kind), *numeric[1:])  # type: ignore[arg-type]
        assert not ColumnarScorer.supports(predictor.model, changed)
