"""The event fixtures in tests/events and what each one asks the service, for every Lambda test."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import PIMA_EXAMPLE, REPO_ROOT

__all__ = [
    "CONTRACT_ROW",
    "EVENTS",
    "EVENTS_DIR",
    "EventCase",
    "all_event_files",
    "changed_event",
    "event_body",
    "load_event",
]

EVENTS_DIR = REPO_ROOT / "tests" / "events"
# The contract row [6,148,72,35,0,33.6,0.627,50], which predicts 1.
CONTRACT_ROW = (
    b'{"pregnancies": 6, "glucose": 148, "blood_pressure": 72, "skin_thickness": 35,'
    b' "insulin": 0, "bmi": 33.6, "diabetes_pedigree_function": 0.627, "age": 50}'
)
_SLS_INVOKE_BODY = (
    b'{ "pregnancies": 2, "glucose": 148, "blood_pressure": 72, "skin_thickness": 35,'
    b' "insulin": 0, "bmi": 33.6, "diabetes_pedigree_function": 0.674, "age": 22 }'
)


@dataclass(frozen=True)
class EventCase:
    """An event file, its answer format, and the HTTP request it stands for."""

    file: str
    shape: str  # rest | http | alb | alb_multi | direct_body | direct_plain
    method: str
    path: str
    body: bytes
    content_type: str = "application/json"


EVENTS = (
    EventCase("rest_v1_ping.json", "rest", "GET", "/ping", b""),
    EventCase("rest_v1_health.json", "rest", "GET", "/health", b""),
    EventCase("rest_v1_predict.json", "rest", "POST", "/predict", PIMA_EXAMPLE),
    EventCase("rest_v1_predict_base64.json", "rest", "POST", "/predict", CONTRACT_ROW),
    EventCase("rest_v1_predict_missing_body.json", "rest", "POST", "/predict", b""),
    EventCase("http_v2_default_ping.json", "http", "GET", "/ping", b""),
    EventCase("http_v2_default_predict.json", "http", "POST", "/predict", CONTRACT_ROW),
    EventCase("http_v2_stage_predict.json", "http", "POST", "/predict", PIMA_EXAMPLE),
    EventCase("http_v2_stage_model.json", "http", "GET", "/model", b""),
    EventCase("http_v2_predict_base64.json", "http", "POST", "/predict", PIMA_EXAMPLE),
    EventCase("http_v2_unknown_route.json", "http", "GET", "/nowhere", b""),
    EventCase("function_url_ping.json", "http", "GET", "/ping", b""),
    EventCase("function_url_predict.json", "http", "POST", "/predict", PIMA_EXAMPLE),
    EventCase("function_url_predict_base64.json", "http", "POST", "/predict", CONTRACT_ROW),
    EventCase("alb_ping.json", "alb", "GET", "/ping", b""),
    EventCase("alb_predict.json", "alb", "POST", "/predict", PIMA_EXAMPLE),
    EventCase("alb_multi_value_predict.json", "alb_multi", "POST", "/predict", CONTRACT_ROW),
    EventCase("direct_body_sls_invoke.json", "direct_body", "POST", "/predict", _SLS_INVOKE_BODY),
    EventCase("direct_body_invalid.json", "direct_body", "POST", "/predict", b'{"pregnancies": 2}'),
    EventCase(
        "direct_plain_features.json", "direct_plain", "POST", "/predict", b"", "application/json"
    ),
    EventCase("direct_plain_batch.json", "direct_plain", "POST", "/predict", b""),
    EventCase("direct_plain_invalid.json", "direct_plain", "POST", "/predict", b""),
)


def load_event(name: str) -> object:
    """Read one event fixture."""
    return json.loads((EVENTS_DIR / name).read_text())


def changed_event(name: str, **fields: object) -> dict[str, object]:
    """Read one event fixture with some of its top-level fields replaced."""
    event = load_event(name)
    assert isinstance(event, dict)
    event.update(fields)
    return event


def event_body(case: EventCase) -> bytes:
    """The request body a case stands for (a plain direct invocation is its own body)."""
    if case.shape == "direct_plain":
        return json.dumps(load_event(case.file)).encode()
    return case.body


def all_event_files() -> list[Path]:
    """Every fixture file, so a new one without a case is noticed."""
    return sorted(EVENTS_DIR.glob("*.json"))
