"""Models trained elsewhere: a pickle file (`modelapi import`) or a notebook estimator (`save`).

Both end in the same safe bundle as `modelapi train`: linear.json or model.onnx checked
against the estimator, model.skops, report.html; never a pickle.

A pickle is loaded only with `trust_pickle=True` (`--trust-pickle`), because unpickling runs
whatever code the file contains. The feature table comes from, in order of preference:
- the training data (`data=`, `--data CSV`): column names, types, min/max and categories;
  the test split is recreated with the same `test_size`/`random_state` as `train` (the
  classic notebook's split) and the metrics are computed on it;
- else the estimator's `feature_names_in_` (fitted on a DataFrame): every feature is a
  "number" without min/max, there are no metrics, and the export is checked on 200 rows
  drawn from a fixed-seed normal distribution. Text features need the data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from modelapi.errors import BundleError, DataError, TrainingError
from modelapi.schema import Feature, Target, snake_case
from modelapi.training.data import (
    Dataset,
    Label,
    Task,
    describe_features,
    json_scalar,
    load_dataset,
)
from modelapi.training.workflow import TrainResult, bundle_estimator, default_name

__all__ = ["PICKLE_WARNING", "estimator_task", "import_pickle", "load_pickle", "save_estimator"]

PICKLE_WARNING = (
    "unpickling runs any code the file contains: import only files from a source you trust"
)
_SYNTHETIC_ROWS = 200


def load_pickle(path: str | os.PathLike[str], *, trust_pickle: bool) -> object:
    """Unpickle a file, only when the caller says it trusts it; raise BundleError otherwise."""
    shown = os.fspath(path)
    if not trust_pickle:
        raise BundleError(
            f"{shown}: refusing to unpickle, which would run any code in the file;"
            " if you trust its source, rerun with --trust-pickle"
        )
    if not os.path.isfile(shown):
        raise BundleError(f"{shown}: no such file")
    import joblib  # type: ignore[import-untyped]

    try:
        # joblib reads plain pickles as well as its own (possibly compressed) files.
        estimator: object = joblib.load(shown)
    except Exception as exc:  # unpickling can raise anything the file's code raises
        raise BundleError(f"{shown}: cannot be unpickled ({type(exc).__name__})") from exc
    return estimator


def estimator_task(estimator: object, where: str) -> Task:
    """Check that an object is a fitted scikit-learn classifier or regressor; return its task."""
    from sklearn.base import BaseEstimator, is_classifier, is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(estimator, BaseEstimator) or not hasattr(estimator, "predict"):
        raise TrainingError(
            f"{where}: holds a {type(estimator).__name__}, not a scikit-learn estimator"
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise TrainingError(f"{where}: the estimator is not fitted; fit it first") from None
    if is_classifier(estimator):
        if not hasattr(estimator, "predict_proba"):
            raise TrainingError(f"{where}: the classifier has no predict_proba")
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise TrainingError(f"{where}: {type(estimator).__name__} is neither classifier nor regressor")


def _estimator_name(estimator: object) -> str:
    from sklearn.pipeline import Pipeline

    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    return snake_case(type(final).__name__)


def _classes(estimator: object, task: Task) -> tuple[Label, ...] | None:
    if task == "regression":
        return None
    return tuple(json_scalar(v) for v in estimator.classes_)  # type: ignore[attr-defined]


def _ordered(features: Sequence[Feature], estimator: object, where: str) -> tuple[Feature, ...]:
    """Features in the order the estimator was fitted with, checking counts and names."""
    expected = getattr(estimator, "n_features_in_", None)
    if expected is not None and int(expected) != len(features):
        raise DataError(
            f"{where}: the estimator expects {int(expected)} features but the data has"
            f" {len(features)} feature columns; check --target and the file"
        )
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return tuple(features)
    by_column = {f.column: f for f in features}
    missing = [str(n) for n in names if str(n) not in by_column]
    if missing:
        raise DataError(
            f"{where}: the estimator was fitted with columns the data lacks: {', '.join(missing)}"[
                :400
            ]
        )
    return tuple(by_column[str(n)] for n in names)


def _as_text(X: pd.DataFrame, features: Sequence[Feature]) -> pd.DataFrame:
    return X.astype({f.column: str for f in features if f.type == "category"})


def import_pickle(
    path: str | os.PathLike[str],
    *,
    trust_pickle: bool,
    data: str | os.PathLike[str] | pd.DataFrame | None = None,
    target: str | None = None,
    name: str | None = None,
    test_size: float = 0.3,
    random_state: int = 1,
    drop_missing: bool = False,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Convert a pickled scikit-learn estimator into a checked, unstored bundle."""
    from sklearn.model_selection import train_test_split

    where = os.fspath(path)
    estimator = load_pickle(path, trust_pickle=trust_pickle)
    task = estimator_task(estimator, where)
    name = name or default_name(where)
    say = progress or (lambda _: None)
    if data is None:
        return _without_data(estimator, task, where, name=name, target=target or "prediction")
    dataset: Dataset = load_dataset(data, target=target, task=task, drop_missing=drop_missing)
    features = _ordered(dataset.features, estimator, where)
    X = _as_text(dataset.X[[f.column for f in features]], features)
    _, X_test, _, y_test = train_test_split(
        X, dataset.y, test_size=test_size, random_state=random_state
    )
    say(f"checking the imported model on {len(X_test)} test rows")
    return bundle_estimator(
        estimator,
        estimator_name=_estimator_name(estimator),
        name=name,
        features=features,
        target=dataset.target,
        task=task,
        classes=_classes(estimator, task),
        X_check=X_test,
        y_check=y_test,
        data=dataset.info,
        summary=dataset.summary,
        extra_metrics={"n_test": len(X_test), "test_size": test_size, "random_state": random_state},
        notes=(
            f"Imported from a pickle. Metrics are on the split test_size={test_size},"
            f" random_state={random_state} of the data given; they are optimistic if the"
            " model was trained on those rows.",
        ),
    )


def _without_data(
    estimator: object, task: Task, where: str, *, name: str, target: str
) -> TrainResult:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        raise DataError(
            f"{where}: the estimator does not record its feature names;"
            " give the training data with --data CSV"
        )
    columns = [str(n) for n in names]
    features = tuple(Feature(column=c, key=snake_case(c), type="number") for c in columns)
    keys = [f.key for f in features]
    if len(set(keys)) != len(keys):
        raise DataError(f"{where}: feature names clash after snake_case; give --data CSV")
    rng = np.random.default_rng(0)
    X_check = pd.DataFrame(rng.normal(size=(_SYNTHETIC_ROWS, len(columns))), columns=columns)
    return bundle_estimator(
        estimator,
        estimator_name=_estimator_name(estimator),
        name=name,
        features=features,
        target=Target(column=target, key=snake_case(target)),
        task=task,
        classes=_classes(estimator, task),
        X_check=X_check,
        notes=("Imported from a pickle without data: no metrics, no feature ranges.",),
    )


def save_estimator(
    estimator: object,
    X_sample: pd.DataFrame,
    *,
    name: str,
    y_sample: pd.Series | Sequence[object] | None = None,
    target: str | None = None,
) -> TrainResult:
    """Bundle an estimator fitted in a notebook; X_sample gives the feature table and checks."""
    task = estimator_task(estimator, "estimator")
    if not isinstance(X_sample, pd.DataFrame):
        names = getattr(estimator, "feature_names_in_", None)
        if names is None:
            raise DataError(
                "X_sample must be a pandas DataFrame with the feature columns, because the"
                " estimator does not record feature names"
            )
        X_sample = pd.DataFrame(np.asarray(X_sample), columns=[str(n) for n in names])
    if len(X_sample) == 0:
        raise DataError("X_sample is empty; give some rows of the training data")
    features = _ordered(describe_features(X_sample), estimator, "estimator")
    X = _as_text(X_sample[[f.column for f in features]].reset_index(drop=True), features)
    y: pd.Series | None = None
    if y_sample is not None:
        y = pd.Series(y_sample).reset_index(drop=True)
        if len(y) != len(X):
            raise DataError(f"y_sample has {len(y)} values for {len(X)} rows of X_sample")
    column = target or (str(y.name) if y is not None and y.name is not None else "prediction")
    return bundle_estimator(
        estimator,
        estimator_name=_estimator_name(estimator),
        name=name,
        features=features,
        target=Target(column=column, key=snake_case(column)),
        task=task,
        classes=_classes(estimator, task),
        X_check=X,
        y_check=y,
        extra_metrics={"n_test": len(X)} if y is not None else None,
        notes=("Saved from a fitted estimator; metrics (if any) are on the sample given.",),
    )
