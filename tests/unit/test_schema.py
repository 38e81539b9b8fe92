"""The feature table: names, types, and every refusal named at once."""

from __future__ import annotations

import pytest

from modelapi.errors import FieldError, InvalidInput
from modelapi.schema import Feature, FeatureTable, snake_case
from tests.conformance import COLUMNS, KEYS

PIMA_COLUMNS = list(COLUMNS)
PIMA_KEYS = list(KEYS)


@pytest.mark.parametrize(
    ("column", "key"),
    [
        *zip(PIMA_COLUMNS, PIMA_KEYS, strict=True),
        ("Outcome", "outcome"),
        ("sepal length (cm)", "sepal_length_cm"),
        ("HTTPStatusCode", "http_status_code"),
        ("already_snake", "already_snake"),
        ("2nd place", "f_2nd_place"),
        ("!!!", "feature"),
    ],
)
def test_snake_case(column: str, key: str) -> None:
    assert snake_case(column) == key


@pytest.fixture
def table() -> FeatureTable:
    return FeatureTable(
        [
            Feature(column="Pregnancies", key="pregnancies", type="integer", min=0, max=17),
            Feature(column="BMI", key="bmi", type="number"),
            Feature(column="Island", key="island", type="category", categories=("Biscoe", "Dream")),
        ]
    )


def test_wire_names_and_csv_names_are_both_accepted(table: FeatureTable) -> None:
    assert table.parse_object({"pregnancies": 2, "bmi": 33.6, "island": "Dream"}) == [
        2.0,
        33.6,
        "Dream",
    ]
    assert table.parse_object({"Pregnancies": 2, "BMI": "33.6", "Island": "Biscoe"}) == [
        2.0,
        33.6,
        "Biscoe",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(148, 148.0), (148.0, 148.0), ("148", 148.0), (" 148 ", 148.0), ("1e2", 100.0), ("-3", -3.0)],
)
def test_numbers_and_numeric_strings(table: FeatureTable, value: object, expected: float) -> None:
    assert table.parse_object({"pregnancies": 1, "bmi": value, "island": "Dream"})[1] == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "must be a number, not a boolean"),
        (None, "is missing"),
        ("nan", "must be a number"),
        ("inf", "must be a number"),
        ("1_000", "must be a number"),
        ("", "must be a number"),
        ([1], "must be a number"),
        ({"a": 1}, "must be a number"),
        (float("nan"), "must be a finite number"),
        (float("inf"), "must be a finite number"),
        (10**400, "must be a finite number"),
        ("1e999", "must be a finite number"),
    ],
)
def test_bad_numbers(table: FeatureTable, value: object, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        table.parse_object({"pregnancies": 1, "bmi": value, "island": "Dream"})
    assert info.value.details == (FieldError("bmi", reason),)


def test_integer_features_take_whole_numbers_only(table: FeatureTable) -> None:
    assert table.parse_object({"pregnancies": 2.0, "bmi": 1, "island": "Dream"})[0] == 2.0
    with pytest.raises(InvalidInput) as info:
        table.parse_object({"pregnancies": 2.5, "bmi": 1, "island": "Dream"})
    assert info.value.details == (FieldError("pregnancies", "must be a whole number"),)


def test_categories_must_be_training_categories(table: FeatureTable) -> None:
    with pytest.raises(InvalidInput) as info:
        table.parse_object({"pregnancies": 1, "bmi": 1, "island": "Atlantis-marker-123"})
    [detail] = info.value.details
    assert detail.field == "island"
    assert detail.reason == "must be one of the training categories: Biscoe, Dream"
    assert "Atlantis" not in str(info.value)


def test_every_problem_is_named_at_once(table: FeatureTable) -> None:
    with pytest.raises(InvalidInput) as info:
        table.parse_object({"bmi": "x", "colour": "red", "Island": 3}, forbid_extra=True)
    assert set(info.value.details) == {
        FieldError("colour", "is not a feature of this model"),
        FieldError("pregnancies", "is missing"),
        FieldError("bmi", "must be a number"),
        FieldError("island", "must be one of the training categories: Biscoe, Dream"),
    }


def test_a_feature_given_twice_is_refused(table: FeatureTable) -> None:
    with pytest.raises(InvalidInput) as info:
        table.parse_object({"pregnancies": 1, "Pregnancies": 1, "bmi": 1, "island": "Dream"})
    assert info.value.details == (
        FieldError("pregnancies", "is given twice (as pregnancies and Pregnancies)"),
    )


def test_long_unknown_names_are_cut_short(table: FeatureTable) -> None:
    with pytest.raises(InvalidInput) as info:
        table.parse_object(
            {"pregnancies": 1, "bmi": 1, "island": "Dream", "x" * 500: 1}, forbid_extra=True
        )
    [detail] = info.value.details
    assert detail.field == "x" * 64 + "..."


def test_batches_name_the_row(table: FeatureTable) -> None:
    rows, is_batch = table.parse_rows([{"pregnancies": 1, "bmi": 1, "island": "Dream"}])
    assert (rows, is_batch) == ([[1.0, 1.0, "Dream"]], True)
    with pytest.raises(InvalidInput) as info:
        table.parse_rows([{"pregnancies": 1, "bmi": 1, "island": "Dream"}, {"pregnancies": 1}, 7])
    assert set(info.value.details) == {
        FieldError("[1].bmi", "is missing"),
        FieldError("[1].island", "is missing"),
        FieldError("[2]", "must be a JSON object"),
    }


@pytest.mark.parametrize("payload", [7, "text", None, True, 1.5])
def test_a_body_that_is_not_an_object_or_array(table: FeatureTable, payload: object) -> None:
    with pytest.raises(InvalidInput) as info:
        table.parse_rows(payload)
    assert info.value.details == (
        FieldError("body", "must be a JSON object or an array of JSON objects"),
    )
