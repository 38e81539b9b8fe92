"""Training: a checked Dataset in, a verified bundle (not yet stored) out.

The defaults reproduce the classic notebook exactly: `train_test_split(X, y, test_size=0.3,
random_state=1)` and `LogisticRegression(solver="lbfgs", max_iter=1000)` on the raw features,
no scaling. The preprocessing in front of the estimator is `preprocessing.column_transformer`:
numeric-only data without missing values passes through it unchanged, so it trains on
exactly the numbers the classic workflow used.

`bundle_estimator` is shared by `train`, `modelapi import` and `modelapi.save`: it computes
the metrics, exports and checks every artifact, renders the report and fills the manifest.
"""

from __future__ import annotations

import math
import platform
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from modelapi.bundle import (
    FORMAT_VERSION,
    REPORT_FILE,
    Bundle,
    DataInfo,
    Manifest,
    artifact_entry,
)
from modelapi.errors import ConfigError, TrainingError
from modelapi.schema import Feature, Target, snake_case
from modelapi.store import check_name
from modelapi.training.data import Dataset, DataSummary, Label, Task, json_scalar
from modelapi.training.export import export_model, model_input
from modelapi.training.preprocessing import Scale, column_transformer, fit_estimator
from modelapi.training.report import ReportInput, render_report
from modelapi.training.result import TrainResult

__all__ = [
    "DEFAULT_MODELS",
    "ESTIMATORS",
    "REPORT_FILE",
    "TrainResult",
    "bundle_estimator",
    "default_name",
    "evaluate",
    "library_versions",
    "make_estimator",
    "train",
]

# Estimator name -> the tasks it can do.
ESTIMATORS: dict[str, tuple[Task, ...]] = {
    "logistic_regression": ("classification",),
    "random_forest": ("classification", "regression"),
    "extra_trees": ("classification", "regression"),
    "decision_tree": ("classification", "regression"),
    "gradient_boosting": ("classification", "regression"),
    "hist_gradient_boosting": ("classification", "regression"),
    "linear_regression": ("regression",),
    "ridge": ("regression",),
    "lasso": ("regression",),
    "elastic_net": ("regression",),
}
DEFAULT_MODELS: dict[Task, str] = {
    "classification": "logistic_regression",
    "regression": "linear_regression",
}
_LIBRARIES = ("scikit-learn", "numpy", "pandas", "skl2onnx", "onnx", "onnxruntime", "skops")


def library_versions() -> dict[str, str]:
    """Versions of Python and every library that shaped the bundle."""
    found = {"python": platform.python_version()}
    for name in (*_LIBRARIES, "modelapi"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def make_estimator(
    model: str,
    task: Task,
    features: Sequence[Feature],
    *,
    random_state: int = 1,
    params: Mapping[str, object] | None = None,
    missing: bool = False,
    scale: bool = False,
) -> object:
    """Build the unfitted pipeline: `preprocessing.column_transformer`, then the estimator.

    `missing`: the training table has missing values (impute them); `scale`: standardize
    the numeric columns.
    """
    from sklearn import ensemble, tree
    from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline

    tasks = ESTIMATORS.get(model)
    if tasks is None:
        raise ConfigError(f"model {model!r} is not known: use one of {', '.join(ESTIMATORS)}")
    if task not in tasks:
        raise ConfigError(
            f"model {model} does not do {task}; for {task} use one of"
            f" {', '.join(k for k, v in ESTIMATORS.items() if task in v)}"
        )
    suffix = "Classifier" if task == "classification" else "Regressor"
    # Tree estimators come in a classifier and a regressor of one name: RandomForest + suffix.
    trees = {
        "random_forest": (ensemble, "RandomForest"),
        "extra_trees": (ensemble, "ExtraTrees"),
        "decision_tree": (tree, "DecisionTree"),
        "gradient_boosting": (ensemble, "GradientBoosting"),
        "hist_gradient_boosting": (ensemble, "HistGradientBoosting"),
    }
    estimator: object
    if model in trees:
        module, stem = trees[model]
        estimator = getattr(module, stem + suffix)(random_state=random_state)
    else:
        estimator = {
            "logistic_regression": lambda: LogisticRegression(solver="lbfgs", max_iter=1000),
            "linear_regression": LinearRegression,
            "ridge": Ridge,
            "lasso": Lasso,
            "elastic_net": ElasticNet,
        }[model]()
    if params:
        try:
            estimator.set_params(**params)  # type: ignore[attr-defined]
        except ValueError as exc:
            raise ConfigError(f"params for {model}: {exc}") from None
    columns = column_transformer(estimator, features, missing=missing, scale=scale)
    return Pipeline([("columns", columns), ("model", estimator)])


def evaluate(
    estimator: object, X: pd.DataFrame, y: pd.Series, task: Task, classes: Sequence[Label] | None
) -> tuple[dict[str, object], list[object], list[list[float]] | None]:
    """Metrics on held-out rows; also the predictions and class probabilities behind them."""
    from sklearn import metrics as sk

    given = model_input(estimator, X)
    predicted = estimator.predict(given)  # type: ignore[attr-defined]
    truth = y.to_numpy()
    if task == "regression":
        values = np.asarray(predicted, dtype=float)
        found: dict[str, object] = {
            "mae": float(sk.mean_absolute_error(truth, values)),
            "rmse": float(math.sqrt(sk.mean_squared_error(truth, values))),
            "r2": float(sk.r2_score(truth, values)) if len(truth) > 1 else None,
        }
        return found, values.tolist(), None
    labels = list(estimator.classes_)  # type: ignore[attr-defined]
    proba = np.asarray(estimator.predict_proba(given), dtype=np.float64)  # type: ignore[attr-defined]
    binary = len(labels) == 2
    average = "binary" if binary else "macro"
    options: dict[str, object] = {"average": average, "zero_division": 0}
    if binary:
        options["pos_label"] = labels[1]
    found = {"accuracy": float(sk.accuracy_score(truth, predicted))}
    found["precision"] = float(sk.precision_score(truth, predicted, **options))
    found["recall"] = float(sk.recall_score(truth, predicted, **options))
    found["f1"] = float(sk.f1_score(truth, predicted, **options))
    found["average"] = average
    if binary:
        found["positive_class"] = json_scalar(labels[1])
        both = len(set(truth.tolist())) == 2
        found["roc_auc"] = (
            float(sk.roc_auc_score(truth == labels[1], proba[:, 1])) if both else None
        )
    found["labels"] = [json_scalar(v) for v in labels]
    found["confusion_matrix"] = sk.confusion_matrix(truth, predicted, labels=labels).tolist()
    return found, [json_scalar(v) for v in predicted], proba.tolist()


def bundle_estimator(
    estimator: object,
    *,
    estimator_name: str,
    name: str,
    features: Sequence[Feature],
    target: Target,
    task: Task,
    classes: Sequence[Label] | None,
    X_check: pd.DataFrame,
    y_check: pd.Series | None = None,
    data: DataInfo | None = None,
    summary: DataSummary | None = None,
    extra_metrics: Mapping[str, object] | None = None,
    notes: Sequence[str] = (),
) -> TrainResult:
    """Export, check and describe a fitted estimator as an (unstored) bundle."""
    check_name("model name", name)
    if y_check is not None:
        metrics, predicted, scores = evaluate(estimator, X_check, y_check, task, classes)
    else:
        metrics, predicted, scores = {}, [], None
    metrics.update(extra_metrics or {})
    artifacts = export_model(
        estimator, features=features, task=task, classes=classes, X_check=X_check
    )
    metrics["format_check"] = artifacts.check
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    report = render_report(
        ReportInput(
            title=f"{name}: {target.column}",
            estimator=estimator_name,
            task=task,
            summary=summary,
            metrics=metrics,
            classes=classes,
            y_true=[json_scalar(v) for v in y_check.tolist()] if y_check is not None else [],
            y_pred=predicted,
            scores=scores,
            created_at=created_at,
            notes=notes,
            fitted=estimator,
            features=tuple(features),
        )
    )
    files = {**artifacts.files, REPORT_FILE: report}
    manifest = Manifest(
        format_version=FORMAT_VERSION,
        name=name,
        version=0,
        created_at=created_at,
        task=task,
        estimator=estimator_name,
        target=target,
        features=artifacts.features,
        serving=artifacts.serving,
        artifacts={k: artifact_entry(v) for k, v in sorted(files.items())},
        classes=tuple(classes) if classes is not None else None,
        metrics=metrics,
        data=data,
        library_versions=library_versions(),
    )
    return TrainResult(
        bundle=Bundle(manifest, files),
        estimator=estimator,
        metrics=metrics,
        summary=summary,
        notes=tuple(notes),
    )


def default_name(source: str) -> str:
    """A model name from a data source: `data/pima.csv` -> `pima`."""
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", source.rstrip("/").rsplit("/", 1)[-1])
    return snake_case(stem)[:64] or "model"


def train(
    dataset: Dataset,
    *,
    model: str | None = None,
    test_size: float = 0.3,
    random_state: int = 1,
    name: str | None = None,
    params: Mapping[str, object] | None = None,
    progress: Callable[[str], None] | None = None,
    scale: Scale = "auto",
) -> TrainResult:
    """Split, fit, evaluate and export; the bundle is checked but not stored.

    `scale`: standardize the numeric columns of a model that needs it (`preprocessing`).
    """
    from sklearn.model_selection import train_test_split

    say = progress or (lambda _: None)
    name = check_name("model name", name or default_name(dataset.info.source))
    model = model or DEFAULT_MODELS[dataset.task]
    if not 0.0 < test_size < 1.0:
        raise ConfigError(f"test size {test_size} must be between 0 and 1 (exclusive)")

    def build(scaled: bool) -> object:
        return make_estimator(
            model,
            dataset.task,
            dataset.features,
            random_state=random_state,
            params=params,
            missing=dataset.has_missing,
            scale=scaled,
        )

    build(False)  # a bad model name or parameter fails before the split
    X = dataset.X
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, dataset.y, test_size=test_size, random_state=random_state
        )
    except ValueError as exc:
        raise TrainingError(
            f"cannot split {len(X)} rows with test size {test_size}: {exc}"
        ) from None
    if dataset.task == "classification" and y_train.nunique() < 2:
        raise TrainingError(
            "the training split holds a single class; use more data or another --random-state"
        )
    say(f"training {model} on {len(X_train)} rows, testing on {len(X_test)} rows")
    estimator, notes = fit_estimator(
        build, X_train, y_train, scale=scale, missing=dataset.has_missing
    )
    for note in notes:
        say(f"warning: {note}")
    say("checking the exported model against scikit-learn")
    return bundle_estimator(
        estimator,
        estimator_name=model,
        name=name,
        features=dataset.features,
        target=dataset.target,
        task=dataset.task,
        classes=dataset.classes,
        X_check=X_test,
        y_check=y_test,
        data=dataset.info,
        summary=dataset.summary,
        extra_metrics={
            "n_train": len(X_train),
            "n_test": len(X_test),
            "test_size": test_size,
            "random_state": random_state,
        },
        notes=notes,
    )
