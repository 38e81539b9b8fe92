"""The default preprocessing in front of each model family, and fitting it.

One ColumnTransformer selects the columns by name: numeric features (integers, numbers,
booleans as 1.0/0.0, dates as days) in one branch, categories in the other.

- Numbers pass through unchanged unless something calls for more, so a numeric table
  without missing values trains on exactly the raw numbers (the Pima contract:
  `LogisticRegression(solver="lbfgs", max_iter=1000)` on the raw features).
- Missing values (any in the table): numbers get `SimpleImputer(strategy="median",
  add_indicator=True)` (an indicator column for each feature that had missing values),
  unless the estimator handles NaN itself (scikit-learn's `allow_nan` tag: random forests,
  HistGradientBoosting, decision trees); categories get `SimpleImputer(most_frequent)`.
- Scaling (`StandardScaler` on the numeric branch), for the estimators that are fitted by
  an iterative solver on a penalized loss (linear models, SVMs, neighbours, neural nets;
  never trees): with `scale="auto"`, when the table has missing values, or when the fit on
  the raw numbers does not converge (then it is fitted again, scaled, and a note says so);
  `"always"` and `"never"` decide for every model.
- Categories: `OneHotEncoder(handle_unknown="ignore")` over the training categories; an
  unseen category then counts as none of them, as in scikit-learn.

Every warning the fit raised is kept whole (scikit-learn's advice included), as notes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import pandas as pd

from modelapi.errors import TrainingError
from modelapi.schema import Feature

__all__ = [
    "SCALE_CHOICES",
    "Scale",
    "column_transformer",
    "describe_pipeline",
    "fit_estimator",
    "handles_missing",
    "needs_scaling",
]

Scale = Literal["auto", "always", "never"]
SCALE_CHOICES: tuple[Scale, ...] = ("auto", "always", "never")
# Families fitted by an iterative solver whose result depends on the scale of the columns.
_SCALED_MODULES = ("sklearn.linear_model", "sklearn.svm", "sklearn.neighbors", "sklearn.neural")


def needs_scaling(estimator: object) -> bool:
    """Whether an estimator's fit depends on the scale of the numeric columns."""
    return type(estimator).__module__.startswith(_SCALED_MODULES)


def handles_missing(estimator: object) -> bool:
    """Whether an estimator takes NaN in its input itself (scikit-learn's allow_nan tag)."""
    from sklearn.utils import get_tags

    try:
        return bool(get_tags(estimator).input_tags.allow_nan)
    except (AttributeError, TypeError, ValueError):
        return False


def column_transformer(
    estimator: object, features: Sequence[Feature], *, missing: bool, scale: bool
) -> object:
    """The unfitted ColumnTransformer in front of `estimator` for these features."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.column for f in features if f.type != "category"]
    categorical = [f for f in features if f.type == "category"]
    branches: list[tuple[str, object, list[str]]] = []
    if numeric:
        steps: list[tuple[str, object]] = []
        if missing and not handles_missing(estimator):
            steps.append(("impute", SimpleImputer(strategy="median", add_indicator=True)))
        if scale:
            steps.append(("scale", StandardScaler()))
        branches.append(("numeric", Pipeline(steps) if steps else "passthrough", numeric))
    if categorical:
        encoder = OneHotEncoder(
            categories=[list(f.categories or ()) for f in categorical],
            handle_unknown="ignore",
            sparse_output=False,
        )
        encode: object = encoder
        if missing:
            imputer = SimpleImputer(strategy="most_frequent")
            encode = Pipeline([("impute", imputer), ("encode", encoder)])
        branches.append(("category", encode, [f.column for f in categorical]))
    return ColumnTransformer(branches)


def fit_estimator(
    build: Callable[[bool], object],
    X: pd.DataFrame,
    y: pd.Series,
    *,
    scale: Scale = "auto",
    missing: bool = False,
) -> tuple[object, tuple[str, ...]]:
    """Fit the pipeline `build(scaled)` makes; return it and the notes of the fit.

    With `scale="auto"`, a model that needs scaling is scaled when there are missing values,
    and fitted again scaled when the raw fit does not converge. Raise TrainingError when
    scikit-learn refuses the data.
    """
    pipeline = build(False)
    final = _final(pipeline)
    scaled = scale == "always" or (scale == "auto" and missing and needs_scaling(final))
    if scaled:
        pipeline = build(True)
    fitted, caught = _fit(pipeline, X, y)
    notes = [_whole(w) for w in caught]
    if scale == "auto" and not scaled and needs_scaling(final) and _not_converged(caught):
        pipeline = build(True)
        fitted, caught = _fit(pipeline, X, y)
        notes.append(
            f"{type(final).__name__} did not converge on the raw numeric columns, so it was"
            " fitted again with them scaled (StandardScaler); --scale never keeps them raw"
        )
        notes.extend(_whole(w) for w in caught)
    return fitted, tuple(dict.fromkeys(notes))


def _final(pipeline: object) -> object:
    steps = getattr(pipeline, "steps", None)
    return steps[-1][1] if steps else pipeline


def _fit(
    pipeline: object, X: pd.DataFrame, y: pd.Series
) -> tuple[object, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pipeline.fit(X, y)  # type: ignore[attr-defined]
        except ValueError as exc:
            name = type(_final(pipeline)).__name__
            raise TrainingError(f"{name} could not be fitted: {exc}"[:400]) from None
    return pipeline, list(caught)


def _not_converged(caught: Sequence[warnings.WarningMessage]) -> bool:
    from sklearn.exceptions import ConvergenceWarning

    return any(issubclass(w.category, ConvergenceWarning) for w in caught)


def _whole(caught: warnings.WarningMessage) -> str:
    # The whole message on one line: scikit-learn's advice (max_iter, scaling) comes after
    # the first colon and line break.
    return " ".join(str(caught.message).split())


def describe_pipeline(estimator: object) -> str:
    """The fitted or unfitted pipeline in one line, without training values.

    `numeric (8): SimpleImputer(strategy=median, add_indicator=True) > StandardScaler;
    category (2): OneHotEncoder(handle_unknown=ignore); model: LogisticRegression(...)`.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    steps = estimator.steps if isinstance(estimator, Pipeline) else [("model", estimator)]
    parts = []
    for name, step in steps:
        if isinstance(step, ColumnTransformer):
            branches = getattr(step, "transformers_", None) or step.transformers
            for branch, transformer, columns in branches:
                if transformer == "drop" or branch == "remainder":
                    continue
                count = len(columns) if isinstance(columns, (list, tuple)) else "?"
                parts.append(f"{branch} ({count}): {_step_text(transformer)}")
        else:
            parts.append(f"{name}: {_step_text(step)}")
    return "; ".join(parts)


def _step_text(step: object) -> str:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(step, Pipeline):
        return " > ".join(_step_text(inner) for _, inner in step.steps)
    if step == "passthrough" or (isinstance(step, FunctionTransformer) and step.func is None):
        return "passthrough (unchanged)"
    return f"{type(step).__name__}({_changed_params(step)})"


def _changed_params(step: object) -> str:
    """The hyper-parameters set away from their defaults; lists (categories) never shown."""
    get = getattr(step, "get_params", None)
    if get is None:
        return ""
    try:
        defaults = type(step)().get_params(deep=False)  # type: ignore[attr-defined]
    except TypeError:
        defaults = {}
    shown = []
    for key, value in sorted(get(deep=False).items()):
        if isinstance(value, (list, tuple, dict)) or hasattr(value, "get_params"):
            continue
        if key not in defaults or _differs(defaults[key], value):
            shown.append(f"{key}={value}")
    return ", ".join(shown)


def _differs(default: object, value: object) -> bool:
    if default is value:  # np.nan, which is not equal to itself
        return False
    try:
        return bool(default != value)
    except (TypeError, ValueError):
        return True
