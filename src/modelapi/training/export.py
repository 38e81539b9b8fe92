"""Turn a fitted scikit-learn estimator into bundle artifacts, each checked against scikit-learn.

The serving artifact is the first format in `modelapi.formats.FORMATS` that can express the
estimator; it must then answer as scikit-learn does on the check rows
(`modelapi.training.check_rows`: held-out rows, every category, missing values, unseen
categories, numbers out of range, tree thresholds): labels equal, probabilities (or
regression values, relative to max(1, |value|)) within the format's tolerance. `linear.json`
and `pipeline.json` compute in float64 (1e-12: pure-Python sums differ from BLAS in the last
bits; trees are identical); `model.onnx` computes in float32 (1e-5, and a label may differ
only where scikit-learn's own top probabilities tie within that). `model.skops` is always
written too, the full-fidelity copy; only types on the trust list are written.

Any disagreement raises TrainingError: a bundle that would answer differently from the
estimator it claims to be is never written. The features returned accept missing values and
unknown categories exactly where the check proved the model answers them. Never writes a
pickle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
import pandas as pd

from modelapi.bundle import Label, Task
from modelapi.errors import BundleError, TrainingError
from modelapi.formats import FORMATS, Format, Model
from modelapi.formats.skops import FILE_NAME as SKOPS_FILE
from modelapi.formats.skops import dump_skops
from modelapi.schema import Feature
from modelapi.training.check_rows import (
    HELD_OUT,
    MISSING,
    UNKNOWN,
    Answers,
    Group,
    all_missing_group,
    ask,
    category_groups,
    edge_groups,
    frame_rows,
    missing_groups,
    model_input,
    range_groups,
    unknown_groups,
)

__all__ = ["Artifacts", "export_model", "frame_rows", "model_input"]

# A format whose tolerance is at least this computes in float32: near-ties may break either way.
_FLOAT32_TOLERANCE = 1e-6
_PIPELINE = "pipeline.json"


@dataclass(frozen=True)
class Artifacts:
    """The files of a bundle and which one serves; `check` records the comparison made.

    `features` is the feature table with `accepts_missing` / `accepts_unknown` set where the
    check proved the served model answers as scikit-learn does.
    """

    serving: str
    files: dict[str, bytes]
    check: dict[str, object] = field(default_factory=dict)
    features: tuple[Feature, ...] = ()


@dataclass(frozen=True)
class _Checked:
    group: Group
    answers: Answers


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _answered(estimator: object, groups: list[Group], task: Task) -> list[_Checked]:
    """The groups scikit-learn answers, asked all at once when it takes them all."""
    if not groups:
        return []
    together = pd.concat([g.frame for g in groups], ignore_index=True)
    answers = ask(estimator, together, task)
    if answers is not None:
        out, start = [], 0
        for group in groups:
            stop = start + len(group.frame)
            proba = None if answers.proba is None else answers.proba[start:stop]
            out.append(_Checked(group, Answers(answers.predicted[start:stop], proba)))
            start = stop
        return out
    if len(groups) == 1:
        return []
    return [c for g in groups for c in _answered(estimator, [g], task)]


def _reference(
    estimator: object, X: pd.DataFrame, features: Sequence[Feature], task: Task
) -> list[_Checked]:
    """scikit-learn's answers on every check group it takes; the held-out ones it must take."""
    required = [Group(HELD_OUT, None, X.reset_index(drop=True)), *category_groups(X, features)]
    checked = _answered(estimator, required, task)
    if len(checked) != len(required):
        refused = {c.group.feature for c in checked} ^ {g.feature for g in required}
        names = [features[i].column for i in refused if i is not None]
        where = f" with every category of {', '.join(names)[:200]}" if names else ""
        raise TrainingError(
            f"the estimator cannot predict the check rows{where}; give data whose categories"
            " it was trained on"
        )
    checked += _answered(estimator, missing_groups(X, features), task)
    accepting = {c.group.feature for c in checked if c.group.kind == MISSING}
    if len(accepting) > 1:
        together = all_missing_group(X, features, {i for i in accepting if i is not None})
        checked += _answered(estimator, [together], task)
    checked += _answered(estimator, unknown_groups(X, features), task)
    checked += _answered(estimator, range_groups(X, features), task)
    return checked


def _edges(model: Model) -> dict[int, list[float]]:
    from modelapi.formats.pipeline import PipelineModel
    from modelapi.formats.pipeline.edges import edge_values

    return edge_values(model) if isinstance(model, PipelineModel) else {}


def _compare(
    served: Format,
    model: Model,
    checked: list[_Checked],
    features: Sequence[Feature],
    task: Task,
    labels: list[object],
) -> dict[str, object]:
    name, tolerance = served.file_name, served.tolerance
    largest = 0.0
    wrong: dict[str, int] = {}
    n_rows = 0
    for item in checked:
        group, expected = item.group, item.answers
        rows = group.rows(features)
        n_rows += len(rows)
        try:
            answers = model.predict(rows)
        except (TypeError, ValueError, KeyError, IndexError, ArithmeticError, BundleError) as exc:
            raise TrainingError(
                f"{name}: cannot answer the {_describe(group, features)} check rows"
                f" ({type(exc).__name__}); the bundle was not written"
            ) from None
        for index, (label, probabilities) in enumerate(answers):
            reference = expected.predicted[index]
            if task == "regression":
                value, target = float(label), float(reference)  # type: ignore[arg-type]
                error = abs(value - target) / max(1.0, abs(target))
                largest = max(largest, error if math.isfinite(error) else math.inf)
                continue
            assert expected.proba is not None
            if probabilities is None:
                raise TrainingError(f"{name}: gives no class probabilities for a classifier")
            proba = expected.proba[index]
            if label != _plain(reference) and not _is_tie(label, proba, labels, tolerance):
                key = _describe(group, features)
                wrong[key] = wrong.get(key, 0) + 1
            for a, b in zip(probabilities, proba, strict=True):
                difference = abs(a - float(b))
                largest = max(largest, difference if math.isfinite(difference) else math.inf)
    if wrong or not largest <= tolerance:
        what = "relative value difference" if task == "regression" else "probability difference"
        details = "; ".join(f"{kind}: {n}" for kind, n in wrong.items())[:300]
        raise TrainingError(
            f"{name}: disagrees with scikit-learn on {n_rows} check rows"
            f" ({sum(wrong.values())} labels differ{': ' + details if details else ''},"
            f" largest {what} {largest:.3g}, allowed {tolerance:g}); the bundle was not written"
            + _hint(name, wrong)
        )
    held_out = sum(len(c.group.frame) for c in checked if c.group.kind == HELD_OUT)
    kinds: dict[str, int] = {}
    for item in checked:
        if item.group.kind != HELD_OUT:
            kinds[item.group.kind] = kinds.get(item.group.kind, 0) + len(item.group.frame)
    return {"artifact": name, "rows": held_out, "generated_rows": kinds, "max_difference": largest}


def _describe(group: Group, features: Sequence[Feature]) -> str:
    if group.feature is None:
        return group.kind if group.kind == HELD_OUT else f"{group.kind} (all features)"
    return f"{group.kind} in {features[group.feature].column[:64]}"


def _is_tie(label: object, proba: np.ndarray, labels: list[object], tolerance: float) -> bool:
    """A float32 format's label among scikit-learn's top probabilities, tied within tolerance."""
    if tolerance < _FLOAT32_TOLERANCE or label not in labels:
        return False
    return bool(proba[labels.index(label)] >= proba.max() - tolerance)


def _hint(name: str, wrong: dict[str, int]) -> str:
    if name == _PIPELINE or not any(k.startswith(MISSING) for k in wrong):
        return ""
    return (
        f". {name} answers missing values differently from scikit-learn (skl2onnx drops the"
        f" missing-value direction trees learn); {_PIPELINE} serves trees with missing values"
        " exactly when the pipeline keeps to the steps docs/PIPELINE_FORMAT.md lists"
    )


def _flagged(features: Sequence[Feature], checked: list[_Checked]) -> tuple[Feature, ...]:
    missing = {c.group.feature for c in checked if c.group.kind == MISSING}
    unknown = {c.group.feature for c in checked if c.group.kind == UNKNOWN}
    return tuple(
        msgspec.structs.replace(
            feature,
            accepts_missing=index in missing,
            accepts_unknown=index in unknown and feature.type == "category",
        )
        for index, feature in enumerate(features)
    )


def export_model(
    estimator: object,
    *,
    features: Sequence[Feature],
    task: Task,
    classes: Sequence[Label] | None,
    X_check: pd.DataFrame,
) -> Artifacts:
    """Export the serving artifact (the first format that fits) and model.skops, checked."""
    if len(X_check) == 0:
        raise TrainingError("no rows to check the exported model against; use more data")
    checked = _reference(estimator, X_check, features, task)
    labels = [_plain(c) for c in getattr(estimator, "classes_", ())]
    for served in FORMATS:
        data = served.export(estimator, features, task, classes)
        if data is None:
            continue
        model = served.load(data, features=features, task=task, classes=classes)
        edges = edge_groups(X_check, features, _edges(model))
        rows = checked + _answered(estimator, edges, task)
        check = _compare(served, model, rows, features, task, labels)
        files = {served.file_name: data, SKOPS_FILE: dump_skops(estimator)}
        return Artifacts(
            serving=served.file_name,
            files=files,
            check=check,
            features=_flagged(features, checked),
        )
    raise TrainingError(f"no serving format can express {type(estimator).__name__}")
