"""GET /health, /model, /model/report and /metrics: what the server is serving, and how it is."""

from __future__ import annotations

import msgspec

from modelapi.bundle import REPORT_FILE
from modelapi.errors import ModelUnavailable
from modelapi.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from modelapi.schema import public_features
from modelapi.service import JSON, Request, Response, Service, json_response

__all__ = ["health", "metrics_text", "model", "report"]

# The report is a static page: its inline style and images, nothing else, no script.
_REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)


def health(service: Service, request: Request) -> Response:
    """200 when a model is loaded, 503 when not, with the reason for a keyed caller."""
    predictor = service.source.predictor
    if predictor is None:
        # The reason can name the store's bucket, endpoint or local paths: only callers
        # with the key see it; it is in the log for everyone else.
        if service.is_authorized(request):
            raise ModelUnavailable(service.source.reason)
        raise ModelUnavailable("the model is not loaded; the reason is in the server's log")
    return json_response(200, {"status": "ok", "model": predictor.model_id})


def model(service: Service, request: Request) -> Response:
    """The loaded model's manifest: features, metrics, checksums."""
    predictor = service.predictor()
    # A long category list is training data (names, ids): only its size is published.
    manifest = msgspec.to_builtins(predictor.manifest)
    manifest["features"] = public_features(predictor.manifest.features)
    headers = {"x-model-version": predictor.model_id}
    return Response(200, msgspec.json.encode(manifest), JSON, headers)


def report(service: Service, request: Request) -> Response:
    """The loaded model's training report (report.html): data, pipeline, metrics, plots."""
    predictor = service.predictor()
    body = service.source.read_artifact(REPORT_FILE)
    headers = {"x-model-version": predictor.model_id, "content-security-policy": _REPORT_POLICY}
    return Response(200, body, "text/html; charset=utf-8", headers)


def metrics_text(service: Service, request: Request) -> Response:
    """Request, latency, prediction and model metrics in the Prometheus text format."""
    assert service.metrics is not None
    return Response(200, service.metrics.render(), METRICS_CONTENT_TYPE)
