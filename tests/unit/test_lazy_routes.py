"""The documentation, page, V2 and /invocations routes are in the route table but imported when
first called."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from modelapi import service as service_module
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.service import Request, Service
from modelapi.source import ModelSource
from tests.conftest import PIMA_EXAMPLE

_MODULES = (
    "modelapi.routes.openapi",
    "modelapi.routes.swagger",
    "modelapi.routes.page",
    "modelapi.routes.v2",
    "modelapi.invocations",
)


def test_lazy_table_is_every_route_of_those_modules() -> None:
    expected = {
        (path, method, name)
        for name in _MODULES
        for path, methods in importlib.import_module(name).ROUTES.items()
        for method in methods
    }
    lazy = {
        (path, method, name)
        for path, (name, methods) in service_module._LAZY_ROUTES.items()
        for method in methods
    }
    assert lazy == expected


def test_lazy_handlers_run_and_are_documented_as_the_real_ones(
    pima_predictor: Predictor, settings: Settings
) -> None:
    service = Service(ModelSource.of(pima_predictor), settings)
    for path, (name, methods) in service_module._LAZY_ROUTES.items():
        real = importlib.import_module(name).ROUTES[path]
        for method in methods:
            assert service.routes[path][method].__doc__ == real[method].__doc__
    direct = importlib.import_module("modelapi.routes.v2").ROUTES["/v2"]["GET"]
    request = Request("GET", "/v2")
    assert service.handle(request) == direct(service, request)


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
print(",".join(m for m in {_MODULES!r} if m in sys.modules))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == ""
