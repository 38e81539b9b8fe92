"""Serving formats: the one list of them, best first. A format is one module here (`base.Format`).

Training tries each format in order and keeps the first that expresses the estimator and
answers as scikit-learn does on the check rows; serving loads a bundle's `serving` artifact
with the format of that file name. Adding a format is a module and one entry in `FORMATS`.
"""

from __future__ import annotations

from modelapi.errors import BundleError
from modelapi.formats import linear, onnx, pipeline
from modelapi.formats.base import Format, Model, Prediction

__all__ = ["FORMATS", "Format", "Model", "Prediction", "format_of"]

FORMATS: tuple[Format, ...] = (linear.FORMAT, pipeline.FORMAT, onnx.FORMAT)
_BY_FILE = {f.file_name: f for f in FORMATS}


def format_of(file_name: str) -> Format:
    """The format serving artifact `file_name`; raise BundleError naming the known ones."""
    found = _BY_FILE.get(file_name)
    if found is None:
        known = ", ".join(_BY_FILE)
        raise BundleError(f"{file_name}: unknown serving format; this modelapi serves {known}")
    return found
