"""Training data: reading, the feature table, the task rule, and one clear error per problem."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelapi.errors import DataError
from modelapi.training.data import MAX_CLASSES, Dataset, json_scalar, load_dataset, read_table


def write_penguins(path: Path) -> Path:
    """The palmerpenguins table with `species` last (multiclass target, text and missing cells).

    Body mass is written in kilograms so that the unscaled logistic regression converges.
    """
    from palmerpenguins import load_penguins

    frame = load_penguins()
    frame["body_mass_kg"] = frame.pop("body_mass_g") / 1000
    frame["species"] = frame.pop("species")
    frame.to_csv(path, index=False)
    return path


def write_diabetes(path: Path) -> Path:
    """scikit-learn's diabetes regression data, target `target` last."""
    from sklearn.datasets import load_diabetes

    load_diabetes(as_frame=True).frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def pima(pima_csv: Path) -> Dataset:
    return load_dataset(pima_csv)


def test_pima_feature_table_matches_the_csv(pima: Dataset, pima_csv: Path) -> None:
    frame = pd.read_csv(pima_csv)
    assert [f.column for f in pima.features] == list(frame.columns[:-1])
    by_key = {f.key: f for f in pima.features}
    assert by_key["diabetes_pedigree_function"].column == "DiabetesPedigreeFunction"
    assert by_key["blood_pressure"].column == "BloodPressure"
    for feature in pima.features:
        column = frame[feature.column]
        expected_type = "integer" if column.dtype.kind == "i" else "number"
        assert (feature.type, feature.min, feature.max) == (
            expected_type,
            float(column.min()),
            float(column.max()),
        )
    assert (pima.target.column, pima.target.key) == ("Outcome", "outcome")
    assert pima.task == "classification"
    assert pima.classes == (0, 1)
    assert all(type(c) is int for c in pima.classes)
    assert pima.info.sha256 == hashlib.sha256(pima_csv.read_bytes()).hexdigest()
    assert (pima.info.n_rows, pima.info.source) == (len(frame), pima_csv.name)


def test_summary_has_counts_means_and_class_balance(pima: Dataset, pima_csv: Path) -> None:
    frame = pd.read_csv(pima_csv)
    summary = pima.summary
    assert summary.n_rows == len(frame)
    glucose = next(c for c in summary.columns if c.column == "Glucose")
    assert glucose.count == frame["Glucose"].count()
    assert glucose.mean == pytest.approx(frame["Glucose"].mean())
    counts = frame["Outcome"].value_counts()
    assert summary.class_balance == ((0, counts[0]), (1, counts[1]))
    text = summary.format()
    assert "Glucose" in text
    assert f"0: {counts[0]}" in text


def test_text_columns_become_sorted_categories(tmp_path: Path) -> None:
    dataset = load_dataset(write_penguins(tmp_path / "p.csv"), drop_missing=True)
    island = next(f for f in dataset.features if f.key == "island")
    frame = pd.read_csv(tmp_path / "p.csv").dropna()
    assert island.type == "category"
    assert island.categories == tuple(sorted(frame["island"].unique()))
    assert island.min is None
    assert dataset.classes == tuple(sorted(frame["species"].unique()))
    assert dataset.summary.n_dropped == len(pd.read_csv(tmp_path / "p.csv")) - len(frame)


def test_target_can_be_named_by_column_or_key(pima_csv: Path) -> None:
    assert load_dataset(pima_csv, target="Age").target.column == "Age"
    dataset = load_dataset(pima_csv, target="blood_pressure")
    assert dataset.target.column == "BloodPressure"
    assert dataset.task == "regression"  # more than MAX_CLASSES whole numbers


def _csv(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_task_rule(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    few = pd.DataFrame({"x": x, "y": np.arange(60) % 3})
    assert load_dataset(few).task == "classification"
    floats = pd.DataFrame({"x": x, "y": (np.arange(60) % 3).astype(float)})
    loaded = load_dataset(floats)
    assert (loaded.task, loaded.classes) == ("classification", (0, 1, 2))
    many = pd.DataFrame({"x": x, "y": np.arange(60) % (MAX_CLASSES + 1)})
    assert load_dataset(many).task == "regression"
    fractional = pd.DataFrame({"x": x, "y": (np.arange(60) % 2) + 0.5})
    assert load_dataset(fractional).task == "regression"
    assert load_dataset(fractional, task="regression").classes is None
    with pytest.raises(DataError, match="fractional values"):
        load_dataset(fractional, task="classification")
    assert load_dataset(many, task="classification").task == "classification"


def test_dataframe_input_is_hashed_as_csv() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", "x", "y"]})
    dataset = load_dataset(frame)
    assert dataset.info.source == "DataFrame"
    expected = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
    assert dataset.info.sha256 == expected
    assert dataset.classes == ("x", "y")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.int64(3), 3),
        (np.float64(2.0), 2),
        (np.float64(2.5), 2.5),
        (np.str_("a"), "a"),
        (np.bool_(True), "True"),
        ("b", "b"),
    ],
)
def test_json_scalar(value: object, expected: object) -> None:
    result = json_scalar(value)
    assert result == expected
    assert type(result) is type(expected)


# (file contents or None for no file, load options, words the message must contain)
ERRORS = [
    (None, {}, ["no such file"]),
    ("", {}, ["empty"]),
    ("   \n\n", {}, ["empty"]),
    ("a,b,c\n", {}, ["no data rows"]),
    ('a,b\n1,2\n3,4,5,6\n"x', {}, ["not a readable CSV"]),
    ("only\n1\n2\n", {}, ["1 column"]),
    ("a,b\n1,0\n2,1\n", {"target": "nope"}, ["no target column", "'nope'", "a, b"]),
    ("a,b\n1,0\nsecret-value,1\n3,0\n4,1\n", {}, ["column a", "1 rows", "not a number"]),
    ("a,b\n1,\n2,\n", {}, ["no row has a value", "target column b"]),
    ("a,b\n1,0\n2,0\n3,0\n", {}, ["single class"]),
    ("A b,a_b,y\n1,2,0\n3,4,1\n", {}, ["'a_b'", "rename", "--ignore"]),
    ("a,c,b\n1,5,0\n1,6,1\n", {"ignore": ["c"]}, ["no feature columns", "a (constant)"]),
    ("a,b\n1,0\n2,1\n", {"ignore": ["nope"]}, ["no column nope", "--ignore", "a, b"]),
    ("a,b\n1,0\n2,1\n", {"ignore": ["b"]}, ["b is the target"]),
    (
        "a,c,b\nx,1,0\nsecret-value,2,1\n",
        {"feature_types": {"a": "number"}},
        ["2 values", "not numbers"],
    ),
    (
        "a,c,b\n2024-01-01,1,0\nsecret-value,2,1\n",
        {"feature_types": {"a": "datetime"}},
        ["1 values", "ISO 8601"],
    ),
    ("6,148,0.5,1\n1,85,0.3,0\n", {}, ["first line is a number", "--columns a,b,c"]),
    ("6,148,1\n1,85,0\n", {"columns": ["a", "b"]}, ["--columns names 2 columns", "have 3"]),
    ("a,b\n1,x\n2,y\n", {"task": "regression"}, ["not numeric"]),
]


@pytest.mark.parametrize(("text", "options", "words"), ERRORS)
def test_each_data_problem_is_one_clear_line(
    tmp_path: Path, text: str | None, options: dict[str, object], words: list[str]
) -> None:
    path = tmp_path / "data.csv" if text is None else _csv(tmp_path, text)
    with pytest.raises(DataError) as caught:
        load_dataset(path, **options)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    assert "secret-value" not in message


def test_invalid_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not a UTF-8"):
        load_dataset(path)


def test_drop_missing_trains_on_complete_rows(tmp_path: Path) -> None:
    path = _csv(tmp_path, "a,c,b\n1,x,0\n,y,1\n3,,0\n4,x,1\n5,y,0\n6,y,\n")
    dataset = load_dataset(path, drop_missing=True)
    assert list(dataset.X["a"]) == [1.0, 4.0, 5.0]
    assert (dataset.summary.n_dropped, dataset.summary.n_no_target) == (2, 1)
    assert dataset.info.n_rows == 3
    kept = load_dataset(path)
    assert kept.info.n_rows == 5  # only the row without a target is dropped
    assert kept.has_missing
    assert kept.X["a"].isna().sum() == kept.X["c"].isna().sum() == 1


def test_all_rows_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing is left"):
        load_dataset(_csv(tmp_path, "a,c,b\n,1,0\n2,,1\n,2,0\n3,,1\n"), drop_missing=True)


@pytest.fixture
def served_folder(tmp_path: Path) -> Iterator[str]:
    """A static HTTP server on 127.0.0.1 serving tmp_path."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_reads_a_csv_from_an_http_url(served_folder: str, tmp_path: Path, pima_csv: Path) -> None:
    (tmp_path / "pima.csv").write_bytes(pima_csv.read_bytes())
    dataset = load_dataset(f"{served_folder}/pima.csv?token=abc")
    assert dataset.info.source == f"{served_folder}/pima.csv"
    assert dataset.info.sha256 == hashlib.sha256(pima_csv.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="cannot be downloaded"):
        read_table(f"{served_folder}/absent.csv")
