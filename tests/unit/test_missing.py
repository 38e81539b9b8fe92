"""Real-table values at the feature table: missing values, booleans, dates, long category lists."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from modelapi.bodies.csv_rows import header_columns, parse_csv
from modelapi.errors import FieldError, InvalidInput
from modelapi.schema import (
    MAX_LISTED_CATEGORIES,
    Feature,
    FeatureTable,
    IgnoredFields,
    public_features,
    snake_case,
)
from modelapi.values import DATE_REASON, MISSING_CELLS, date_text, datetime_days

INCOME = Feature(column="Income", key="income", type="number", accepts_missing=True)
CALLS = Feature(column="Calls", key="calls", type="integer")
AUTOPAY = Feature(column="Autopay", key="autopay", type="boolean")
SIGNUP = Feature(column="Signup", key="signup", type="datetime", accepts_missing=True)
PLAN = Feature(
    column="Plan",
    key="plan",
    type="category",
    categories=("basic", "pro"),
    accepts_unknown=True,
    accepts_missing=True,
)
TABLE = FeatureTable([INCOME, CALLS, AUTOPAY, SIGNUP, PLAN])
GOOD = {"income": 1.5, "calls": 2, "autopay": True, "signup": "2024-05-31", "plan": "pro"}


def _refusals(table: FeatureTable, payload: object) -> list[FieldError]:
    with pytest.raises(InvalidInput) as info:
        table.parse_rows(payload)
    return list(info.value.details)


def test_null_and_absent_keys_are_missing_values_where_the_model_takes_them() -> None:
    row = TABLE.parse_object({**GOOD, "income": None, "signup": None})
    assert row == [None, 2.0, 1.0, None, "pro"]
    absent = {k: v for k, v in GOOD.items() if k not in ("income", "signup")}
    assert TABLE.parse_object(absent) == row


def test_a_feature_without_missing_values_says_is_missing() -> None:
    assert _refusals(TABLE, {**GOOD, "calls": None}) == [FieldError("calls", "is missing")]
    del_calls = {k: v for k, v in GOOD.items() if k != "calls"}
    assert _refusals(TABLE, [GOOD, del_calls]) == [FieldError("[1].calls", "is missing")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, 1.0),
        (False, 0.0),
        (1, 1.0),
        (0.0, 0.0),
        ("true", 1.0),
        ("True", 1.0),
        ("FALSE", 0.0),
        ("yes", 1.0),
        ("No", 0.0),
        ("1", 1.0),
        ("0", 0.0),
    ],
)
def test_booleans_in_every_accepted_form(value: object, expected: float) -> None:
    row = TABLE.parse_object({**GOOD, "autopay": value})
    assert row[2] == expected
    assert type(row[2]) is float


@pytest.mark.parametrize("value", [2, 0.5, "maybe", "", "t", [True], "nan"])
def test_anything_else_is_not_a_boolean(value: object) -> None:
    assert _refusals(TABLE, {**GOOD, "autopay": value}) == [
        FieldError("autopay", "must be true or false (or 1, 0, yes, no)")
    ]


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-31",
        "2024-05-31T14:30",
        "2024-05-31 14:30:05",
        "2024-05-31T14:30:05.25",
        "2024-05-31T14:30:05.123456789Z",
        "2024-05-31t14:30:05z",
        "2024-05-31T16:30:05+02:00",
        "2024-05-31T09:00:05-0530",
        "1969-12-31T23:00:00+01",
        "0001-01-01",
        "9999-12-31T23:59:59",
    ],
)
def test_dates_are_days_since_1970_utc(text: str) -> None:
    parsed = datetime.fromisoformat(text.upper().replace("Z", "+00:00")[:26].rstrip("."))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    expected = (parsed - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86_400
    days = TABLE.parse_object({**GOOD, "signup": text})[3]
    assert isinstance(days, float)
    # fromisoformat keeps microseconds only; the feature table keeps every digit given.
    assert days == pytest.approx(expected, abs=1e-11)


def test_a_date_alone_is_midnight_utc() -> None:
    assert datetime_days("1970-01-02") == 1.0
    assert datetime_days("2024-05-31") == datetime_days("2024-05-31T00:00:00Z") == 19874.0
    assert date_text(19874.0) == "2024-05-31"
    assert date_text(19874.5) == "2024-05-31T12:00:00Z"


@pytest.mark.parametrize(
    "value",
    ["2024-02-30", "2024-05-31T25:00", "31/05/2024", "2024-5-31", "20240531", "", 19874, True],
)
def test_anything_else_is_not_a_date(value: object) -> None:
    assert _refusals(TABLE, {**GOOD, "signup": value}) == [FieldError("signup", DATE_REASON)]


def test_csv_cells_pandas_reads_as_missing_are_missing() -> None:
    from pandas._libs.parsers import STR_NA_VALUES

    assert frozenset(STR_NA_VALUES) == MISSING_CELLS
    body = b"Income,Calls,Autopay,Signup,Plan\n,1,True,,basic\nNA,2,no,2024-01-01,NaN\n"
    assert parse_csv(TABLE, body, 10) == [
        [None, 1.0, 1.0, None, "basic"],
        [None, 2.0, 0.0, 19723.0, None],
    ]


def test_a_csv_cell_missing_where_the_model_needs_it() -> None:
    body = b"Income,Calls,Autopay,Signup,Plan\n1,,True,,basic\n"
    with pytest.raises(InvalidInput) as info:
        parse_csv(TABLE, body, 10)
    assert info.value.details == (FieldError("[0].calls", "is missing"),)


def test_unknown_categories_pass_as_text_where_the_model_answers_them() -> None:
    assert TABLE.parse_object({**GOOD, "plan": "enterprise"})[4] == "enterprise"
    assert _refusals(TABLE, {**GOOD, "plan": 3}) == [FieldError("plan", "must be text")]
    closed = FeatureTable([Feature(column="P", key="p", type="category", categories=("a", "b"))])
    assert _refusals(closed, {"p": "c"}) == [
        FieldError("p", "must be one of the training categories: a, b")
    ]


def _many(n: int) -> Feature:
    return Feature(
        column="Customer",
        key="customer",
        type="category",
        categories=tuple(f"c{i}" for i in range(n)),
    )


def test_long_category_lists_are_counted_never_listed() -> None:
    few, many = _many(MAX_LISTED_CATEGORIES), _many(MAX_LISTED_CATEGORIES + 1)
    [listed] = _refusals(FeatureTable([few]), {"customer": "x"})
    assert listed.reason.endswith(", c19")
    [counted] = _refusals(FeatureTable([many]), {"customer": "x"})
    assert counted.reason == "must be one of the 21 training categories"
    shown = public_features([few, many])
    assert list(shown[0]["categories"]) == list(few.categories or ())  # type: ignore[call-overload]
    assert "categories" not in shown[1]
    assert [item["n_categories"] for item in shown] == [20, 21]
    assert b"c20" not in msgspec.json.encode(shown)


def test_extra_fields_are_ignored_and_noted_or_forbidden() -> None:
    ignored = IgnoredFields()
    payload = [{**GOOD, "id": 1, "Churn": True}, {**GOOD, "id": 2, "x" * 100: 0}]
    rows, _ = TABLE.parse_rows(payload, ignored=ignored)
    assert rows[0] == rows[1]
    assert ignored.names == ["id", "Churn", "x" * 64 + "..."]
    assert not ignored.more
    for name in "abcdef":
        ignored.add(name)
    assert (len(ignored.names), ignored.more) == (5, True)
    with pytest.raises(InvalidInput) as info:
        TABLE.parse_rows(payload, forbid_extra=True)
    assert {d.field for d in info.value.details} == {
        "[0].id",
        "[0].Churn",
        "[1].id",
        "[1]." + "x" * 64 + "...",
    }


def test_one_header_rule_finds_features_and_refuses_a_row_of_numbers() -> None:
    found = header_columns(TABLE, ["id", "plan", "Signup", "Autopay", "calls", "Income", "Churn"])
    assert (found.positions, found.ignored) == ([5, 4, 3, 2, 1], ["id", "Churn"])
    with pytest.raises(InvalidInput) as info:
        header_columns(TABLE, ["6", "148", "72", "35.5", "0"], fix="pass --no-header")
    [detail] = info.value.details
    assert detail.field == "header"
    assert "holds only numbers" in detail.reason
    assert detail.reason.endswith("pass --no-header")
    numbered = FeatureTable([Feature(column="1", key="f_1", type="number")])
    assert header_columns(numbered, ["1"]).positions == [0]
    with pytest.raises(InvalidInput) as info:
        header_columns(TABLE, ["plan", "Plan", "id"], forbid_extra=True)
    reasons = [d.reason for d in info.value.details]
    assert "column id is not a feature of this model" in reasons
    assert "names plan twice; keep one column" in reasons


@pytest.mark.parametrize(
    ("column", "key"),
    [
        ("Support Calls (last 90d)!", "support_calls_last_90d"),
        ("customer id", "customer_id"),
        ("Größe (cm)", "größe_cm"),
        ("年龄", "年龄"),
        ("% of plan used", "of_plan_used"),
        ("90d calls", "f_90d_calls"),
    ],
)
def test_any_header_has_a_predictable_json_key(column: str, key: str) -> None:
    assert snake_case(column) == key
