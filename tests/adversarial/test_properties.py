"""Property tests on the validation core: whatever the body, an answer or a 4xx, never an exception.

Every property sends bodies through `Service.handle`, the code every adapter shares, and checks
the answer against an oracle computed here: a 200 exactly when the feature table accepts the
decoded payload, else a 4xx carrying the one error shape, never a value the client sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelapi.config import Settings
from modelapi.errors import ErrorBody, InvalidInput
from modelapi.predictor import OUT_OF_RANGE, Predictor
from modelapi.schema import Feature
from modelapi.service import Request, Response, Service
from modelapi.source import ModelSource
from tests.adversarial.budget import scaled
from tests.conftest import PIMA_EXAMPLE
from tests.linear_models import linear_predictor

EXAMPLES = scaled(150, 3000)
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ERROR_CODES = {
    400: "malformed_body",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
}
JSON_TYPES = ["", "application/json", "application/json; charset=utf-8", "text/plain"]
CSV_TYPES = ["text/csv", "application/csv", "text/csv; charset=utf-8"]
MARKER = "zq7Marker"
MAX_ROWS = 50


def _service(predictor: Predictor) -> Service:
    settings_ = Settings(store="/nonexistent/models", max_batch_rows=MAX_ROWS)
    return Service(ModelSource.of(predictor), settings_)


@pytest.fixture(scope="module")
def service(pima_predictor: Predictor) -> Service:
    """The service answering with the shipped diabetes model (50 rows at most per request)."""
    return _service(pima_predictor)


def _post(service: Service, body: bytes, content_type: str = "") -> Response:
    headers = {"content-type": content_type} if content_type else {}
    return service.handle(Request("POST", "/predict", headers, body))


def assert_error(response: Response, *statuses: int) -> ErrorBody:
    """A 4xx among `statuses` (any 4xx when none) with the one error shape; return it."""
    assert response.status in (statuses or ERROR_CODES), (response.status, response.body[:300])
    assert response.content_type == "application/json"
    error = msgspec.json.decode(response.body, type=ErrorBody)
    assert error.error == ERROR_CODES[response.status]
    assert error.details, "an error names at least one field"
    for detail in error.details:
        assert detail.reason  # the field may be "" when the client sent an empty key
        assert len(detail.field) < 200, "a field name is cut short, never a long echo"
    return error


def assert_answers(service: Service, response: Response, n_rows: int | None) -> None:
    """A 200 with finite answers: one object, or a list of n_rows objects."""
    assert response.status == 200, response.body[:300]
    answer = json.loads(response.body)
    answers = [answer] if n_rows is None else answer
    assert isinstance(answers, list)
    if n_rows is not None:
        assert len(answers) == n_rows
    manifest = service.source.predictor.manifest  # type: ignore[union-attr]
    for item in answers:
        value = item[manifest.target.key]
        if manifest.classes is None:
            assert isinstance(value, float), "a regressor's value is a number, never null"
            assert math.isfinite(value)
        else:
            assert value in manifest.classes
            probabilities = list(item["probabilities"].values())
            assert all(isinstance(p, float) and 0 <= p <= 1 for p in probabilities)
            assert math.isclose(sum(probabilities), 1.0, rel_tol=1e-9)


def _accepts(service: Service, payload: object) -> tuple[bool, int | None]:
    """The oracle: whether the feature table accepts the payload, and its row count if a batch."""
    predictor = service.source.predictor
    assert predictor is not None
    try:
        rows, is_batch = predictor.features.parse_rows(payload)
    except InvalidInput:
        return False, None
    return len(rows) <= MAX_ROWS, len(rows) if is_batch else None


# ---- strategies ----------------------------------------------------------------------------

PIMA_KEYS = list(json.loads(PIMA_EXAMPLE))
_names = st.sampled_from(
    [*PIMA_KEYS, "Glucose", "BMI", "BloodPressure", "Age", "outcome", "", "__proto__"]
) | st.text(max_size=12)
_numeric_text = st.from_regex(
    r"\s?[+-]?\d{1,30}(\.\d{0,20})?([eE][+-]?\d{1,4})?\s?", fullmatch=True
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | _numeric_text
    | st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1_000", "0x10", "١٤٨", "1e999"])
)
_json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_names, inner, max_size=10),
    max_leaves=30,
)


@st.composite
def _rows(draw: st.DrawFn) -> dict[str, object]:
    """A Pima row with some values replaced, some keys dropped and some added."""
    row: dict[str, object] = json.loads(PIMA_EXAMPLE)
    for key in draw(st.lists(st.sampled_from(PIMA_KEYS), max_size=3, unique=True)):
        row[key] = draw(_json_values)
    for key in draw(st.lists(st.sampled_from(PIMA_KEYS), max_size=2, unique=True)):
        del row[key]
    for _ in range(draw(st.integers(0, 2))):
        row[draw(_names)] = draw(_scalars)
    return row


_payloads = _json_values | _rows() | st.lists(_rows() | _json_values, max_size=60)


# ---- properties ----------------------------------------------------------------------------


@FAST
@given(payload=_payloads, content_type=st.sampled_from(JSON_TYPES))
def test_any_json_is_answered_exactly_when_the_feature_table_accepts_it(
    service: Service, payload: object, content_type: str
) -> None:
    response = _post(service, json.dumps(payload).encode(), content_type)
    accepted, n_rows = _accepts(service, payload)
    if accepted:
        assert_answers(service, response, n_rows)
    else:
        assert_error(response, 413, 422)


@FAST
@given(row=_rows(), batch=st.booleans(), data=st.data())
def test_no_value_a_client_sent_comes_back_in_an_error(
    service: Service, row: dict[str, object], batch: bool, data: st.DataObject
) -> None:
    key = data.draw(st.sampled_from(PIMA_KEYS))
    row[key] = data.draw(st.sampled_from([MARKER, f" {MARKER} ", f"1{MARKER}", [MARKER]]))
    payload: object = [row, row] if batch else row
    error = assert_error(_post(service, json.dumps(payload).encode()), 422)
    assert MARKER not in msgspec.json.encode(error).decode()


@settings(FAST, max_examples=scaled(40, 400))
@given(
    depth=st.integers(2, 200_000),  # depth 1 closed is [] or {}: an empty batch or row
    opener=st.sampled_from(["[", "{", '{"a":', '{"glucose":', "[{}, "]),
    closed=st.booleans(),
    content_type=st.sampled_from(JSON_TYPES),
)
def test_deep_nesting_is_refused_not_a_crash(
    service: Service, depth: int, opener: str, closed: bool, content_type: str
) -> None:
    closer = {"[": "]", "{": "}", '{"a":': "}", '{"glucose":': "}", "[{}, ": "]"}[opener]
    text = (
        opener * depth + ("1" if opener.endswith(":") else "") + (closer * depth if closed else "")
    )
    response = _post(service, text.encode(), content_type)
    if response.status == 200:
        pytest.fail(f"a nested body of depth {depth} was answered")
    assert_error(response, 400, 413, 422)


_huge = st.from_regex(
    r"-?(0|[1-9][0-9]{0,600})(\.[0-9]{1,60})?([eE][+-]?[0-9]{1,7})?", fullmatch=True
) | st.sampled_from(["1e308", "1.7976931348623157e308", "1.8e308", "-1e400", "5e-324", "1e-400"])


@FAST
@given(literal=_huge, key=st.sampled_from(["bmi", "pregnancies", "glucose"]))
def test_huge_and_tiny_numbers_are_finite_answers_or_named_422s(
    service: Service, literal: str, key: str
) -> None:
    body = json.dumps({**json.loads(PIMA_EXAMPLE), key: "SLOT"}).replace('"SLOT"', literal)
    response = _post(service, body.encode())
    value = float(literal)
    whole = next(f for f in service.source.predictor.features.features if f.key == key)  # type: ignore[union-attr]
    if math.isfinite(value) and (whole.type != "integer" or value.is_integer()):
        assert_answers(service, response, None)
    else:
        error = assert_error(response, 422)
        assert [d.field for d in error.details] == [key]


@pytest.mark.parametrize(
    "token",
    ["NaN", "-NaN", "nan", "Infinity", "-Infinity", "+Infinity", "inf", "+1", "01", ".5", "1.",
     "1e", "0x10", "1_0", "--1", "undefined", "None", "True"],
)  # fmt: skip
@pytest.mark.parametrize("content_type", ["", "application/json", "text/plain"])
def test_non_json_number_tokens_are_malformed(
    service: Service, token: str, content_type: str
) -> None:
    body = PIMA_EXAMPLE.replace(b"33.6", token.encode())
    assert_error(_post(service, body, content_type), 400)


@pytest.mark.parametrize(
    "text",
    ["NaN", "nan", "Infinity", "-inf", "1e999", "1_0", "0x10", "", "0\x1f", "\x1c1", "1\x1d"],
)
def test_non_numbers_in_strings_are_refused_by_field(service: Service, text: str) -> None:
    body = json.dumps({**json.loads(PIMA_EXAMPLE), "bmi": text}).encode()
    error = assert_error(_post(service, body), 422)
    assert [d.field for d in error.details] == ["bmi"]


@FAST
@given(key=st.sampled_from(PIMA_KEYS), first=_scalars, batch=st.booleans())
def test_a_repeated_key_takes_its_last_value_like_json_parse(
    service: Service, key: str, first: object, batch: bool
) -> None:
    # RFC 8259 leaves repeated names to the parser; modelapi does what JavaScript's JSON.parse
    # and Python's json do (the last one wins), whichever path decodes the body.
    text = PIMA_EXAMPLE.decode()
    repeated = "{" + json.dumps(key) + ": " + json.dumps(first) + ", " + text[1:]
    if batch:
        text, repeated = f"[{text}]", f"[{repeated}]"
    answer = _post(service, text.encode())
    assert answer.status == 200
    assert _post(service, repeated.encode()).body == answer.body


def test_a_feature_given_by_key_and_column_is_refused(service: Service) -> None:
    body = PIMA_EXAMPLE.replace(b"{", b'{"Glucose": 148, ', 1)
    error = assert_error(_post(service, body), 422)
    assert [(d.field, d.reason) for d in error.details] == [
        ("glucose", "is given twice (as glucose and Glucose)")
    ]


_invalid_utf8 = st.sampled_from(
    [b"\xff", b"\xfe\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]
)


@FAST
@given(
    bad=_invalid_utf8,
    position=st.integers(0, len(PIMA_EXAMPLE)),
    content_type=st.sampled_from(JSON_TYPES + CSV_TYPES),
)
def test_invalid_utf8_anywhere_is_malformed(
    service: Service, bad: bytes, position: int, content_type: str
) -> None:
    if content_type in CSV_TYPES:
        good = b"Glucose,BMI\n148,33.6\n"
        position %= len(good) + 1
    else:
        good = PIMA_EXAMPLE
    body = good[:position] + bad + good[position:]
    assert_error(_post(service, body, content_type), 400)


@pytest.mark.parametrize("body", [b"", b" ", b"\n", b"\r\n\t ", b"\xef\xbb\xbf", b"\x00"])
@pytest.mark.parametrize("content_type", JSON_TYPES + CSV_TYPES)
def test_empty_bodies_are_malformed(service: Service, body: bytes, content_type: str) -> None:
    assert_error(_post(service, body, content_type), 400, 422)


@FAST
@given(
    body=st.binary(max_size=300),
    content_type=st.sampled_from([*JSON_TYPES, *CSV_TYPES, "image/png", "x", ";", "text/csv;;"])
    | st.text(max_size=30),
)
def test_random_bytes_are_refused_with_the_error_shape(
    service: Service, body: bytes, content_type: str
) -> None:
    response = _post(service, body, content_type)
    if response.status != 200:
        assert_error(response)


_csv_names = st.sampled_from(
    ["Pregnancies", "Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI",
     "DiabetesPedigreeFunction", "Age", "glucose", "bmi", "Outcome", "", "x"]
)  # fmt: skip
_cells = st.sampled_from(["1", "33.6", "", "nan", "1e999", "-0", " 7 ", "x", '"', "1,2"])


@FAST
@given(
    header=st.lists(_csv_names, max_size=10),
    rows=st.lists(st.lists(_cells, max_size=10), max_size=5),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_any_csv_is_answered_or_refused_with_the_error_shape(
    service: Service, header: list[str], rows: list[list[str]], newline: str
) -> None:
    text = newline.join(",".join(line) for line in [header, *rows]) + newline
    response = _post(service, text.encode(), "text/csv")
    if response.status == 200:
        lines = response.body.decode().splitlines()
        assert lines[0] == "outcome,probability_0,probability_1"
        assert len(lines) == 1 + sum(1 for row in rows if row)
    else:
        assert_error(response, 400, 422)


@FAST
@given(
    header=st.lists(_csv_names, max_size=10, unique=True),
    rows=st.lists(st.just("6,148,72,35,0,33.6,0.627,50"), max_size=2),
)
def test_a_csv_header_without_every_feature_is_refused_naming_them(
    service: Service, header: list[str], rows: list[str]
) -> None:
    features = service.source.predictor.features.features  # type: ignore[union-attr]
    missing = [f.key for f in features if f.key not in header and f.column not in header]
    if not missing:
        return
    text = "\n".join([",".join(header), *rows]) + "\n"
    error = assert_error(_post(service, text.encode(), "text/csv"), 400, 422)
    if error.error == "invalid_input":
        named = " ".join(d.reason for d in error.details if d.field == "header")
        assert all(key in named for key in missing), error
    else:
        assert header == [], "only a body without a header row is malformed"


# ---- predictions that leave the range of a double --------------------------------------------


def _linear(kind: str, weights: Sequence[float], classes: tuple[int, ...] | None) -> Predictor:
    """A two-feature linear model with the given weights (no scikit-learn involved)."""
    spec = {"kind": kind, "intercept": [0.5], "weights": [[w] for w in weights]}
    features = (
        Feature(column="A", key="a", type="number"),
        Feature(column="B", key="b", type="number"),
    )
    return linear_predictor(spec, features, classes, name="wide")


_WEIGHTS = (4.0, -3.0)
_finite = st.floats(allow_nan=False, allow_infinity=False)


def _decision(a: float, b: float) -> float:
    """The model's decision value, computed as the linear model does, in plain floats."""
    return 0.5 + _WEIGHTS[0] * a + _WEIGHTS[1] * b


@pytest.mark.parametrize(
    ("kind", "classes", "is_finite"),
    [
        ("regression", None, math.isfinite),
        # A classifier's probabilities stay defined for +/-inf, but not for inf - inf (NaN).
        ("logistic", (0, 1), lambda z: not math.isnan(z)),
    ],
)
def test_a_prediction_out_of_range_is_a_422_never_null(
    kind: str, classes: tuple[int, ...] | None, is_finite: Callable[[float], bool]
) -> None:
    service = _service(_linear(kind, _WEIGHTS, classes))

    @FAST
    @given(a=_finite, b=_finite, batch=st.integers(0, 3))
    def check(a: float, b: float, batch: int) -> None:
        row = {"a": a, "b": b}
        good = {"a": 1.0, "b": 2.0}
        payload: object = row if batch == 0 else [good] * (batch - 1) + [row]
        response = _post(service, json.dumps(payload).encode())
        if is_finite(_decision(a, b)):
            assert_answers(service, response, None if batch == 0 else batch)
        else:
            error = assert_error(response, 422)
            assert [d.reason for d in error.details] == [OUT_OF_RANGE]
            assert error.details[0].field == ("body" if batch <= 1 else f"[{batch - 1}]")

    check()
    # Reach the edge on purpose, however the examples above fell.
    for a, b in [(1e308, 0.0), (1e308, 1e308), (-1e308, 1e308), (1e300, 1e300)]:
        response = _post(service, json.dumps({"a": a, "b": b}).encode())
        if is_finite(_decision(a, b)):
            assert_answers(service, response, None)
        else:
            assert_error(response, 422)


# ---- a real table: booleans, dates, a category, extra fields ---------------------------------

_REAL_FEATURES = (
    Feature(column="Autopay", key="autopay", type="boolean"),
    Feature(column="Signup", key="signup", type="datetime"),
    Feature(column="Plan", key="plan", type="category", categories=("basic", "pro")),
    Feature(column="Support Calls (last 90d)!", key="support_calls_last_90d", type="integer"),
)
_REAL_KEYS = [f.key for f in _REAL_FEATURES]
_real_values = st.one_of(
    _scalars,
    st.sampled_from(["True", "no", "YES", "1", "0", "2024-05-31", "2024-05-31T14:30:00+02:00"]),
    st.sampled_from(["2024-02-30", "1970-01-01t00:00z", "0001-01-01", "9999-12-31T23:59:59.5"]),
    st.sampled_from(["basic", "pro", "Basic", 1, 0]),
)


@st.composite
def _real_rows(draw: st.DrawFn) -> dict[str, object]:
    row: dict[str, object] = {
        "autopay": True,
        "signup": "2023-04-05",
        "plan": "pro",
        "support_calls_last_90d": 2,
    }
    for key in draw(st.lists(st.sampled_from(_REAL_KEYS), max_size=3, unique=True)):
        row[key] = draw(_real_values)
    for key in draw(st.lists(st.sampled_from(_REAL_KEYS), max_size=1, unique=True)):
        del row[key]
    for _ in range(draw(st.integers(0, 2))):
        row[draw(st.sampled_from(["customer_id", "churn", "Plan", "Autopay"]) | _names)] = draw(
            _scalars
        )
    return row


@pytest.fixture(scope="module")
def real_service() -> Service:
    """A service whose model has a boolean, a date, a category and an odd column name."""
    spec = {
        "kind": "regression",
        "intercept": [0.5],
        "weights": [[-0.7], [1e-4], {"basic": [0.5], "pro": [-0.5]}, [0.3]],
    }
    return _service(linear_predictor(spec, _REAL_FEATURES, None, name="real"))


@FAST
@given(payload=_real_rows() | st.lists(_real_rows(), max_size=5))
def test_a_real_tables_rows_are_answered_exactly_when_the_feature_table_accepts_them(
    real_service: Service, payload: object
) -> None:
    response = _post(real_service, json.dumps(payload).encode())
    accepted, n_rows = _accepts(real_service, payload)
    if accepted:
        assert_answers(real_service, response, n_rows)
    else:
        error = assert_error(response, 422)
        assert MARKER not in msgspec.json.encode(error).decode()
