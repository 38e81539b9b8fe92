"""Serving formats: the one list of them, best first. A format is a module here and a `Format`.

Training tries each format in order and keeps the first that expresses the estimator and
answers as scikit-learn does on the check rows; serving loads a bundle's `serving` artifact
with the format of that file name. The list names each format's module without importing it:
serving imports the module of the format it serves only, and a Lambda zip carries that one
(`deploy.modules`). Adding a format is a module and one entry in `FORMATS`.
"""

from __future__ import annotations

from modelapi.errors import BundleError
from modelapi.formats.base import Format, Model, Prediction

__all__ = ["FORMATS", "Format", "Model", "Prediction", "format_of"]

FORMATS: tuple[Format, ...] = (
    Format.of(
        "linear.json",
        "modelapi.formats.linear",
        # The same sums as scikit-learn's, in another order than BLAS: the last bits may differ.
        tolerance=1e-12,
        wheels=("msgspec",),
    ),
    Format.of(
        "pipeline.json",
        "modelapi.formats.pipeline",
        # Trees answer identically; linear sums may differ from BLAS in the last bits.
        tolerance=1e-12,
        wheels=("msgspec",),
        exporters=(
            "modelapi.formats.pipeline.sklearn_models",
            "modelapi.formats.pipeline.sklearn_steps",
        ),
    ),
    Format.of(
        "model.onnx",
        "modelapi.formats.onnx",
        # onnxruntime computes in float32: labels must agree, probabilities and values within this.
        tolerance=1e-5,
        wheels=("msgspec", "onnxruntime", "numpy"),
    ),
)
_BY_FILE = {f.file_name: f for f in FORMATS}


def format_of(file_name: str) -> Format:
    """The format serving artifact `file_name`; raise BundleError naming the known ones."""
    found = _BY_FILE.get(file_name)
    if found is None:
        known = ", ".join(_BY_FILE)
        raise BundleError(f"{file_name}: unknown serving format; this modelapi serves {known}")
    return found
