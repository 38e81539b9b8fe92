"""The typed decode of the feature table gives exactly what parse_rows gives, or steps aside."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelapi.errors import InvalidInput
from modelapi.predictor import Predictor
from modelapi.schema import Feature, FeatureTable
from tests.http.toy_models import HOSTILE_CATEGORY, TOY_FEATURES

# Every typed form beside the toy's: missing values, unknown categories, booleans.
REAL_FEATURES = (
    Feature(
        column="Plan", key="plan", type="category", categories=("red", "1"), accepts_missing=True
    ),
    Feature(column="City", key="city", type="category", categories=("blue",), accepts_unknown=True),
    Feature(column="Autopay", key="autopay", type="boolean", accepts_missing=True),
    Feature(column="Paid", key="paid", type="boolean"),
    Feature(column="Income", key="income", type="number", accepts_missing=True),
    Feature(column="Calls", key="calls", type="integer", accepts_missing=True),
)

_decode = msgspec.json.Decoder(float_hook=float).decode


def _slow(table: FeatureTable, body: bytes) -> object:
    try:
        return table.parse_rows(_decode(body))
    except (InvalidInput, msgspec.DecodeError, RecursionError) as exc:
        return type(exc)


def _typed(table: FeatureTable, body: bytes) -> object:
    decoded = table.decode_valid(body)
    return None if decoded is None else table.rows_of(decoded)


def _rows(result: object) -> object:
    """Rows as lists of (type, value), whichever sequence type each row is.

    The types are compared too: True == 1.0 in Python, but a model must get the float.
    """
    if isinstance(result, tuple):
        rows, is_batch = result
        return [[(type(v).__name__, v) for v in row] for row in rows], is_batch
    return result


def _tables(pima: Predictor) -> list[FeatureTable]:
    return [FeatureTable(TOY_FEATURES), pima.features, FeatureTable(REAL_FEATURES)]


_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        ["red", HOSTILE_CATEGORY, "blue", "", "1", " 2 ", "nan", "1e5", "true", "No", "NA"]
    ),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)


def _objects(table: FeatureTable) -> st.SearchStrategy[dict[str, object]]:
    names = [f.key for f in table.features] + [f.column for f in table.features] + ["extra"]
    return st.dictionaries(st.sampled_from(names), _values, max_size=len(names))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_fast_path_agrees_with_parse_rows(data: st.DataObject, pima_predictor: Predictor) -> None:
    for table in _tables(pima_predictor):
        objects = st.one_of(_objects(table), st.lists(_objects(table), max_size=4))
        body = msgspec.json.encode(data.draw(objects))
        fast = _typed(table, body)
        if fast is not None:
            assert _rows(fast) == _rows(_slow(table, body))


@pytest.mark.parametrize(
    "value",
    [
        {"colour": "red", "size_cm": 2, "count": 3},
        [{"colour": "red", "size_cm": 2.5, "count": 3.0}],
    ],
)
def test_valid_rows_take_the_fast_path(value: object) -> None:
    table = FeatureTable(TOY_FEATURES)
    body = msgspec.json.encode(value)
    fast = _typed(table, body)
    assert fast is not None
    assert _rows(fast) == _rows(table.parse_rows(msgspec.json.decode(body)))


@pytest.mark.parametrize(
    "value",
    [
        {"plan": None, "city": "anywhere", "autopay": True, "paid": False, "income": None},
        [{"plan": "1", "city": "blue", "autopay": None, "paid": True, "income": 2.5, "calls": 3}],
        {"city": "", "paid": True},
    ],
)
def test_missing_unknown_and_boolean_values_take_the_fast_path(value: object) -> None:
    table = FeatureTable(REAL_FEATURES)
    body = msgspec.json.encode(value)
    fast = _typed(table, body)
    assert fast is not None
    assert _rows(fast) == _rows(table.parse_rows(msgspec.json.decode(body)))


def test_dates_always_take_parse_rows() -> None:
    table = FeatureTable([Feature(column="Day", key="day", type="datetime")])
    assert table.decode_valid(b'{"day": "2024-05-31"}') is None
    assert table.parse_rows({"day": "2024-05-31"})[0] == [[19874.0]]


def test_pima_example_takes_the_fast_path(pima_predictor: Predictor) -> None:
    from tests.conftest import PIMA_EXAMPLE

    table = pima_predictor.features
    fast = _typed(table, PIMA_EXAMPLE)
    assert _rows(fast) == _rows(table.parse_rows(msgspec.json.decode(PIMA_EXAMPLE)))


@pytest.mark.parametrize(
    "body",
    [
        b'{"colour": "red", "size_cm": 1e400, "count": 1}',
        b'{"colour": "red", "size_cm": 2, "count": 1.5}',
        b'{"colour": "blue", "size_cm": 2, "count": 1}',
        b'{"Colour": "red", "size_cm": 2, "count": 1}',
        b'{"colour": "red", "size_cm": "2", "count": 1}',
        b'{"colour": "red", "size_cm": true, "count": 1}',
        b'{"colour": "red", "size_cm": 2, "count": 1, "x": 0}',
        b'{"colour": "red", "size_cm": null, "count": 1}',
        b'{"colour": "red", "size_cm": 2}',
        b"[[]]",
        b"{",
        b"",
    ],
)
def test_anything_parse_rows_must_judge_steps_aside(body: bytes) -> None:
    assert FeatureTable(TOY_FEATURES).decode_valid(body) is None
