"""RawHeaders reads an ASGI header list exactly as the dict built from its pairs would."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelapi.app import RawHeaders

_names = st.sampled_from(
    [b"content-type", b"content-length", b"authorization", b"x-api-key", b"host", b"x-\xe9"]
)
_values = st.binary(max_size=8)


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(_names, _values), max_size=8))
def test_raw_headers_read_as_the_dict_of_their_pairs(pairs: list[tuple[bytes, bytes]]) -> None:
    expected = {name.decode("latin-1"): value.decode("latin-1") for name, value in pairs}
    headers = RawHeaders(pairs)
    for name in ["content-type", "content-length", "authorization", "x-api-key", "host", "x-é"]:
        assert headers.get(name) == expected.get(name)
        assert headers.get(name, "-") == expected.get(name, "-")
        assert (name in headers) == (name in expected)
        if name in expected:
            assert headers[name] == expected[name]
    assert dict(headers) == expected
    assert len(headers) == len(expected)
    assert 3 not in headers


def test_a_missing_header_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="content-type"):
        RawHeaders([(b"host", b"x")])["content-type"]
