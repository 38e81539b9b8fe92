"""The conformance table: requests and the answers every adapter must give, byte for byte.

Each adapter (the ASGI app in process, uvicorn on a real socket, the Lambda handler) is
driven through one function, `send(method, path, headers, body) -> (status, headers, body)`
with lower-case header names, and must pass every case of every setup:

    for setup in SETUPS:
        send = make_adapter(setup.settings(store=tmp_path))
        for case in setup.cases:
            check(case, send)

Expected prediction values are computed from the built-in bundle here, never written down,
except the contract row, which must predict 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
import pytest

from modelapi.answers import format_probability
from modelapi.config import Settings
from modelapi.predictor import Predictor
from tests.conftest import PIMA_COLUMNS, PIMA_EXAMPLE
from tests.oracles import answer

__all__ = [
    "API_KEY",
    "MARKER",
    "SETUPS",
    "Answer",
    "Case",
    "Send",
    "Setup",
    "check",
    "params",
]

Answer = tuple[int, Mapping[str, str], bytes]
Send = Callable[[str, str, Mapping[str, str], bytes], Answer]
Expect = Callable[[Answer], None]

API_KEY = "conformance-key-7f3a9c"
# A value no error message may ever echo (health data must not come back or be logged).
MARKER = "4815162342.0001"
FORM = "application/x-www-form-urlencoded"
CSV = "text/csv"
KEYS = (
    "pregnancies",
    "glucose",
    "blood_pressure",
    "skin_thickness",
    "insulin",
    "bmi",
    "diabetes_pedigree_function",
    "age",
)
COLUMNS = PIMA_COLUMNS
EXAMPLE_ROW = (2, 148, 72, 35, 0, 33.6, 0.674, 22)
CONTRACT_ROW = (6, 148, 72, 35, 0, 33.6, 0.627, 50)


@dataclass(frozen=True)
class Case:
    """One request and what the answer must be."""

    id: str
    method: str
    path: str
    status: int
    expect: Expect
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Setup:
    """Settings (beyond the defaults and the store) and the cases that hold under them."""

    id: str
    overrides: Mapping[str, Any]
    cases: tuple[Case, ...]

    def settings(self, store: str) -> Settings:
        """The settings an adapter must be built with for this setup."""
        return Settings(store=store, reload_interval_s=0, **self.overrides)


def check(case: Case, send: Send) -> None:
    """Send a case through an adapter and assert the status and the body."""
    answer_ = send(case.method, case.path, case.headers, case.body)
    status, headers, body = answer_
    assert status == case.status, (case.id, status, body[:300])
    assert all(name == name.lower() for name in headers), "header names must be lower-case"
    case.expect(answer_)


def params(setup: Setup) -> list[tuple[Setup, Case]]:
    """(setup, case) pairs for pytest.mark.parametrize, ids from `ids`."""
    return [(setup, case) for case in setup.cases]


# ---- expectations ----------------------------------------------------------------------


@cache
def _predictor() -> Predictor:
    from modelapi.bundle import read_bundle
    from modelapi.store.builtin import BUILTIN_ROOT

    return Predictor(read_bundle(BUILTIN_ROOT / "diabetes" / "1"))


def _json(body: bytes) -> Any:
    return msgspec.json.decode(body)


def exact(expected: bytes, content_type: str = "application/json") -> Expect:
    """The body is exactly these bytes."""

    def expect(answer_: Answer) -> None:
        _, headers, body = answer_
        assert body == expected, body[:300]
        assert headers.get("content-type", "").startswith(content_type)

    return expect


def equals(expected: object) -> Expect:
    """The body is this JSON value."""

    def expect(answer_: Answer) -> None:
        assert _json(answer_[2]) == expected

    return expect


def predicted(*rows: tuple[float, ...], batch: bool = False, ignored: str | None = None) -> Expect:
    """The body answers these rows as the built-in model does, with the version header
    (and the X-Ignored-Fields header exactly when `ignored` names fields)."""
    predictor = _predictor()
    answers = [answer(predictor, p) for p in predictor.predict([list(r) for r in rows])]
    expected: object = answers if batch else answers[0]

    def expect(answer_: Answer) -> None:
        _, headers, body = answer_
        assert _json(body) == expected
        assert headers.get("content-type") == "application/json"
        assert headers.get("x-model-version") == "diabetes:1"
        assert headers.get("x-ignored-fields") == ignored

    return expect


def error(code: str, *fields: str, header: tuple[str, str] | None = None) -> Expect:
    """The one error shape, with this code, naming exactly these fields, echoing no value."""

    def expect(answer_: Answer) -> None:
        _, headers, body = answer_
        assert headers.get("content-type") == "application/json"
        decoded = _json(body)
        assert set(decoded) == {"error", "details"}
        assert decoded["error"] == code
        assert decoded["details"], "an error names at least one field"
        for detail in decoded["details"]:
            assert set(detail) == {"field", "reason"}
            assert isinstance(detail["reason"], str)
            assert detail["reason"]
        if fields:
            assert sorted(d["field"] for d in decoded["details"]) == sorted(fields)
        assert MARKER.encode() not in body
        assert b"Traceback" not in body
        if header is not None:
            assert headers.get(header[0]) == header[1], headers

    return expect


def _csv_answer_ignoring(ignored: str) -> Expect:
    """The CSV answer to the example and contract rows, naming the ignored columns."""

    def expect(answer_: Answer) -> None:
        _csv_answer(answer_)
        assert answer_[1].get("x-ignored-fields") == ignored

    return expect


def _csv_answer(answer_: Answer) -> None:
    _, headers, body = answer_
    assert headers.get("content-type", "").startswith("text/csv")
    lines = body.decode().splitlines()
    predictor = _predictor()
    expected = predictor.predict([list(EXAMPLE_ROW), list(CONTRACT_ROW)])
    assert lines[0] == "outcome,probability_0,probability_1"
    assert len(lines) == 3
    for line, (label, probs) in zip(lines[1:], expected, strict=True):
        cells = line.split(",")
        assert int(cells[0]) == label
        # CSV answers write probabilities with 15 decimals, as `modelapi predict` does.
        assert cells[1:] == [format_probability(p) for p in probs or ()]
        assert [float(c) for c in cells[1:]] == pytest.approx(list(probs or ()), abs=6e-16)
    assert int(lines[2].split(",")[0]) == 1  # the contract row


def _contract(answer_: Answer) -> None:
    decoded = _json(answer_[2])
    assert decoded["outcome"] == 1
    assert math.isclose(sum(decoded["probabilities"].values()), 1.0)


def _empty(answer_: Answer) -> None:
    assert answer_[2] == b""


def _manifest(answer_: Answer) -> None:
    decoded = _json(answer_[2])
    assert (decoded["name"], decoded["version"]) == ("diabetes", 1)
    assert [f["key"] for f in decoded["features"]] == list(KEYS)
    assert decoded["artifacts"]
    assert all(len(a["sha256"]) == 64 for a in decoded["artifacts"].values())
    assert answer_[1].get("x-model-version") == "diabetes:1"


def _text(answer_: Answer) -> None:
    _, headers, body = answer_
    assert headers.get("content-type", "").startswith("application/json")
    assert body


# ---- bodies ------------------------------------------------------------------------------


def obj(row: tuple[object, ...] = EXAMPLE_ROW, names: tuple[str, ...] = KEYS) -> dict[str, object]:
    """A JSON object for a row."""
    return dict(zip(names, row, strict=True))


def body(value: object) -> bytes:
    """JSON-encode a value."""
    return msgspec.json.encode(value)


def _with(**changes: object) -> bytes:
    values = obj()
    values.update(changes)
    return body(values)


def _dict(**changes: object) -> dict[str, object]:
    values = obj()
    values.update(changes)
    return values


def _without(*keys: str) -> bytes:
    return body({k: v for k, v in obj().items() if k not in keys})


_CSV_BODY = (
    ",".join(COLUMNS)
    + "\n"
    + ",".join(map(str, EXAMPLE_ROW))
    + "\n"
    + ",".join(map(str, CONTRACT_ROW))
    + "\n"
).encode()
_CSV_WITH_EXTRAS = (
    "id," + ",".join(COLUMNS) + ",Outcome\n"
    f"a,{','.join(map(str, EXAMPLE_ROW))},0\n"
    f"b,{','.join(map(str, CONTRACT_ROW))},1\n"
).encode()
_STRINGS = body({k: str(v) for k, v in obj().items()})
_MAX_ROWS = 5
_MAX_BODY = 8192

_INFER = "/v2/models/diabetes/infer"
_TWICE = ("outcome", "probabilities", "probabilities")
# More unknown fields than an error body lists.
_N_UNKNOWN = 150


def _infer(row: tuple[object, ...] = EXAMPLE_ROW) -> dict[str, object]:
    return {
        "inputs": [
            {"name": key, "shape": [1], "datatype": "FP64", "data": [value]}
            for key, value in zip(KEYS, row, strict=True)
        ]
    }


def _capped_details(n_problems: int) -> Expect:
    """A 422 listing the first 100 problems, then one detail counting the rest."""

    def expect(answer_: Answer) -> None:
        from modelapi.service import MAX_ERROR_DETAILS

        error("invalid_input")(answer_)
        details = _json(answer_[2])["details"]
        assert len(details) == MAX_ERROR_DETAILS + 1
        more = n_problems - MAX_ERROR_DETAILS
        assert details[-1] == {
            "field": "body",
            "reason": f"{more} more problems were not listed; fix these and send it again",
        }

    return expect


# ---- the cases ---------------------------------------------------------------------------

_P = "/predict"
_ALL_MISSING = KEYS

DEFAULT_CASES: tuple[Case, ...] = (
    Case("ping", "GET", "/ping", 200, exact(b'{"ping": "pong"}')),
    Case("ping-head", "HEAD", "/ping", 200, _empty),
    Case(
        "predict-curl-default-form",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW),
        PIMA_EXAMPLE,
        {"content-type": FORM},
    ),
    Case("predict-no-content-type", "POST", _P, 200, predicted(EXAMPLE_ROW), PIMA_EXAMPLE),
    Case(
        "predict-json",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW),
        PIMA_EXAMPLE,
        {"content-type": "application/json"},
    ),
    Case(
        "predict-json-charset",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW),
        PIMA_EXAMPLE,
        {"content-type": "Application/JSON; charset=utf-8"},
    ),
    Case(
        "predict-text-plain",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW),
        PIMA_EXAMPLE,
        {"content-type": "text/plain"},
    ),
    Case(
        "predict-csv-column-names",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW),
        body(obj(names=COLUMNS)),
    ),
    Case("predict-numeric-strings", "POST", _P, 200, predicted(EXAMPLE_ROW), _STRINGS),
    Case(
        "predict-whole-floats",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW),
        body(obj(tuple(float(v) for v in EXAMPLE_ROW))),
    ),
    Case(
        "predict-duplicate-key-last-wins",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW),
        b'{"age": 99,' + PIMA_EXAMPLE[1:],
    ),
    Case("predict-contract-row", "POST", _P, 200, _contract, body(obj(CONTRACT_ROW))),
    Case(
        "predict-batch",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW, CONTRACT_ROW, batch=True),
        body([obj(), obj(CONTRACT_ROW)]),
    ),
    Case("predict-batch-empty", "POST", _P, 200, equals([]), b"[]"),
    Case(
        "predict-batch-at-limit",
        "POST",
        _P,
        200,
        predicted(*[EXAMPLE_ROW] * _MAX_ROWS, batch=True),
        body([obj()] * _MAX_ROWS),
    ),
    Case("predict-csv", "POST", _P, 200, _csv_answer, _CSV_BODY, {"content-type": CSV}),
    Case("model", "GET", "/model", 200, _manifest),
    Case("health", "GET", "/health", 200, equals({"status": "ok", "model": "diabetes:1"})),
    # 400: the body is not JSON (or not CSV) at all
    Case("malformed-json", "POST", _P, 400, error("malformed_body", "body"), b'{"glucose": '),
    Case("malformed-empty", "POST", _P, 400, error("malformed_body", "body"), b""),
    Case(
        "malformed-nan-token",
        "POST",
        _P,
        400,
        error("malformed_body", "body"),
        _with(glucose=0).replace(b'"glucose":0', b'"glucose":NaN'),
    ),
    Case(
        "malformed-utf8",
        "POST",
        _P,
        400,
        error("malformed_body", "body"),
        b'{"glucose": "\xff\xfe"}',
    ),
    Case(
        "malformed-deep-nesting",
        "POST",
        _P,
        400,
        error("malformed_body", "body"),
        b"[" * 3000 + b"]" * 3000,
    ),
    Case(
        "malformed-trailing", "POST", _P, 400, error("malformed_body", "body"), PIMA_EXAMPLE + b"}"
    ),
    Case(
        "malformed-csv-utf8",
        "POST",
        _P,
        400,
        error("malformed_body", "body"),
        b"Glucose\n\xff\n",
        {"content-type": CSV},
    ),
    Case(
        "malformed-csv-empty",
        "POST",
        _P,
        400,
        error("malformed_body", "body"),
        b"",
        {"content-type": CSV},
    ),
    # 404 / 405
    Case("not-found", "GET", "/nope", 404, error("not_found", "path")),
    Case("not-found-long-path", "GET", "/" + MARKER * 20, 404, error("not_found", "path")),
    Case(
        "not-found-predict-slash",
        "POST",
        "/predict/",
        404,
        error("not_found", "path"),
        PIMA_EXAMPLE,
    ),
    Case(
        "method-get-predict",
        "GET",
        _P,
        405,
        error("method_not_allowed", "method", header=("allow", "POST")),
    ),
    Case(
        "method-delete-predict",
        "DELETE",
        _P,
        405,
        error("method_not_allowed", "method", header=("allow", "POST")),
    ),
    Case(
        "method-post-ping",
        "POST",
        "/ping",
        405,
        error("method_not_allowed", "method", header=("allow", "GET")),
    ),
    Case(
        "method-put-model",
        "PUT",
        "/model",
        405,
        error("method_not_allowed", "method", header=("allow", "GET")),
    ),
    # 413
    Case(
        "too-large-body",
        "POST",
        _P,
        413,
        error("payload_too_large", "body"),
        b" " * (_MAX_BODY + 1),
    ),
    Case(
        "too-many-rows",
        "POST",
        _P,
        413,
        error("payload_too_large", "body"),
        body([obj()] * (_MAX_ROWS + 1)),
    ),
    Case(
        "too-many-invalid-rows",
        "POST",
        _P,
        413,
        error("payload_too_large", "body"),
        body([{}] * (_MAX_ROWS + 1)),
    ),
    Case(
        "too-many-csv-rows",
        "POST",
        _P,
        413,
        error("payload_too_large", "body"),
        (
            ",".join(COLUMNS) + "\n" + (",".join(map(str, EXAMPLE_ROW)) + "\n") * (_MAX_ROWS + 1)
        ).encode(),
        {"content-type": CSV},
    ),
    # 415
    Case(
        "media-xml",
        "POST",
        _P,
        415,
        error("unsupported_media_type", "content-type"),
        PIMA_EXAMPLE,
        {"content-type": "application/xml"},
    ),
    Case(
        "media-multipart",
        "POST",
        _P,
        415,
        error("unsupported_media_type", "content-type"),
        PIMA_EXAMPLE,
        {"content-type": "multipart/form-data; boundary=x"},
    ),
    # 422: every bad field named at once, no value echoed
    Case("invalid-empty-object", "POST", _P, 422, error("invalid_input", *_ALL_MISSING), b"{}"),
    Case(
        "invalid-missing-two",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose", "age"),
        _without("glucose", "age"),
    ),
    # Extra fields are ignored (as pydantic and FastAPI do) and named in a header, never echoed.
    Case(
        "extra-field-ignored",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW, ignored="colour"),
        _with(colour=MARKER),
    ),
    Case(
        "extra-target-and-id-ignored",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW, CONTRACT_ROW, batch=True, ignored="Outcome, id"),
        body([_dict(Outcome=1, id="a"), {**obj(CONTRACT_ROW), "id": "b"}]),
    ),
    Case(
        "extra-csv-columns-ignored",
        "POST",
        _P,
        200,
        _csv_answer_ignoring("id, Outcome"),
        _CSV_WITH_EXTRAS,
        {"content-type": CSV},
    ),
    Case(
        "invalid-boolean", "POST", _P, 422, error("invalid_input", "glucose"), _with(glucose=True)
    ),
    Case("invalid-null", "POST", _P, 422, error("invalid_input", "glucose"), _with(glucose=None)),
    Case(
        "invalid-text",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose"),
        _with(glucose=MARKER + "x"),
    ),
    Case(
        "invalid-nan-string",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose"),
        _with(glucose="nan"),
    ),
    Case(
        "invalid-infinity-string",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose"),
        _with(glucose="Infinity"),
    ),
    Case(
        "invalid-huge-number",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose"),
        _with(glucose=0).replace(b'"glucose":0', b'"glucose":1e400'),
    ),
    Case(
        "invalid-huge-integer",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose"),
        _with(glucose=0).replace(b'"glucose":0', b'"glucose":1' + b"0" * 400),
    ),
    Case(
        "invalid-not-whole",
        "POST",
        _P,
        422,
        error("invalid_input", "pregnancies"),
        _with(pregnancies=2.5),
    ),
    Case(
        "invalid-nested",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose"),
        _with(glucose=[[MARKER]]),
    ),
    Case(
        "invalid-all-at-once",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose", "age", "bmi"),
        body(
            {
                **{k: v for k, v in obj().items() if k != "glucose"},
                "age": True,
                "bmi": MARKER + "!",
                "colour": 1,
            }
        ),
    ),
    Case(
        "invalid-twice-by-both-names",
        "POST",
        _P,
        422,
        error("invalid_input", "glucose"),
        _with(Glucose=148),
    ),
    Case("invalid-top-level-string", "POST", _P, 422, error("invalid_input", "body"), body(MARKER)),
    Case(
        "invalid-top-level-number",
        "POST",
        _P,
        422,
        error("invalid_input", "body"),
        b"4815162342.0001",
    ),
    Case("invalid-top-level-null", "POST", _P, 422, error("invalid_input", "body"), b"null"),
    Case(
        "invalid-batch-item", "POST", _P, 422, error("invalid_input", "[1]"), body([obj(), MARKER])
    ),
    Case(
        "invalid-batch-fields",
        "POST",
        _P,
        422,
        error("invalid_input", "[0].glucose", "[2].age"),
        body([_dict(glucose=MARKER + "x"), obj(), _dict(age=None)]),
    ),
    Case(
        "invalid-csv-cell",
        "POST",
        _P,
        422,
        error("invalid_input", "[0].glucose"),
        (
            ",".join(COLUMNS)
            + "\n"
            + ",".join(map(str, EXAMPLE_ROW)).replace("148", MARKER + "x")
            + "\n"
        ).encode(),
        {"content-type": CSV},
    ),
    Case(
        "invalid-csv-short-row",
        "POST",
        _P,
        422,
        error("invalid_input", "[0]"),
        (",".join(COLUMNS) + "\n1,2\n").encode(),
        {"content-type": CSV},
    ),
    Case(
        "v2-output-twice",
        "POST",
        _INFER,
        422,
        error("invalid_input", "outputs[2].name"),
        body({**_infer(), "outputs": [{"name": n} for n in _TWICE]}),
    ),
)

_BEARER = {"authorization": f"Bearer {API_KEY}"}
_UNAUTHORIZED = error("unauthorized", "authorization", header=("www-authenticate", "Bearer"))


def _challenged(answer_: Answer) -> None:
    # A HEAD answer: a server may drop the body, so only the challenge is checked.
    assert answer_[1].get("www-authenticate") == "Bearer"


API_KEY_CASES: tuple[Case, ...] = (
    Case("open-ping", "GET", "/ping", 200, exact(b'{"ping": "pong"}')),
    Case("open-health", "GET", "/health", 200, equals({"status": "ok", "model": "diabetes:1"})),
    Case("no-key", "POST", _P, 401, _UNAUTHORIZED, PIMA_EXAMPLE),
    Case("no-key-model", "GET", "/model", 401, _UNAUTHORIZED),
    Case("wrong-key", "POST", _P, 401, _UNAUTHORIZED, PIMA_EXAMPLE, {"x-api-key": API_KEY + "x"}),
    Case(
        "prefix-of-key", "POST", _P, 401, _UNAUTHORIZED, PIMA_EXAMPLE, {"x-api-key": API_KEY[:-1]}
    ),
    Case("empty-key", "POST", _P, 401, _UNAUTHORIZED, PIMA_EXAMPLE, {"x-api-key": ""}),
    Case("non-ascii-key", "POST", _P, 401, _UNAUTHORIZED, PIMA_EXAMPLE, {"x-api-key": "cl\u00e9"}),
    Case(
        "wrong-bearer",
        "POST",
        _P,
        401,
        _UNAUTHORIZED,
        PIMA_EXAMPLE,
        {"authorization": "Bearer nope"},
    ),
    Case(
        "basic-scheme",
        "POST",
        _P,
        401,
        _UNAUTHORIZED,
        PIMA_EXAMPLE,
        {"authorization": f"Basic {API_KEY}"},
    ),
    Case("bearer", "POST", _P, 200, predicted(EXAMPLE_ROW), PIMA_EXAMPLE, _BEARER),
    Case(
        "bearer-lower-case",
        "POST",
        _P,
        200,
        predicted(EXAMPLE_ROW),
        PIMA_EXAMPLE,
        {"authorization": f"bearer {API_KEY}"},
    ),
    Case(
        "x-api-key", "POST", _P, 200, predicted(EXAMPLE_ROW), PIMA_EXAMPLE, {"x-api-key": API_KEY}
    ),
    Case("key-model", "GET", "/model", 200, _manifest, b"", {"x-api-key": API_KEY}),
    Case(
        "key-invalid-input", "POST", _P, 422, error("invalid_input", *_ALL_MISSING), b"{}", _BEARER
    ),
    Case("no-key-unknown-route", "GET", "/nope", 401, _UNAUTHORIZED),
    Case("no-key-unknown-route-head", "HEAD", "/nope", 401, _challenged),
    Case("no-key-wrong-method", "DELETE", _P, 401, _UNAUTHORIZED),
    Case("no-key-v2-template", "GET", "/v2/models/other", 401, _UNAUTHORIZED),
    Case("key-unknown-route", "GET", "/nope", 404, error("not_found", "path"), b"", _BEARER),
    Case(
        "key-wrong-method", "DELETE", _P, 405, error("method_not_allowed", "method"), b"", _BEARER
    ),
)

_UNAVAILABLE = error("model_unavailable", "model")

NO_MODEL_CASES: tuple[Case, ...] = (
    Case("ping", "GET", "/ping", 200, exact(b'{"ping": "pong"}')),
    Case("health", "GET", "/health", 503, _UNAVAILABLE),
    Case("predict", "POST", _P, 503, _UNAVAILABLE, PIMA_EXAMPLE),
    Case("model", "GET", "/model", 503, _UNAVAILABLE),
    Case("csv", "POST", _P, 503, _UNAVAILABLE, _CSV_BODY, {"content-type": CSV}),
    Case(
        "still-415",
        "POST",
        _P,
        415,
        error("unsupported_media_type", "content-type"),
        PIMA_EXAMPLE,
        {"content-type": "image/png"},
    ),
    Case("still-413", "POST", _P, 413, error("payload_too_large", "body"), b" " * (_MAX_BODY + 1)),
    Case("still-404", "GET", "/nope", 404, error("not_found", "path")),
)

_HIDDEN = "the model is not loaded; the reason is in the server's log"


def _reason(hidden: bool) -> Expect:
    """A 503 whose reason is the generic one (hidden) or the loader's own (not hidden)."""

    def expect(answer_: Answer) -> None:
        _UNAVAILABLE(answer_)
        [detail] = _json(answer_[2])["details"]
        assert (detail["reason"] == _HIDDEN) is hidden, detail
        if not hidden:
            assert "no-such-model" in detail["reason"]

    return expect


NO_MODEL_API_KEY_CASES: tuple[Case, ...] = (
    Case("ping", "GET", "/ping", 200, exact(b'{"ping": "pong"}')),
    Case("health-no-key", "GET", "/health", 503, _reason(hidden=True)),
    Case(
        "health-wrong-key",
        "GET",
        "/health",
        503,
        _reason(hidden=True),
        b"",
        {"x-api-key": API_KEY[:-1]},
    ),
    Case("health-key", "GET", "/health", 503, _reason(hidden=False), b"", _BEARER),
    Case("predict-no-key", "POST", _P, 401, _UNAUTHORIZED, PIMA_EXAMPLE),
    Case("predict-key", "POST", _P, 503, _reason(hidden=False), PIMA_EXAMPLE, _BEARER),
)
_ANSWER_CAP = 1024
_ROWS_OVER_CAP = 40

ANSWER_CAP_CASES: tuple[Case, ...] = (
    Case("one-row", "POST", _P, 200, predicted(EXAMPLE_ROW), PIMA_EXAMPLE),
    Case(
        "batch-over-answer-cap",
        "POST",
        _P,
        413,
        error("payload_too_large", "body"),
        body([obj()] * _ROWS_OVER_CAP),
    ),
    Case(
        "csv-over-answer-cap",
        "POST",
        _P,
        413,
        error("payload_too_large", "body"),
        (",".join(COLUMNS) + "\n" + (",".join(map(str, EXAMPLE_ROW)) + "\n") * 40).encode(),
        {"content-type": CSV},
    ),
    Case(
        "v2-over-answer-cap",
        "POST",
        _INFER,
        413,
        error("payload_too_large", "body"),
        body(
            {
                "inputs": [
                    {
                        "name": key,
                        "shape": [_ROWS_OVER_CAP],
                        "datatype": "FP64",
                        "data": [value] * _ROWS_OVER_CAP,
                    }
                    for key, value in zip(KEYS, EXAMPLE_ROW, strict=True)
                ]
            }
        ),
    ),
)

# MODELAPI_EXTRA_FIELDS=forbid: a field or column that is not a feature is a 422 again.
FORBID_EXTRA_CASES: tuple[Case, ...] = (
    Case(
        "invalid-unknown-field",
        "POST",
        _P,
        422,
        error("invalid_input", "colour"),
        _with(colour=MARKER),
    ),
    Case(
        "invalid-unknown-fields-in-a-batch",
        "POST",
        _P,
        422,
        error("invalid_input", "[0].Outcome", "[1].id"),
        body([_dict(Outcome=1), {**obj(CONTRACT_ROW), "id": MARKER}]),
    ),
    Case(
        "invalid-extra-csv-columns",
        "POST",
        _P,
        422,
        error("invalid_input", "header", "header"),
        _CSV_WITH_EXTRAS,
        {"content-type": CSV},
    ),
    Case("features-only", "POST", _P, 200, predicted(EXAMPLE_ROW), PIMA_EXAMPLE),
    # 150 unknown fields: the first 100 are named, then one detail counts the rest.
    Case(
        "invalid-details-capped",
        "POST",
        _P,
        422,
        _capped_details(_N_UNKNOWN),
        body({**obj(), **{f"k{i:03}": 1 for i in range(_N_UNKNOWN)}}),
    ),
)

# ---- MLflow bodies and /invocations -----------------------------------------------------


def predictions(*rows: tuple[float, ...], ignored: str | None = None) -> Expect:
    """`{"predictions": [...]}` answering these rows as the array-of-objects body does."""
    predictor = _predictor()
    answers = [answer(predictor, p) for p in predictor.predict([list(r) for r in rows])]

    def expect(answer_: Answer) -> None:
        _, headers, body = answer_
        assert _json(body) == {"predictions": answers}
        assert headers.get("content-type") == "application/json"
        assert headers.get("x-model-version") == "diabetes:1"
        assert headers.get("x-ignored-fields") == ignored

    return expect


def _csv_lines(answer_: Answer) -> None:
    _, headers, body = answer_
    assert headers.get("content-type", "").startswith("text/csv")
    expected = _predictor().predict([list(EXAMPLE_ROW), list(CONTRACT_ROW)])
    lines = body.decode().splitlines()
    assert [line.split(",") for line in lines] == [
        [str(label), *map(format_probability, probs or ())] for label, probs in expected
    ]


_ROWS = [list(EXAMPLE_ROW), list(CONTRACT_ROW)]
_SPLIT = {"dataframe_split": {"columns": list(COLUMNS), "data": _ROWS}}
_I = "/invocations"
_JSON_TYPE = {"content-type": "application/json"}
COLUMNAR_CASES: tuple[Case, ...] = (
    Case("split-form", "POST", _P, 200, predictions(EXAMPLE_ROW, CONTRACT_ROW), body(_SPLIT)),
    Case(
        "records-params",
        "POST",
        _P,
        200,
        predictions(EXAMPLE_ROW, ignored="params"),
        body({"dataframe_records": [obj()], "params": {}}),
        {"content-type": "application/json"},
    ),
    Case(
        "invocations-instances",
        "POST",
        _I,
        200,
        predictions(EXAMPLE_ROW, CONTRACT_ROW),
        body({"instances": _ROWS}),
        _JSON_TYPE,
    ),
    Case(
        "invocations-csv-lines",
        "POST",
        _I,
        200,
        _csv_lines,
        _CSV_BODY.partition(b"\n")[2],
        {"content-type": CSV},
    ),
    Case("invocations-csv-header", "POST", _I, 200, _csv_answer, _CSV_BODY, {"content-type": CSV}),
    Case(
        "split-missing-column",
        "POST",
        _P,
        422,
        error("invalid_input", "dataframe_split.columns"),
        body({"dataframe_split": {"columns": list(COLUMNS[1:]), "data": [[1] * 7]}}),
    ),
    Case(
        "split-bad-value",
        "POST",
        _P,
        422,
        error("invalid_input", "dataframe_split.data[0].glucose"),
        body(
            {"dataframe_split": {"columns": list(COLUMNS), "data": [[1, MARKER + "x", *[1] * 6]]}}
        ),
    ),
    Case(
        "split-too-many-rows",
        "POST",
        _P,
        413,
        error("payload_too_large", "body"),
        body({"dataframe_split": {"columns": list(COLUMNS), "data": [[1] * 8] * (_MAX_ROWS + 1)}}),
    ),
    Case(
        "invocations-csv-lines-bad",
        "POST",
        _I,
        422,
        error("invalid_input", "[0]"),
        b"1,2,3\n",
        {"content-type": CSV},
    ),
)

_LIMITS = {"max_body_bytes": _MAX_BODY, "max_batch_rows": _MAX_ROWS}

SETUPS: tuple[Setup, ...] = (
    Setup("default", _LIMITS, DEFAULT_CASES),
    Setup("api-key", {**_LIMITS, "api_key": API_KEY}, API_KEY_CASES),
    Setup("no-model", {**_LIMITS, "model": "no-such-model"}, NO_MODEL_CASES),
    Setup(
        "no-model-api-key",
        {**_LIMITS, "model": "no-such-model", "api_key": API_KEY},
        NO_MODEL_API_KEY_CASES,
    ),
    Setup(
        "answer-cap",
        {"max_body_bytes": _MAX_BODY, "max_answer_bytes": _ANSWER_CAP},
        ANSWER_CAP_CASES,
    ),
    Setup("forbid-extra", {**_LIMITS, "extra_fields": "forbid"}, FORBID_EXTRA_CASES),
    Setup("columnar", _LIMITS, COLUMNAR_CASES),
)
