"""The conformance table against the ASGI app in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelapi.app import App, create_app
from tests.conformance import SETUPS, Case, Setup, check, params
from tests.http.asgi import asgi_send

_apps: dict[str, App] = {}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, App]:
    """One app per setup, over an empty store."""
    store = Path(tmp_path_factory.mktemp("store"))
    built = {setup.id: create_app(setup.settings(str(store))) for setup in SETUPS}
    yield built  # type: ignore[misc]
    for app in built.values():
        app.close()


@pytest.mark.parametrize(
    ("setup", "case"),
    [pair for setup in SETUPS for pair in params(setup)],
    ids=[f"{setup.id}-{case.id}" for setup in SETUPS for case in setup.cases],
)
def test_conformance(apps: dict[str, App], setup: Setup, case: Case) -> None:
    check(case, asgi_send(apps[setup.id]))


def test_case_ids_are_unique() -> None:
    for setup in SETUPS:
        ids = [case.id for case in setup.cases]
        assert len(ids) == len(set(ids)), setup.id
