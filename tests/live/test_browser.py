"""The pages in a real browser: headless Chromium against uvicorn on 127.0.0.1, network off.

Debian's chromium is driven by Playwright (never `playwright install`): install it with
`scripts/install-test-tools` or `apt-get install chromium`. Without it these tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelapi.config import Settings
from modelapi.predictor import Predictor
from tests.conftest import PIMA_EXAMPLE, require_tool
from tests.servers import serve_model

CHROMIUM = os.environ.get("MODELAPI_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_tool(CHROMIUM, "run scripts/install-test-tools (or apt-get install chromium)")


if shutil.which(CHROMIUM) is not None:
    from playwright.sync_api import Browser, Page, Request, Route, sync_playwright


@pytest.fixture(scope="module")
def live_url(pima_predictor: Predictor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app serving the Pima model under uvicorn on a free port of 127.0.0.1."""
    settings = Settings(store=str(tmp_path_factory.mktemp("models")), reload_interval_s=0)
    with serve_model(pima_predictor, settings) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Offline:
    """A page whose every request off 127.0.0.1 is refused and recorded, plus its errors."""

    def __init__(self, browser: Browser, live_url: str) -> None:
        self.live_url = live_url
        self.context = browser.new_context(viewport={"width": 1000, "height": 900})
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.requested: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", self._request)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )

    def _request(self, request: Request) -> None:
        self.requested.append(request.url)

    def _route(self, route: Route) -> None:
        if route.request.url.startswith(self.live_url + "/") or route.request.url.startswith(
            "data:"
        ):
            route.continue_()
        else:
            route.abort("internetdisconnected")

    def outside(self) -> list[str]:
        """Requests that tried to leave the test server."""
        return [
            url
            for url in self.requested
            if not url.startswith(self.live_url + "/") and not url.startswith("data:")
        ]


@pytest.fixture
def offline(browser: Browser, live_url: str) -> Iterator[Offline]:
    session = Offline(browser, live_url)
    yield session
    session.context.close()


def test_the_form_predicts_the_pima_example(
    offline: Offline, live_url: str, tmp_path: Path
) -> None:
    expected = httpx.post(f"{live_url}/predict", content=PIMA_EXAMPLE).json()
    label = str(expected["outcome"])
    probability = expected["probabilities"][label]

    page = offline.page
    page.goto(f"{live_url}/")
    assert page.title() == "diabetes - modelapi"
    assert page.locator("#result").is_hidden()
    for key, value in json.loads(PIMA_EXAMPLE).items():
        page.get_by_role("spinbutton", name=_label(key)).fill(str(value))
    page.get_by_role("button", name="Predict").click()
    page.locator("#result").wait_for(state="visible", timeout=10_000)

    assert page.locator("#answer").inner_text() == label
    assert page.locator("#probability").inner_text() == f"probability {100 * probability:.1f} %"
    rows = page.locator("#probabilities li").all_inner_texts()
    assert len(rows) == len(expected["probabilities"])
    assert page.locator("#version").inner_text() == "model diabetes:1"
    assert page.locator("#problem").is_hidden()

    screenshot = tmp_path / "form.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    assert offline.outside() == []
    assert offline.errors == []


def test_the_example_button_fills_the_form(offline: Offline, live_url: str) -> None:
    page = offline.page
    page.goto(f"{live_url}/")
    page.get_by_role("button", name="Fill in an example").click()
    values = {key: page.locator(f"#{key}").input_value() for key in json.loads(PIMA_EXAMPLE)}
    assert values == {k: str(v) for k, v in json.loads(PIMA_EXAMPLE).items()}
    page.get_by_role("button", name="Predict").click()
    page.locator("#result").wait_for(state="visible", timeout=10_000)
    assert page.locator("#answer").inner_text() in {"0", "1"}


def test_an_empty_field_is_refused_before_sending(offline: Offline, live_url: str) -> None:
    page = offline.page
    page.goto(f"{live_url}/")
    page.get_by_role("button", name="Fill in an example").click()
    page.locator("#glucose").fill("")
    predictions_before = offline.requested.count(f"{live_url}/predict")
    page.get_by_role("button", name="Predict").click()
    page.wait_for_timeout(200)
    assert offline.requested.count(f"{live_url}/predict") == predictions_before
    assert page.locator("#glucose").evaluate("element => element.validity.valueMissing")
    assert page.locator("#result").is_hidden()


def test_a_refusal_is_shown_next_to_its_field(offline: Offline, live_url: str) -> None:
    """The service's own 422 body (for a value no number input can hold) is shown by field."""
    row = json.loads(PIMA_EXAMPLE) | {"glucose": "high"}
    refusal = httpx.post(f"{live_url}/predict", json=row)
    assert refusal.status_code == 422
    page = offline.page
    page.route(
        f"{live_url}/predict",
        lambda route: route.fulfill(
            status=422, body=refusal.content, content_type="application/json"
        ),
    )
    page.goto(f"{live_url}/")
    page.get_by_role("button", name="Fill in an example").click()
    page.get_by_role("button", name="Predict").click()
    page.locator("#problem").wait_for(state="visible", timeout=10_000)
    reason = refusal.json()["details"][0]["reason"]
    assert page.locator("#reason-glucose").inner_text() == reason
    assert page.locator("#glucose").get_attribute("aria-invalid") == "true"
    assert page.locator("#problem li").all_inner_texts() == [f"glucose: {reason}"]
    assert page.locator("#result").is_hidden()


def test_docs_render_swagger_ui_with_the_network_off(
    offline: Offline, live_url: str, tmp_path: Path
) -> None:
    page = offline.page
    page.goto(f"{live_url}/docs")
    title = page.locator(".swagger-ui .info .title")
    title.wait_for(timeout=15_000)
    assert "diabetes prediction API" in title.inner_text()
    document = httpx.get(f"{live_url}/openapi.json").json()
    n_operations = sum(len(item) for item in document["paths"].values())
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() == n_operations
    page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    assert f"{live_url}/openapi.json" in offline.requested
    assert offline.outside() == []
    assert offline.errors == []


def _label(key: str) -> str:
    return "BMI" if key == "bmi" else key.replace("_", " ").capitalize()


def test_a_value_outside_the_training_range_is_answered_with_a_warning(
    offline: Offline, live_url: str
) -> None:
    page = offline.page
    page.goto(f"{live_url}/")
    page.get_by_role("button", name="Fill in an example").click()
    assert page.locator("#warning-pregnancies").inner_text() == ""
    page.locator("#pregnancies").fill("999")
    warning = page.locator("#warning-pregnancies").inner_text()
    assert warning == "outside the training range 0 to 17: the answer may not be reliable"
    assert page.locator("#warning-glucose").inner_text() == ""
    page.get_by_role("button", name="Predict").click()
    page.locator("#result").wait_for(state="visible", timeout=10_000)
    row = json.loads(PIMA_EXAMPLE) | {"pregnancies": 999}
    expected = httpx.post(f"{live_url}/predict", json=row).json()
    assert page.locator("#answer").inner_text() == str(expected["outcome"])
    caution = page.locator("#caution")
    assert caution.is_visible()
    assert caution.inner_text() == (
        "Outside the training range: pregnancies. See the training report."
    )
    page.locator("#pregnancies").fill("3")
    assert page.locator("#warning-pregnancies").inner_text() == ""


def test_the_page_links_the_training_report(offline: Offline, live_url: str) -> None:
    page = offline.page
    page.goto(f"{live_url}/")
    link = page.get_by_role("link", name="Training report")
    assert link.get_attribute("href") == "model/report"
    with page.expect_navigation():
        link.click()
    assert page.url == f"{live_url}/model/report"
