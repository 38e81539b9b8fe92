"""The Open Inference Protocol V2 routes (KServe, Triton and MLServer clients), JSON over HTTP.

Inputs are one tensor per feature, named by the feature's JSON name (or its CSV column), of
shape `[n]` or `[n, 1]`, with the data flat or nested in row-major order. As an alternative,
a single tensor of shape `[n, n_features]` holds the features in the order of the model's
metadata. Either way the rows go through the same validation core as `/predict`, so a bad
value is refused with the same words and the same error body.

Outputs are the target (`[n]`) and, for a classifier, `probabilities` (`[n, n_classes]`, the
classes in the order of `/model`). A request may name the outputs it wants.
"""

from __future__ import annotations

from modelapi._version import __version__
from modelapi.errors import ModelUnavailable, NotFound, PayloadTooLarge, UnsupportedMediaType
from modelapi.predictor import Predictor
from modelapi.routes.v2_tensors import (
    PROBABILITIES,
    check_wanted,
    decode_request,
    feature_datatype,
    input_columns,
    label_datatype,
    output_names,
    output_tensors,
)
from modelapi.service import Request, Response, Service, json_response, media_type

__all__ = [
    "model_infer",
    "model_metadata",
    "model_ready",
    "server_live",
    "server_metadata",
    "server_ready",
]

_JSON_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded"})


def _model(service: Service, request: Request) -> Predictor:
    """The loaded predictor, if the path names it; NotFound names the model that is served."""
    predictor = service.predictor()
    name = predictor.manifest.name
    if request.path.split("/", 4)[3] != name:
        raise NotFound(f"this server serves one model, {name!r}: use /v2/models/{name}")
    return predictor


def server_metadata(service: Service, request: Request) -> Response:
    """Server metadata: name, version and protocol extensions."""
    return json_response(200, {"name": "modelapi", "version": __version__, "extensions": []})


def server_live(service: Service, request: Request) -> Response:
    """Liveness: the server answers."""
    return json_response(200, {"live": True})


def server_ready(service: Service, request: Request) -> Response:
    """Readiness: 200 when a model is loaded, 503 with the reason when not."""
    if service.source.predictor is None:
        raise ModelUnavailable(service.source.reason)
    return json_response(200, {"ready": True})


def model_metadata(service: Service, request: Request) -> Response:
    """The model's name, version, input tensors and output tensors."""
    predictor = _model(service, request)
    manifest = predictor.manifest
    inputs = [
        {"name": f.key, "datatype": feature_datatype(f), "shape": [-1]} for f in manifest.features
    ]
    outputs = [{"name": manifest.target.key, "datatype": label_datatype(predictor), "shape": [-1]}]
    if manifest.classes is not None:
        outputs.append(
            {"name": PROBABILITIES, "datatype": "FP64", "shape": [-1, len(manifest.classes)]}
        )
    body = {
        "name": manifest.name,
        "versions": [str(manifest.version)],
        "platform": f"modelapi-{manifest.serving}",
        "inputs": inputs,
        "outputs": outputs,
    }
    return json_response(200, body, {"x-model-version": predictor.model_id})


def model_ready(service: Service, request: Request) -> Response:
    """Whether the named model is ready (it is whenever it is loaded)."""
    predictor = _model(service, request)
    body = {"name": predictor.manifest.name, "ready": True}
    return json_response(200, body, {"x-model-version": predictor.model_id})


def model_infer(service: Service, request: Request) -> Response:
    """Predict the rows held by the input tensors; answer output tensors."""
    predictor = _model(service, request)
    settings = service.settings
    if len(request.body) > settings.max_body_bytes:
        raise PayloadTooLarge("body", f"must be at most {settings.max_body_bytes} bytes")
    if media_type(request.headers) not in _JSON_TYPES:
        raise UnsupportedMediaType("content-type", "must be application/json")
    infer = decode_request(request.body)
    if infer.outputs is not None:
        # Checked before any row is read or predicted: a bad list costs no model time.
        check_wanted(output_names(predictor), infer.outputs)
    columns, n_rows = input_columns(predictor.manifest.features, infer.inputs)
    if n_rows > settings.max_batch_rows:
        raise PayloadTooLarge("inputs", f"must hold at most {settings.max_batch_rows} rows")
    records = [{key: values[i] for key, values in columns.items()} for i in range(n_rows)]
    rows, _ = predictor.features.parse_rows(records)
    predictions = predictor.predict(rows)
    if service.metrics is not None:
        service.metrics.count_predictions(predictions)
    outputs = output_tensors(predictor, predictions, infer.outputs)
    body: dict[str, object] = {
        "model_name": predictor.manifest.name,
        "model_version": str(predictor.manifest.version),
        "outputs": outputs,
    }
    if infer.id is not None:
        body["id"] = infer.id
    return json_response(200, body, {"x-model-version": predictor.model_id})
