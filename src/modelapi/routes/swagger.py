"""GET /docs: Swagger UI for /openapi.json, from the assets of the installed package, no CDN.

The assets come from `swagger-ui-bundle-v2` (import name `swagger_ui_bundle`, in the
`[server]` extra) and are served under /docs/, so the page works with no network at all. A
slim install without the package (the Lambda zip) answers 404 with the pip command.
"""

from __future__ import annotations

import functools
import importlib
from pathlib import Path

from modelapi.errors import NotFound
from modelapi.service import Handler, Request, Response, Service

__all__ = ["asset", "bundle_script", "docs_page", "initializer", "stylesheet"]

_HINT = "Swagger UI is not installed here: pip install 'modelapi[server]'"
# Everything the page loads comes from this server; the styles Swagger UI sets inline and its
# data: icons are the only other sources it needs.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API documentation</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/swagger-initializer.js"></script>
</body>
</html>
"""
# Relative URLs, so the page also works below a path prefix such as an API Gateway stage.
_INITIALIZER = b"""window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""
_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}


@functools.cache
def _folder() -> Path | None:
    try:
        module = importlib.import_module("swagger_ui_bundle")
    except ImportError:
        return None
    return Path(str(module.swagger_ui_path))


@functools.cache
def asset(name: str) -> bytes:
    """The bytes of one Swagger UI asset; raise NotFound (with the pip hint) if not installed."""
    folder = _folder()
    if folder is None:
        raise NotFound(_HINT)
    try:
        return (folder / name).read_bytes()
    except OSError:
        raise NotFound(f"{name} is missing from the installed Swagger UI: {_HINT}") from None


def docs_page(service: Service, request: Request) -> Response:
    """Swagger UI for this service's OpenAPI document."""
    if _folder() is None:
        raise NotFound(_HINT)
    return Response(200, _PAGE, "text/html; charset=utf-8", {"content-security-policy": _POLICY})


def _asset_handler(name: str) -> Handler:
    content_type = _ASSETS[name]

    def serve(service: Service, request: Request) -> Response:
        # The assets are versioned with the installed package, so clients may keep them a day.
        return Response(200, asset(name), content_type, {"cache-control": "max-age=86400"})

    serve.__doc__ = f"The Swagger UI asset {name}."
    return serve


stylesheet = _asset_handler("swagger-ui.css")
bundle_script = _asset_handler("swagger-ui-bundle.js")


def initializer(service: Service, request: Request) -> Response:
    """The script that starts Swagger UI on /openapi.json."""
    if _folder() is None:
        raise NotFound(_HINT)
    return Response(200, _INITIALIZER, "text/javascript; charset=utf-8")
