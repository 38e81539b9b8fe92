"""`model.onnx`: estimators other than linear ones, served with onnxruntime (extra [onnx]).

Input layout, decided at export time and read back from the graph itself:
- one input per feature, shape [N, 1]: a float tensor for numeric features and a string
  tensor for categories. This is what a pipeline that selects columns by name (modelapi's
  own training) converts to, and it keeps the raw category strings. skl2onnx renames inputs
  whose column names hold spaces, dots, dashes or parentheses, so the export records which
  input is which column in the graph's metadata (`modelapi.input_columns`, a JSON object of
  input name to column) and the loader maps them from there; a graph without it is matched
  by name, else by position;
- or a single float tensor [N, n_features] for an estimator fitted on a plain numeric array
  (an imported pickle).

A missing number is sent as NaN, a missing category as the empty string; the check at
training time decides whether the graph answers those as scikit-learn does.

Outputs: `label` and `probabilities` (class order = manifest classes, no ZipMap) for a
classifier, `variable` for a regressor. Training checks these against scikit-learn (same
labels, probabilities within 1e-5) before the bundle is written.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import msgspec

from modelapi.bundle import Label, Manifest, Task
from modelapi.errors import BundleError, TrainingError
from modelapi.extras import require
from modelapi.formats.base import Prediction
from modelapi.schema import Feature, Row

__all__ = [
    "FILE_NAME",
    "INPUT_COLUMNS",
    "ONNX_OPSET",
    "OnnxModel",
    "export",
    "load",
    "refuse_external_data",
]

FILE_NAME = "model.onnx"
# The metadata key of the graph's input name -> feature column map.
INPUT_COLUMNS = "modelapi.input_columns"
# Pinned so a bundle made here also loads in an older onnxruntime on a server.
ONNX_OPSET = {"": 17, "ai.onnx.ml": 3}
_NUMPY_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(string)": "object",
    "tensor(int64)": "int64",
}


class OnnxModel:
    """Predict with an ONNX graph through onnxruntime; classes come from the manifest."""

    def __init__(
        self,
        data: bytes,
        *,
        features: Sequence[Feature],
        task: Task,
        classes: Sequence[object] | None,
    ) -> None:
        ort = require("onnxruntime", "onnx")
        self._np = require("numpy", "onnx")
        refuse_external_data(data)
        options = ort.SessionOptions()
        # Serving handles concurrency itself; one thread per session keeps latency predictable.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad graph
            raise BundleError(
                f"{FILE_NAME}: not a loadable ONNX model ({type(exc).__name__})"
            ) from None
        self._features = tuple(features)
        self._task = task
        self._classes = tuple(classes or ())
        inputs = self._session.get_inputs()
        columns = [f.column for f in self._features]
        names = [i.name for i in inputs]
        self._input_names = self._inputs_of_columns(names, columns)
        self._per_feature = sorted(self._input_names) == sorted(columns)
        self._types: dict[str, str] = {}
        for item in inputs:
            kind = _NUMPY_TYPES.get(item.type)
            if kind is None:
                raise BundleError(
                    f"{FILE_NAME}: input {item.name!r} has unsupported type {item.type}"
                )
            self._types[item.name] = kind
        if not self._per_feature:
            if len(inputs) != 1 or any(f.type == "category" for f in self._features):
                raise BundleError(
                    f"{FILE_NAME}: inputs {names[:20]} match neither the feature columns"
                    " nor a single numeric tensor"
                )
            self._single_input = names[0]
        outputs = [o.name for o in self._session.get_outputs()]
        if task == "classification":
            if len(outputs) < 2 or len(self._classes) < 2:
                raise BundleError(f"{FILE_NAME}: a classifier needs label and probability outputs")
            self._by_label = {_key(c): c for c in self._classes}
        self._outputs = outputs
        self._probe()

    def _inputs_of_columns(self, names: list[str], columns: list[str]) -> dict[str, str]:
        """Column -> input name: from the graph's metadata, else by name, else by position.

        skl2onnx makes a column name such as "Support Calls (last 90d)!" a C identifier
        ("Support_Calls__last_90d__"), keeping the inputs in the order they were given (the
        feature order); modelapi's export records the map in the graph, older graphs are
        matched by position.
        """
        meta = self._session.get_modelmeta().custom_metadata_map.get(INPUT_COLUMNS)
        if meta is not None:
            try:
                mapping = msgspec.json.decode(meta.encode(), type=dict[str, str])
            except msgspec.DecodeError:
                raise BundleError(f"{FILE_NAME}: {INPUT_COLUMNS} is not a map of names") from None
            if sorted(mapping) != sorted(names) or len(set(mapping.values())) != len(mapping):
                raise BundleError(f"{FILE_NAME}: {INPUT_COLUMNS} does not map the graph's inputs")
            return {column: name for name, column in mapping.items()}
        if sorted(names) == sorted(columns):
            return {c: c for c in columns}
        if len(names) == len(columns) and names != ["input"]:
            return dict(zip(columns, names, strict=True))
        return {}

    def _probe(self) -> None:
        """Predict one row now, so a graph that does not fit the manifest fails to load.

        Input widths, output shapes and labels are only checked by running the graph; without
        this a mismatched file would load and then fail every request.
        """
        row: Row = [
            (f.categories[0] if f.categories else "") if f.type == "category" else 0.0
            for f in self._features
        ]
        try:
            [(value, probabilities)] = self.predict([row])
        except BundleError:
            raise
        except Exception as exc:  # onnxruntime's errors are untyped; ValueError from unpacking
            raise BundleError(
                f"{FILE_NAME}: does not run on the manifest's {len(row)} features"
                f" ({type(exc).__name__})"
            ) from None
        if self._task == "classification":
            if probabilities is None or len(probabilities) != len(self._classes):
                raise BundleError(
                    f"{FILE_NAME}: gives {len(probabilities or ())} probabilities for the"
                    f" manifest's {len(self._classes)} classes"
                )
        elif len(self._outputs) != 1 or not isinstance(value, float):
            raise BundleError(f"{FILE_NAME}: a regressor must give one number per row")

    @classmethod
    def from_bytes(cls, data: bytes, manifest: Manifest) -> OnnxModel:
        """Load `model.onnx` bytes for a manifest; raise BundleError if they do not fit."""
        return cls(data, features=manifest.features, task=manifest.task, classes=manifest.classes)

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict rows validated by the feature table: (label, probabilities) or (value, None)."""
        if not rows:
            return []
        np = self._np
        feeds: dict[str, object] = {}
        if self._per_feature:
            for feature, values in zip(self._features, zip(*rows, strict=True), strict=True):
                name = self._input_names[feature.column]
                kind = self._types[name]
                if kind == "object":
                    values = tuple("" if v is None else v for v in values)
                # numpy reads None as NaN in a float array: a missing number.
                feeds[name] = np.asarray(values, dtype=kind).reshape(-1, 1)
        else:
            feeds[self._single_input] = np.asarray(rows, dtype=self._types[self._single_input])
        results = self._session.run(None, feeds)
        if self._task == "regression":
            numbers: list[float] = results[0].reshape(-1).astype("float64").tolist()
            return [(v, None) for v in numbers]
        labels = results[0].reshape(-1).tolist()
        probabilities = results[1].astype("float64").tolist()
        try:
            return [
                (self._by_label[_key(label)], tuple(p))
                for label, p in zip(labels, probabilities, strict=True)
            ]
        except KeyError:
            raise BundleError(
                f"{FILE_NAME}: predicts a label outside the manifest classes"
            ) from None


def _key(label: object) -> str:
    # onnxruntime returns int64 or str labels; manifest classes are JSON scalars: compare as text
    # with whole floats written as ints, so 1, 1.0 and "1" from the graph all find class 1.
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    if isinstance(label, bytes):
        return label.decode()
    return str(label)


def load(
    data: bytes, *, features: Sequence[Feature], task: Task, classes: Sequence[Label] | None
) -> OnnxModel:
    """Load `model.onnx` bytes for a model's features; raise BundleError if they do not fit."""
    return OnnxModel(data, features=features, task=task, classes=classes)


def export(
    estimator: object, features: Sequence[Feature], task: Task, classes: Sequence[Label] | None
) -> bytes:
    """Convert an estimator to ONNX with one input per feature (or one numeric tensor).

    The last format tried: raises TrainingError when skl2onnx cannot convert the estimator.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = estimator.steps[0][1] if isinstance(estimator, Pipeline) else None
    if isinstance(first, ColumnTransformer):
        inputs = [
            (
                f.column,
                StringTensorType([None, 1]) if f.type == "category" else FloatTensorType([None, 1]),
            )
            for f in features
        ]
    elif any(f.type == "category" for f in features):
        raise TrainingError(
            "cannot convert to ONNX: text features need a pipeline that starts with a"
            " ColumnTransformer selecting columns by name"
        )
    else:
        inputs = [("input", FloatTensorType([None, len(features)]))]
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    options = {id(final): {"zipmap": False}} if task == "classification" else None
    try:
        graph = convert_sklearn(
            estimator, initial_types=inputs, options=options, target_opset=ONNX_OPSET
        )
    except Exception as exc:  # skl2onnx raises many untyped errors for unsupported models
        raise TrainingError(
            f"cannot convert {type(final).__name__} to ONNX ({type(exc).__name__}: {exc})"[:400]
        ) from exc
    if isinstance(first, ColumnTransformer):
        # skl2onnx keeps one input per declared one, in order, but renames awkward names.
        names = [item.name for item in graph.graph.input]
        if len(names) != len(features):
            raise TrainingError(
                f"cannot convert to ONNX: {len(names)} graph inputs for {len(features)} features"
            )
        entry = graph.metadata_props.add()
        entry.key = INPUT_COLUMNS
        entry.value = msgspec.json.encode(
            dict(zip(names, (f.column for f in features), strict=True))
        ).decode()
    data: bytes = graph.SerializeToString()
    return data


# ---- external data ---------------------------------------------------------------------------
# A tensor may keep its bytes outside the model ("external data": a file name, an offset and a
# length), and onnxruntime reads them relative to its working directory when a model is loaded
# from bytes: a graph could return any file the server can read as its predictions. Tensors
# are looked for in the protobuf itself, so the check needs no `onnx` package. Field numbers
# are those of onnx.proto3; each message type maps the fields that hold messages to their type.
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 13, 14
_MESSAGE_FIELDS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node", 11: "attribute"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_MAX_DEPTH = 64


def refuse_external_data(data: bytes) -> None:
    """Raise BundleError if any tensor of the model keeps its data outside the file.

    Every tensor is checked: initializers, sparse initializers, Constant nodes' values and
    every attribute's tensors, in the main graph, in every subgraph (If, Loop, Scan), in
    functions and in training graphs. Bytes that are not a well-formed protobuf are refused.
    """
    stack: list[tuple[str, int, int, int]] = [("model", 0, len(data), 0)]
    while stack:
        kind, at, end, depth = stack.pop()
        children = _MESSAGE_FIELDS[kind]
        while at < end:
            key, at = _varint(data, at, end)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, at = _varint(data, at, end)
                if kind == "tensor" and field == _TENSOR_DATA_LOCATION and value == _EXTERNAL:
                    raise _external()
                if kind == "attribute" and key < 0x80:
                    at = _skip_run(data, at, end, key, wire)
            elif wire == 2:
                size, at = _varint(data, at, end)
                if at + size > end:
                    raise _malformed()
                if kind == "tensor" and field == _TENSOR_EXTERNAL_DATA:
                    raise _external()
                child = children.get(field)
                if child is not None:
                    if depth >= _MAX_DEPTH:
                        raise BundleError(f"{FILE_NAME}: nests graphs deeper than {_MAX_DEPTH}")
                    stack.append((child, at, at + size, depth + 1))
                at += size
                if child is None and kind == "attribute" and key < 0x80:
                    at = _skip_run(data, at, end, key, wire)
            elif wire in (1, 5):
                at += 8 if wire == 1 else 4
                if kind == "attribute" and key < 0x80:
                    at = _skip_run(data, at, end, key, wire)
            else:  # groups (3, 4) are not in onnx.proto; anything else is not protobuf
                raise _malformed()
        if at != end:
            raise _malformed()


def _skip_run(data: bytes, at: int, end: int, key: int, wire: int) -> int:
    """Skip more of the field just read (same key, no message inside): where the run ends.

    An attribute's list (a tree ensemble's thresholds, node modes) is written as one field
    per item, millions in a large model: a pattern skips them in C, not one by one here.
    """
    found = _run(key, wire).match(data, at, end)
    return at if found is None else found.end()


@functools.cache
def _run(key: int, wire: int) -> re.Pattern[bytes]:
    # Possessive (never backtracking) repeats: several times faster on long runs.
    if wire == 2:  # strings of up to 127 bytes: a one-byte length, then that many bytes
        value = b"(?:" + b"|".join(re.escape(bytes([n])) + b".{%d}" % n for n in range(128)) + b")"
    else:
        value = {0: rb"[\x80-\xff]{0,9}+[\x00-\x7f]", 1: rb".{8}", 5: rb".{4}"}[wire]
    return re.compile(rb"(?:" + re.escape(bytes([key])) + value + rb")*+", re.DOTALL)


def _varint(data: bytes, at: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= end or shift > 63:
            raise _malformed()
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _external() -> BundleError:
    return BundleError(
        f"{FILE_NAME}: a tensor refers to external data (bytes kept outside the model file);"
        " modelapi serves only self-contained graphs: save the model with its data embedded"
        " (onnx.save_model(model, path, save_as_external_data=False))"
    )


def _malformed() -> BundleError:
    return BundleError(f"{FILE_NAME}: not a loadable ONNX model (not a well-formed protobuf)")
