"""The pages for people: the form at / and Swagger UI at /docs, both self-contained."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from html.parser import HTMLParser

import msgspec
import pytest

from modelapi.app import App
from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.routes import swagger as docs
from modelapi.service import Request, Response
from tests.http.toy_models import HOSTILE_CATEGORY, running_app, toy_predictor


class Page(HTMLParser):
    """The elements of a page as (tag, attributes), and the text of its script/style elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, list[str]] = {}
        self._open: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._open = tag if tag in ("script", "style", "label", "option") else None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.texts.setdefault(self._open, []).append(data)

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [
            a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def get(app: App, path: str) -> Response:
    return app.service.handle(Request("GET", path))


def csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_form_has_a_labelled_input_per_feature(app: App, pima_predictor: Predictor) -> None:
    response = get(app, "/")
    assert response.status == 200
    assert response.content_type == "text/html; charset=utf-8"
    html = response.body.decode()
    page = Page(html)
    for feature in pima_predictor.manifest.features:
        (control,) = page.find("input", id=feature.key)
        assert control["name"] == feature.key
        assert control["type"] == "number"
        assert control["step"] == ("1" if feature.type == "integer" else "any")
        assert control["placeholder"] == f"{feature.min:g} - {feature.max:g}"
        assert "min" not in control, "the training range is a hint, not a limit"
        assert "required" in control
        assert page.find("label", **{"for": feature.key})
        assert control["aria-describedby"] == f"hint-{feature.key}"
        assert len(page.find("small", id=f"hint-{feature.key}")) == 1
        assert f"training range {feature.min:g} to {feature.max:g}" in html
    assert "Blood pressure" in page.texts["label"]
    assert "BMI" in page.texts["label"]
    assert page.find("button", type="submit")


def test_the_script_knows_each_number_s_training_range(app: App, pima_predictor: Predictor) -> None:
    """To warn beside a value outside it (tests/live/test_browser.py shows the warning)."""
    page = Page(get(app, "/").body.decode())
    (config,) = [t for t in page.texts["script"] if t.lstrip().startswith("{")]
    known = {f["key"]: f for f in json.loads(config)["features"]}
    for feature in pima_predictor.manifest.features:
        assert known[feature.key] == {
            "key": feature.key,
            "type": feature.type,
            "min": feature.min,
            "max": feature.max,
            "range": f"{feature.min:g} to {feature.max:g}",
        }
        assert len(page.find("small", id=f"warning-{feature.key}")) == 1


def test_categories_are_pickers_and_everything_is_escaped(settings: Settings) -> None:
    with running_app(toy_predictor(), settings) as app:
        html = get(app, "/").body.decode()
    page = Page(html)
    (picker,) = page.find("select", id="colour")
    assert picker["name"] == "colour"
    values = [a["value"] for a in page.find("option")]
    assert values == ["", "red", HOSTILE_CATEGORY]
    assert HOSTILE_CATEGORY in page.texts["option"]
    assert '<b id="x">' not in html, "a category never becomes markup"
    assert not page.find("b")
    config_text = next(t for t in page.texts["script"] if t.lstrip().startswith("{"))
    assert "<" not in config_text
    config = json.loads(config_text)
    assert config["features"][0] == {"key": "colour", "type": "category"}
    assert config["example"]["colour"] == "red"


def test_the_page_is_self_contained_and_locked_to_its_own_code(app: App) -> None:
    response = get(app, "/")
    html = response.body.decode()
    page = Page(html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "no external assets"
    assert not [a for t, a in page.elements if t == "script" and "src" in a]
    assert not page.find("link", rel="stylesheet")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    (style,) = page.texts["style"]
    assert f"style-src {csp_hash(style)}" in policy
    code = [t for t in page.texts["script"] if not t.lstrip().startswith("{")]
    assert len(code) == 1
    assert f"script-src {csp_hash(code[0])}" in policy
    assert "connect-src 'self'" in policy
    assert "fetch(config.predict" in code[0]
    assert ".innerHTML" not in code[0], "answers are shown as text, never parsed as HTML"


def test_the_page_is_cached_per_model_and_follows_a_reload(
    app: App, builtin_bundle: Bundle
) -> None:
    first = get(app, "/").body
    assert get(app, "/").body is first
    manifest = msgspec.structs.replace(builtin_bundle.manifest, version=9)
    app.service.source.predictor = Predictor(Bundle(manifest, builtin_bundle.files))
    assert b"diabetes:9" in get(app, "/").body


def test_the_page_needs_a_model(settings: Settings) -> None:
    with running_app(None, settings) as app:
        response = get(app, "/")
    assert response.status == 503
    assert json.loads(response.body)["error"] == "model_unavailable"


def test_the_page_needs_the_api_key_when_one_is_set(
    pima_predictor: Predictor, settings: Settings
) -> None:
    with running_app(pima_predictor, settings.replace(api_key="k")) as app:
        assert get(app, "/").status == 401
        assert app.service.handle(Request("GET", "/", {"x-api-key": "k"})).status == 200


def test_docs_serves_swagger_ui_from_local_assets(app: App) -> None:
    response = get(app, "/docs")
    assert response.status == 200
    assert response.content_type == "text/html; charset=utf-8"
    html = response.body.decode()
    page = Page(html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "no CDN"
    sources = [a["src"] for t, a in page.elements if t == "script"]
    assert sources == ["docs/swagger-ui-bundle.js", "docs/swagger-initializer.js"]
    (sheet,) = page.find("link", rel="stylesheet")
    for path, kind in [
        (sheet["href"], "text/css"),
        (sources[0], "text/javascript"),
        (sources[1], "text/javascript"),
    ]:
        asset = get(app, "/" + path)
        assert asset.status == 200, path
        assert asset.content_type.startswith(kind)
        assert len(asset.body) > 100
    assert b"SwaggerUIBundle" in get(app, "/docs/swagger-ui-bundle.js").body
    assert b'"openapi.json"' in get(app, "/docs/swagger-initializer.js").body
    assert "script-src 'self'" in response.headers["content-security-policy"]


@pytest.fixture
def without_swagger_ui(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make `import swagger_ui_bundle` fail, as in the slim Lambda package."""
    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", None)
    docs._folder.cache_clear()
    docs.asset.cache_clear()
    yield
    monkeypatch.undo()
    docs._folder.cache_clear()
    docs.asset.cache_clear()


@pytest.mark.usefixtures("without_swagger_ui")
@pytest.mark.parametrize(
    "path",
    ["/docs", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js", "/docs/swagger-initializer.js"],
)
def test_docs_without_swagger_ui_is_404_with_the_install_hint(app: App, path: str) -> None:
    response = get(app, path)
    assert response.status == 404
    body = json.loads(response.body)
    assert body["error"] == "not_found"
    assert "pip install 'modelapi[server]'" in body["details"][0]["reason"]
