"""`pipeline.json`: a scikit-learn pipeline as plain JSON, served exactly with the standard library.

The file is a list of steps (column selection, imputers, scalers, encoders) and a final model
(a linear model or a sum of decision trees), every number as scikit-learn holds it. Loading
decodes it with its msgspec schema (`spec`), checks every index and size (`validation`) and
compiles it into one Python function (`compiler`); no code or text from the file is ever
evaluated. `docs/PIPELINE_FORMAT.md` specifies the format so that another runtime can serve it.

Exporting (`sklearn_models`, `sklearn_steps`) imports scikit-learn and numpy at call time only.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from modelapi.bundle import Label, Task
from modelapi.formats.pipeline.model import PipelineModel, load
from modelapi.formats.pipeline.validation import FILE_NAME
from modelapi.schema import Feature

__all__ = ["FILE_NAME", "PipelineModel", "export", "load"]


def export(
    estimator: object, features: Sequence[Feature], task: Task, classes: Sequence[Label] | None
) -> bytes | None:
    """`pipeline.json` for an estimator made of the covered steps, or None."""
    from modelapi.formats.pipeline.sklearn_models import pipeline_spec

    spec = pipeline_spec(estimator, features, task, classes)
    return None if spec is None else msgspec.json.encode(spec)
