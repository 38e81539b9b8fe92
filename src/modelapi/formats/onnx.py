"""`model.onnx`: estimators other than linear ones, served with onnxruntime (extra [onnx]).

Input layout, decided at export time and read back from the graph itself:
- one input per feature, named by the CSV column, shape [N, 1]: a float tensor for numeric
  features and a string tensor for categories. This is what a pipeline that selects columns
  by name (modelapi's own training) converts to, and it keeps the raw category strings;
- or a single float tensor [N, n_features] for an estimator fitted on a plain numeric array
  (an imported pickle).

Outputs: `label` and `probabilities` (class order = manifest classes, no ZipMap) for a
classifier, `variable` for a regressor. Training checks these against scikit-learn (same
labels, probabilities within 1e-5) before the bundle is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelapi.bundle import Label, Manifest, Task
from modelapi.errors import BundleError, TrainingError
from modelapi.extras import require
from modelapi.formats.base import Format, Prediction
from modelapi.schema import Feature, Row

__all__ = ["FILE_NAME", "FORMAT", "ONNX_OPSET", "OnnxModel", "export", "load"]

FILE_NAME = "model.onnx"
# onnxruntime computes in float32: labels must agree, probabilities and values within this.
TOLERANCE = 1e-5
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
        # skl2onnx makes a column name such as "Support Calls (last 90d)!" a C identifier
        # ("Support_Calls__last_90d__"), keeping the inputs in the order they were given:
        # the feature order, so other names are matched by position.
        if sorted(names) == sorted(columns):
            self._input_names = {c: c for c in columns}
        elif len(names) == len(columns) and names != ["input"]:
            self._input_names = dict(zip(columns, names, strict=True))
        else:
            self._input_names = {}
        self._per_feature = bool(self._input_names)
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
                feeds[name] = np.asarray(values, dtype=self._types[name]).reshape(-1, 1)
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
    data: bytes = graph.SerializeToString()
    return data


FORMAT = Format(
    file_name=FILE_NAME,
    load=load,
    export=export,
    tolerance=TOLERANCE,
    wheels=("msgspec", "onnxruntime", "numpy"),
)
