"""Each recorded event is claimed by the one event family it belongs to, in list order."""

from __future__ import annotations

import pytest

from modelapi.aws_lambda.events import EVENT_FAMILIES, FunctionUrlEvent, family_of
from tests.aws_lambda.events import EVENTS, EventCase, load_event


@pytest.mark.parametrize("case", EVENTS, ids=lambda case: case.file)
def test_each_event_is_claimed_by_its_family(case: EventCase) -> None:
    want = "function_url" if case.file.startswith("function_url") else case.shape
    assert family_of(load_event(case.file)).name == want


def test_families_have_distinct_names_and_the_catch_all_is_last() -> None:
    names = [family.name for family in EVENT_FAMILIES]
    assert len(set(names)) == len(names)
    assert names[-1] == "direct_plain"
    assert all(family.matches(["not", "a", "mapping"]) is False for family in EVENT_FAMILIES[:-1])


def test_function_url_comes_before_the_http_api_it_looks_like() -> None:
    event = load_event("function_url_predict.json")
    claiming = [family.name for family in EVENT_FAMILIES if family.matches(event)]
    assert claiming[0] == FunctionUrlEvent.name
    assert "http" in claiming
