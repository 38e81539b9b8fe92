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

from collections.abc import Mapping, Sequence
from typing import cast

import msgspec

from modelapi import __version__
from modelapi.errors import (
    FieldError,
    InvalidInput,
    MalformedBody,
    ModelUnavailable,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from modelapi.formats import Prediction
from modelapi.predictor import Predictor
from modelapi.schema import Feature
from modelapi.service import Request, Response, Service, json_response, media_type

__all__ = ["ROUTES", "openapi_paths", "openapi_schemas"]

_INTEGER_TYPES = frozenset(f"{s}INT{b}" for s in ("", "U") for b in (8, 16, 32, 64))
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
_DATATYPES = ("BOOL", *sorted(_INTEGER_TYPES), *sorted(_FLOAT_TYPES), "BYTES")
_JSON_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded"})
_PROBABILITIES = "probabilities"


# Parameters are read for their shape only: no parameter changes what is predicted.
class _Tensor(msgspec.Struct):
    name: str
    shape: list[int]
    datatype: str
    data: list[object]
    parameters: dict[str, object] | None = None


class _Wanted(msgspec.Struct):
    name: str
    parameters: dict[str, object] | None = None


class _InferRequest(msgspec.Struct):
    inputs: list[_Tensor]
    id: str | None = None
    parameters: dict[str, object] | None = None
    outputs: list[_Wanted] | None = None


def _datatype(feature: Feature) -> str:
    return {"integer": "INT64", "number": "FP64", "category": "BYTES"}[feature.type]


def _label_datatype(predictor: Predictor) -> str:
    classes = predictor.manifest.classes
    if classes is None:
        return "FP64"
    if all(type(c) is int for c in classes):
        return "INT64"
    return "FP64" if all(isinstance(c, int | float) for c in classes) else "BYTES"


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
    inputs = [{"name": f.key, "datatype": _datatype(f), "shape": [-1]} for f in manifest.features]
    outputs = [{"name": manifest.target.key, "datatype": _label_datatype(predictor), "shape": [-1]}]
    if manifest.classes is not None:
        outputs.append(
            {"name": _PROBABILITIES, "datatype": "FP64", "shape": [-1, len(manifest.classes)]}
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
    infer = _decode(request.body)
    columns, n_rows = _columns(predictor.manifest.features, infer.inputs)
    if n_rows > settings.max_batch_rows:
        raise PayloadTooLarge("inputs", f"must hold at most {settings.max_batch_rows} rows")
    records = [{key: values[i] for key, values in columns.items()} for i in range(n_rows)]
    rows, _ = predictor.features.parse_rows(records)
    predictions = predictor.predict(rows)
    if service.metrics is not None:
        service.metrics.count_predictions(predictions)
    outputs = _outputs(predictor, predictions, infer.outputs)
    body: dict[str, object] = {
        "model_name": predictor.manifest.name,
        "model_version": str(predictor.manifest.version),
        "outputs": outputs,
    }
    if infer.id is not None:
        body["id"] = infer.id
    return json_response(200, body, {"x-model-version": predictor.model_id})


def _decode(body: bytes) -> _InferRequest:
    try:
        payload = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise MalformedBody("body", "is not valid JSON") from None
    try:
        return msgspec.convert(payload, _InferRequest)
    except msgspec.ValidationError as exc:
        # msgspec names the place and the expected type, never the value: safe to pass on.
        reason, _, where = str(exc).partition(" - at `$.")
        raise InvalidInput(where.rstrip("`") or "body", reason[:1].lower() + reason[1:]) from None


def _columns(
    features: Sequence[Feature], tensors: Sequence[_Tensor]
) -> tuple[dict[str, list[object]], int]:
    """The values of each feature by JSON name, and the number of rows."""
    errors: list[FieldError] = []
    by_name = {name: f for f in features for name in (f.key, f.column)}
    if len(tensors) == 1 and tensors[0].name not in by_name and len(tensors[0].shape) == 2:
        return _matrix(features, tensors[0], errors)
    columns: dict[str, list[object]] = {}
    named: set[str] = set()
    n_rows: int | None = None
    for index, tensor in enumerate(tensors):
        where = f"inputs[{index}]"
        feature = by_name.get(tensor.name)
        if feature is None:
            errors.append(FieldError(f"{where}.name", "is not a feature of this model"))
            continue
        if feature.key in named:
            errors.append(FieldError(f"{where}.name", f"{feature.key} is given twice"))
            continue
        named.add(feature.key)
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            errors.append(FieldError(f"{where}.shape", "must be [n] or [n, 1]"))
            continue
        values = _values(tensor, where, errors, feature.type == "category")
        if values is None:
            continue
        if n_rows is not None and tensor.shape[0] != n_rows:
            errors.append(FieldError(f"{where}.shape", "must have as many rows as the others"))
            continue
        n_rows = tensor.shape[0]
        columns[feature.key] = values
    errors.extend(
        FieldError("inputs", f"needs a tensor named {f.key}")
        for f in features
        if f.key not in named
    )
    if errors:
        raise InvalidInput.of(errors)
    return columns, n_rows or 0


def _matrix(
    features: Sequence[Feature], tensor: _Tensor, errors: list[FieldError]
) -> tuple[dict[str, list[object]], int]:
    n_rows, width = tensor.shape
    if width != len(features):
        errors.append(FieldError("inputs[0].shape", f"must be [n, {len(features)}]"))
        raise InvalidInput.of(errors)
    has_text = any(f.type == "category" for f in features)
    values = _values(tensor, "inputs[0]", errors, has_text)
    if values is None:
        raise InvalidInput.of(errors)
    columns = {f.key: values[j::width] for j, f in enumerate(features)}
    return columns, n_rows


def _values(
    tensor: _Tensor, where: str, errors: list[FieldError], is_text: bool
) -> list[object] | None:
    """The tensor's data flattened, checked against its shape and datatype; None if refused."""
    if any(size < 0 for size in tensor.shape):
        errors.append(FieldError(f"{where}.shape", "must hold sizes >= 0"))
        return None
    datatype = tensor.datatype
    if datatype not in _DATATYPES:
        errors.append(FieldError(f"{where}.datatype", f"must be one of {', '.join(_DATATYPES)}"))
        return None
    if is_text and datatype != "BYTES":
        errors.append(FieldError(f"{where}.datatype", "must be BYTES for a category feature"))
        return None
    if datatype == "BOOL":
        errors.append(FieldError(f"{where}.datatype", "must be numeric or BYTES, not BOOL"))
        return None
    data = tensor.data
    if any(isinstance(item, list) for item in data):
        if not all(isinstance(item, list) for item in data):
            errors.append(FieldError(f"{where}.data", "must be flat or nested evenly"))
            return None
        data = [value for item in data for value in cast(list[object], item)]
    expected = 1
    for size in tensor.shape:
        expected *= size
    if len(data) != expected:
        errors.append(FieldError(f"{where}.data", f"must hold {expected} values for its shape"))
        return None
    if datatype in _INTEGER_TYPES:
        wrong = any(type(value) is not int for value in data)
        reason = "must hold whole JSON numbers for an integer datatype"
    elif datatype in _FLOAT_TYPES:
        wrong = any(type(value) not in (int, float) for value in data)
        reason = "must hold JSON numbers for a floating-point datatype"
    else:
        wrong = any(type(value) is not str for value in data)
        reason = "must hold strings for datatype BYTES"
    if wrong:
        errors.append(FieldError(f"{where}.data", reason))
        return None
    return data


def _outputs(
    predictor: Predictor, predictions: Sequence[Prediction], wanted: list[_Wanted] | None
) -> list[dict[str, object]]:
    manifest = predictor.manifest
    n_rows = len(predictions)
    available: dict[str, dict[str, object]] = {
        manifest.target.key: {
            "name": manifest.target.key,
            "shape": [n_rows],
            "datatype": _label_datatype(predictor),
            "data": [label for label, _ in predictions],
        }
    }
    if manifest.classes is not None:
        flat = [p for _, probs in predictions for p in probs or ()]
        available[_PROBABILITIES] = {
            "name": _PROBABILITIES,
            "shape": [n_rows, len(manifest.classes)],
            "datatype": "FP64",
            "data": flat,
        }
    if wanted is None:
        return list(available.values())
    errors = [
        FieldError(f"outputs[{i}].name", f"must be one of {', '.join(available)}")
        for i, output in enumerate(wanted)
        if output.name not in available
    ]
    if errors:
        raise InvalidInput.of(errors)
    return [available[output.name] for output in wanted]


def _errors(*statuses: int) -> dict[str, dict[str, object]]:
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses}


def _ok(description: str, schema: Mapping[str, object], versioned: bool) -> dict[str, object]:
    response: dict[str, object] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if versioned:
        response["headers"] = {
            "X-Model-Version": {
                "description": "The model that answered, as `name:version`.",
                "required": True,
                "schema": {"type": "string"},
            }
        }
    return response


def _ref(name: str) -> dict[str, object]:
    return {"$ref": f"#/components/schemas/{name}"}


def openapi_paths(predictor: Predictor, example: dict[str, object]) -> dict[str, dict[str, object]]:
    """The OpenAPI path items of these routes, with an infer example built from `example`."""
    manifest = predictor.manifest
    name_parameter: dict[str, object] = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "The model's name.",
        "schema": {"type": "string", "enum": [manifest.name]},
    }
    infer_example = {
        "inputs": [
            {
                "name": f.key,
                "shape": [1],
                "datatype": _datatype(f),
                "data": [example[f.key] if f.type != "category" else str(example[f.key])],
            }
            for f in manifest.features
        ]
    }
    flag = {"type": "object", "properties": {"live": {"type": "boolean"}}}
    ready = {"type": "object", "properties": {"ready": {"type": "boolean"}}, "required": ["ready"]}
    model_ready = {**ready, "required": ["name", "ready"]}
    infer = _operation(
        "Predict rows given as one tensor per feature",
        {"200": _ok("The output tensors.", _ref("InferenceResponse"), True)},
        (400, 404, 413, 415, 422, 503),
        description=__doc__,
        parameters=[name_parameter],
        requestBody={
            "required": True,
            "content": {
                "application/json": {"schema": _ref("InferenceRequest"), "example": infer_example}
            },
        },
    )
    return {
        "/v2": {
            "get": _operation(
                "Server metadata", {"200": _ok("Metadata.", _ref("ServerMetadata"), False)}
            )
        },
        "/v2/health/live": {
            "get": _operation("Liveness", {"200": _ok("The server is live.", flag, False)})
        },
        "/v2/health/ready": {
            "get": _operation(
                "Readiness: a model is loaded", {"200": _ok("Ready.", ready, False)}, (503,)
            )
        },
        "/v2/models/{name}": {
            "get": _operation(
                "Model metadata: input and output tensors",
                {"200": _ok("Model metadata.", _ref("ModelMetadata"), True)},
                (404, 503),
                parameters=[name_parameter],
            )
        },
        "/v2/models/{name}/ready": {
            "get": _operation(
                "Model readiness",
                {"200": _ok("The model is ready.", model_ready, True)},
                (404, 503),
                parameters=[name_parameter],
            )
        },
        "/v2/models/{name}/infer": {"post": infer},
    }


def _operation(
    summary: str,
    responses: dict[str, object],
    errors: tuple[int, ...] = (),
    **extra: object,
) -> dict[str, object]:
    responses.update(_errors(*errors))
    return {
        "summary": summary,
        "tags": ["open inference protocol v2"],
        **extra,
        "responses": responses,
    }


def openapi_schemas(predictor: Predictor) -> dict[str, object]:
    """The OpenAPI component schemas these routes refer to, for `predictor`'s model."""
    manifest = predictor.manifest
    outputs = [manifest.target.key] + ([_PROBABILITIES] if manifest.classes is not None else [])
    shape = {"type": "array", "items": {"type": "integer"}}
    parameters = {"type": ["object", "null"]}
    data = {"type": "array", "items": {"type": ["number", "string", "array"]}}
    metadata_tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": shape,
        },
        "required": ["name", "datatype", "shape"],
    }
    return {
        "ServerMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "version", "extensions"],
        },
        "TensorMetadata": metadata_tensor,
        "ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": _ref("TensorMetadata")},
                "outputs": {"type": "array", "items": _ref("TensorMetadata")},
            },
            "required": ["name", "platform", "inputs", "outputs"],
        },
        "RequestInput": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "A feature's JSON or CSV name."},
                "shape": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 0},
                    "minItems": 1,
                    "maxItems": 2,
                },
                "datatype": {"enum": [d for d in _DATATYPES if d != "BOOL"]},
                "data": data,
                "parameters": parameters,
            },
            "required": ["name", "shape", "datatype", "data"],
        },
        "InferenceRequest": {
            "type": "object",
            "properties": {
                "id": {"type": ["string", "null"]},
                "parameters": parameters,
                "inputs": {"type": "array", "items": _ref("RequestInput")},
                "outputs": {
                    "type": ["array", "null"],
                    "items": {
                        "type": "object",
                        "properties": {"name": {"enum": outputs}, "parameters": parameters},
                        "required": ["name"],
                    },
                },
            },
            "required": ["inputs"],
        },
        "ResponseOutput": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "shape": shape,
                "datatype": {"type": "string"},
                "data": data,
            },
            "required": ["name", "shape", "datatype", "data"],
        },
        "InferenceResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": _ref("ResponseOutput")},
            },
            "required": ["model_name", "outputs"],
        },
    }


ROUTES = {
    "/v2": {"GET": server_metadata},
    "/v2/health/live": {"GET": server_live},
    "/v2/health/ready": {"GET": server_ready},
    "/v2/models/{name}": {"GET": model_metadata},
    "/v2/models/{name}/ready": {"GET": model_ready},
    "/v2/models/{name}/infer": {"POST": model_infer},
}
