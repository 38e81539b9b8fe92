"""The served model of a `pipeline.json`: decoded, checked, compiled once, then called per batch.

Rows arrive as the feature table passes them: floats for numeric features (None when
missing), text for categories (None when missing). Big batches go to the numpy evaluator when
numpy is installed (`modelapi.formats.pipeline.vectorised`): the same answers, computed a
block at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from modelapi.bundle import Label, Task
from modelapi.errors import BundleError
from modelapi.formats.base import Prediction
from modelapi.formats.pipeline.code_cache import precompiled_for
from modelapi.formats.pipeline.compiler import compile_spec
from modelapi.formats.pipeline.emitter import GroupCompiler, compile_group
from modelapi.formats.pipeline.spec import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CellKind,
    Header,
    PipelineSpec,
)
from modelapi.formats.pipeline.validation import FILE_NAME, check_spec
from modelapi.schema import Feature, Row

__all__ = ["VECTORISED_ROWS", "PipelineModel", "decode_spec", "load"]

# From this many rows a batch is worth numpy's start-up costs (when numpy is installed).
VECTORISED_ROWS = 512


def decode_spec(data: bytes) -> PipelineSpec:
    """Decode `pipeline.json` with its schema; raise BundleError naming the file if it differs."""
    try:
        return msgspec.json.decode(data, type=PipelineSpec)
    except msgspec.DecodeError as exc:
        reason = str(exc)
    # Say "newer version" rather than a schema detail when that is the cause.
    try:
        header = msgspec.json.decode(data, type=Header)
    except msgspec.DecodeError:
        raise BundleError(f"{FILE_NAME}: {reason}") from None
    if header.format == FORMAT_NAME and header.version > FORMAT_VERSION:
        raise BundleError(
            f"{FILE_NAME}: version {header.version} is newer than this modelapi reads"
            f" ({FORMAT_VERSION}): upgrade modelapi"
        )
    raise BundleError(f"{FILE_NAME}: {reason}") from None


class PipelineModel:
    """Predict with a checked `pipeline.json`; classes come from the manifest.

    The code that answers rows one at a time is compiled on first use, or by `warm`: a
    100-tree forest takes about 0.25 s to compile, which `modelapi predict` never needs when
    its blocks go to the numpy evaluator, and a server pays at start-up (`Predictor` warms).
    """

    __slots__ = ("_block", "_classes", "_compiled", "_groups", "_lock", "_stages", "_task", "spec")

    def __init__(
        self,
        spec: PipelineSpec,
        *,
        task: Task,
        classes: Sequence[Label] | None,
        stages: list[list[CellKind]],
        groups: GroupCompiler = compile_group,
    ) -> None:
        self.spec = spec
        self._task = task
        self._classes = tuple(classes or ())
        self._stages = stages
        self._groups = groups
        self._compiled: Callable[[Any], list[Prediction]] | None = None
        self._lock = threading.Lock()
        self._block: object | None = None

    @property
    def _predict(self) -> Callable[[Any], list[Prediction]]:
        """The compiled code, compiled once whichever thread asks first."""
        compiled = self._compiled
        if compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = compile_spec(
                        self.spec, self._stages, self._classes, self._groups
                    )
                compiled = self._compiled
        return compiled

    def warm(self) -> None:
        """Compile the code for single rows now, not at the first of them."""
        _ = self._predict

    @property
    def classes(self) -> tuple[Label, ...]:
        """The class labels in manifest order (empty for a regressor)."""
        return self._classes

    @property
    def stages(self) -> list[list[CellKind]]:
        """The kinds of the columns before each step, and of those the model reads."""
        return self._stages

    def predict(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict each row: (label, probabilities) or (value, None)."""
        if len(rows) >= VECTORISED_ROWS:
            block = self.block_evaluator()
            if block is not None:
                answers: list[Prediction] = block.predict_rows(rows)
                return answers
        return self._predict(rows)

    def predict_compiled(self, rows: Sequence[Row]) -> list[Prediction]:
        """Predict each row with the compiled code, however many there are."""
        return self._predict(rows)

    def block_evaluator(self) -> Any:
        """The numpy evaluator of this model, or None without numpy or for text inputs."""
        if self._block is None:
            from modelapi.formats.pipeline.vectorised import evaluator_for

            self._block = evaluator_for(self) or False
        return self._block or None


def load(
    data: bytes, *, features: Sequence[Feature], task: Task, classes: Sequence[Label] | None
) -> PipelineModel:
    """Load `pipeline.json` for a model's features; raise BundleError if it does not fit.

    Groups of trees a Lambda package holds compiled for this very file are used as they are
    (`modelapi.formats.pipeline.code_cache`); the file is checked all the same.
    """
    spec = decode_spec(data)
    stages = check_spec(spec, features, task, classes)
    groups = precompiled_for(data) or compile_group
    return PipelineModel(spec, task=task, classes=classes, stages=stages, groups=groups)
