"""Predictor: a verified bundle turned into something that answers, built once per load."""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence

from modelapi.bundle import SERVING_ARTIFACTS, Bundle, Manifest
from modelapi.errors import BundleError, FieldError, InvalidInput
from modelapi.formats import Model, Prediction
from modelapi.formats.linear import FILE_NAME as LINEAR_FILE
from modelapi.formats.linear import LinearModel
from modelapi.schema import FeatureTable, Row

__all__ = ["OUT_OF_RANGE", "Predictor"]

OUT_OF_RANGE = (
    "prediction is out of range (not a finite number); "
    "send feature values nearer those the model was trained on"
)


def _build_model(bundle: Bundle) -> Model:
    manifest = bundle.manifest
    name = manifest.serving
    data = bundle.files.get(name)
    if data is None:
        raise BundleError(f"{name}: the serving artifact was not read")
    if name == LINEAR_FILE:
        linear = LinearModel.from_bytes(data, manifest.classes)
        linear.check_features(manifest.features)
        return linear
    if name == "model.onnx":
        onnx_format = importlib.import_module("modelapi.formats.onnx")
        model: Model = onnx_format.OnnxModel.from_bytes(data, manifest)
        return model
    raise BundleError(f"{name}: unknown serving format; this modelapi serves {SERVING_ARTIFACTS}")


class Predictor:
    """A loaded model with its feature table; safe to share between requests and threads."""

    __slots__ = ("features", "manifest", "model", "model_id")

    def __init__(self, bundle: Bundle) -> None:
        self.manifest: Manifest = bundle.manifest
        self.features = FeatureTable(bundle.manifest.features)
        self.model: Model = _build_model(bundle)
        self.model_id = bundle.manifest.model_id

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict rows already validated by `self.features`.

        Raises InvalidInput naming each row (`body` for a single one) whose prediction is not a
        finite number: features far enough outside the training data can overflow a double,
        and JSON would carry that as null, an answer that looks like one but is not.
        """
        predictions = self.model.predict(rows)
        bad = [
            index
            for index, (value, probs) in enumerate(predictions)
            if (probs is None and type(value) is float and not math.isfinite(value))
            or (probs is not None and not math.isfinite(sum(probs)))
        ]
        if bad:
            where = ["body"] if len(rows) == 1 else [f"[{index}]" for index in bad]
            raise InvalidInput.of([FieldError(field, OUT_OF_RANGE) for field in where])
        return predictions
