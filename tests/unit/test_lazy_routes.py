"""Every route is declared once, in `routes.ROUTES`; other modules load on their first call."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from modelapi.config import Settings
from modelapi.metrics import Metrics
from modelapi.predictor import Predictor
from modelapi.routes import ROUTES
from modelapi.service import Request, Service
from modelapi.source import ModelSource
from tests.conftest import PIMA_EXAMPLE

_MODULES = (
    "modelapi.routes.openapi",
    "modelapi.routes.swagger",
    "modelapi.routes.page",
    "modelapi.routes.v2",
    "modelapi.routes.invocations",
)


def _real(handler: str) -> object:
    module, _, attribute = handler.partition(":")
    found: object = importlib.import_module(module)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def test_the_dispatch_table_is_the_declared_routes(pima_predictor: Predictor) -> None:
    service = Service(ModelSource.of(pima_predictor), Settings(), metrics=Metrics())
    declared = {(route.path, method) for route in ROUTES for method in route.methods}
    served = {(path, method) for path, methods in service.routes.items() for method in methods}
    assert served == declared
    assert len(declared) == sum(len(route.methods) for route in ROUTES), "a route twice"
    # The lazy modules are those the handlers name.
    lazy = {route.handler.partition(":")[0] for route in ROUTES} - {"modelapi.service"}
    assert set(_MODULES) <= lazy


def test_metrics_is_served_only_with_metrics(pima_predictor: Predictor) -> None:
    without = Service(ModelSource.of(pima_predictor), Settings())
    assert "/metrics" not in without.routes
    assert "/metrics" not in [route.path for route in without.declared_routes]
    with_metrics = Service(ModelSource.of(pima_predictor), Settings(), metrics=Metrics())
    assert "/metrics" in with_metrics.routes


def test_lazy_handlers_run_and_are_documented_as_the_real_ones(
    pima_predictor: Predictor, settings: Settings
) -> None:
    service = Service(ModelSource.of(pima_predictor), settings, metrics=Metrics())
    for route in ROUTES:
        real = _real(route.handler)
        assert callable(real), route.handler
        for method in route.methods:
            assert service.routes[route.path][method].__doc__ == real.__doc__
    direct = _real("modelapi.routes.v2:server_metadata")
    request = Request("GET", "/v2")
    assert callable(direct)
    assert service.handle(request) == direct(service, request)


def test_the_hot_routes_are_the_service_functions_themselves(pima_predictor: Predictor) -> None:
    service = Service(ModelSource.of(pima_predictor), Settings())
    assert service.routes["/ping"]["GET"] is Service.ping
    assert service.routes["/predict"]["POST"] is Service.predict


@pytest.mark.parametrize("entry", ["modelapi.app", "modelapi.aws_lambda"])
def test_serving_a_prediction_imports_none_of_them(entry: str) -> None:
    code = f"""
import sys
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.service import Request, Service
from modelapi.source import ModelSource
import {entry}
service = Service(ModelSource("diabetes", None), Settings())
answer = service.handle(Request("POST", "/predict", {{}}, {PIMA_EXAMPLE!r}))
assert answer.status == 200, answer
assert service.handle(Request("GET", "/ping")).status == 200
print(",".join(m for m in {_MODULES!r} if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
