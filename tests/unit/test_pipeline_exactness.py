"""pipeline.json answers exactly as scikit-learn: every covered estimator and step.

The data are scikit-learn's bundled tables as frames (their column names hold spaces and
parentheses) with missing cells and a text column added. Each model is compared with
scikit-learn on held-out rows, on rows with each feature missing, with an unseen category,
and on and beside every threshold the model has: trees give identical labels and numbers,
linear sums and the logistic/softmax functions are within 1e-12.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest

from modelapi.bundle import Task
from modelapi.formats import pipeline
from modelapi.formats.pipeline import PipelineModel
from modelapi.formats.pipeline.edges import edge_values
from modelapi.schema import Feature
from modelapi.training.check_rows import frame_rows, model_input
from modelapi.training.data import describe_features


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin on a busy machine: one is plenty here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


UNSEEN = "never-seen"


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def table(
    name: str, n_columns: int = 6, missing: float = 0.08, seed: int = 0
) -> tuple[pd.DataFrame, pd.Series]:
    """A bundled table (first columns) with missing cells and a text column `tone` added."""
    from sklearn import datasets

    loader = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }[name]
    frame = loader(as_frame=True)
    X = frame.data.iloc[:, :n_columns].copy()
    y = frame.target
    rng = np.random.default_rng(seed)
    first = X.columns[0]
    tones = np.array(["red", "green", "blue", "amber", "violet"])
    # Ranked by a feature so the text column carries signal; "violet" stays rare.
    rank = X[first].rank(method="first").to_numpy() / len(X)
    X["tone"] = tones[np.minimum((rank * 4).astype(int), 3)]
    X.loc[rng.random(len(X)) < 0.02, "tone"] = "violet"
    if missing:
        for column in X.columns:
            X.loc[rng.random(len(X)) < missing, column] = np.nan
    return X, y


def served(
    estimator: object, X: pd.DataFrame, task: Task
) -> tuple[PipelineModel, tuple[Feature, ...]]:
    features = describe_features(X)
    classes = (
        tuple(_plain(c) for c in estimator.classes_)  # type: ignore[attr-defined]
        if task == "classification"
        else None
    )
    data = pipeline.export(estimator, features, task, classes)  # type: ignore[arg-type]
    assert data is not None, f"pipeline.json cannot express {estimator}"
    model = pipeline.load(data, features=features, task=task, classes=classes)  # type: ignore[arg-type]
    return model, features


def probes(
    model: PipelineModel, X: pd.DataFrame, features: tuple[Feature, ...]
) -> list[pd.DataFrame]:
    """Held-out rows, each feature missing, an unseen category, the model's threshold values."""
    base = X.iloc[:20].reset_index(drop=True)
    frames = [X]
    everything = base.copy()
    for feature in features:
        rows = base.copy()
        # NaN, as pandas reads an empty cell: scikit-learn's imputers skip None in text.
        kind = object if feature.type == "category" else float
        rows[feature.column] = pd.Series([np.nan] * len(rows), dtype=kind)
        everything[feature.column] = rows[feature.column]
        frames.append(rows)
        if feature.type == "category":
            rows = base.copy()
            rows[feature.column] = UNSEEN
            frames.append(rows)
    frames.append(everything)
    for index, values in edge_values(model).items():
        column = features[index].column
        rows = base.iloc[[i % len(base) for i in range(len(values))]].reset_index(drop=True)
        rows[column] = values
        frames.append(rows)
    return frames


def assert_exact(
    estimator: object,
    X: pd.DataFrame,
    task: Task,
    tolerance: float = 0.0,
    predict: Callable[[PipelineModel], Callable[..., object]] = lambda m: m.predict_compiled,
) -> int:
    """Compare with scikit-learn on every probe it answers; return how many rows were."""
    model, features = served(estimator, X, task)
    compared = 0
    for frame in probes(model, X, features):
        given = model_input(estimator, frame)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                labels = [_plain(v) for v in estimator.predict(given)]  # type: ignore[attr-defined]
                proba = (
                    estimator.predict_proba(given)  # type: ignore[attr-defined]
                    if task == "classification"
                    else None
                )
        except (ValueError, TypeError):
            continue  # scikit-learn refuses these rows (missing values without an imputer)
        answers = predict(model)(frame_rows(frame, features))
        assert isinstance(answers, list)
        compared += len(answers)
        if task == "regression":
            for (value, none), expected in zip(answers, labels, strict=True):
                assert none is None
                assert _close(value, expected, tolerance), (value, expected)
            continue
        assert [label for label, _ in answers] == labels
        for (_, got), expected in zip(answers, proba, strict=True):
            assert all(_close(a, b, tolerance) for a, b in zip(got, expected, strict=True))
    return compared


def _close(a: object, b: object, tolerance: float) -> bool:
    a, b = float(a), float(b)  # type: ignore[arg-type]
    if tolerance == 0.0:
        return a == b
    return abs(a - b) <= tolerance * max(1.0, abs(b))


def _split(X: pd.DataFrame, y: pd.Series) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0)
    return X_train, y_train, X_test.reset_index(drop=True)


def _text_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


def _numbers(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]


def _encoded(X: pd.DataFrame, final: object, impute: bool = False) -> object:
    """Numbers as they are (or imputed), the text column one-hot encoded, then `final`."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric: object = SimpleImputer(strategy="median") if impute else "passthrough"
    text = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    columns = ColumnTransformer([("n", numeric, _numbers(X)), ("t", text, _text_columns(X))])
    return make_pipeline(columns, final)


# ---- trees -----------------------------------------------------------------------------------


def _trees() -> list[tuple[str, Task, str, dict[str, object], bool]]:
    # (table, task, estimator, params, needs an imputer: GradientBoosting refuses NaN)
    return [
        ("cancer", "classification", "DecisionTreeClassifier", {"max_depth": 8}, False),
        ("diabetes", "regression", "DecisionTreeRegressor", {"min_samples_leaf": 3}, False),
        ("cancer", "classification", "RandomForestClassifier", {"n_estimators": 20}, False),
        ("wine", "classification", "RandomForestClassifier", {"n_estimators": 10}, False),
        ("diabetes", "regression", "RandomForestRegressor", {"n_estimators": 10}, False),
        ("iris", "classification", "ExtraTreesClassifier", {"n_estimators": 10}, False),
        ("diabetes", "regression", "ExtraTreesRegressor", {"n_estimators": 10}, False),
        ("cancer", "classification", "GradientBoostingClassifier", {"n_estimators": 20}, True),
        ("wine", "classification", "GradientBoostingClassifier", {"n_estimators": 10}, True),
        ("diabetes", "regression", "GradientBoostingRegressor", {"n_estimators": 20}, True),
    ]


@pytest.mark.parametrize(("name", "task", "kind", "params", "impute"), _trees())
def test_trees_answer_identically(
    name: str, task: Task, kind: str, params: dict[str, object], impute: bool
) -> None:
    from sklearn import ensemble, tree

    module = tree if kind.startswith("Decision") else ensemble
    final = getattr(module, kind)(random_state=0, **params)
    X, y = table(name)
    X_train, y_train, X_test = _split(X, y)
    model = _encoded(X, final, impute=impute).fit(X_train, y_train)  # type: ignore[attr-defined]
    # GradientBoosting's probabilities go through exp: equal to within rounding.
    tolerance = 1e-12 if kind.startswith("Gradient") and task == "classification" else 0.0
    assert assert_exact(model, X_test, task, tolerance) > len(X_test)


@pytest.mark.parametrize(
    ("name", "task", "loss"),
    [
        ("cancer", "classification", "log_loss"),
        ("wine", "classification", "log_loss"),
        ("diabetes", "regression", "squared_error"),
        ("diabetes", "regression", "poisson"),
    ],
)
def test_hist_gradient_boosting_native_missing_values_and_categories(
    name: str, task: Task, loss: str
) -> None:
    from sklearn import ensemble

    kind = (
        "HistGradientBoostingClassifier"
        if task == "classification"
        else "HistGradientBoostingRegressor"
    )
    X, y = table(name)
    if loss == "poisson":
        y = y - y.min() + 1.0
    X_train, y_train, X_test = _split(X, y)
    model = getattr(ensemble, kind)(
        loss=loss, max_iter=30, categorical_features=["tone"], random_state=0
    ).fit(X_train, y_train)
    tolerance = 0.0 if loss == "squared_error" else 1e-12
    assert assert_exact(model, X_test, task, tolerance) > len(X_test)


def test_hist_gradient_boosting_categories_unknown_at_binning_go_the_missing_way() -> None:
    """Early stopping fits the bins on part of the data: a category seen only by the encoder
    counts as unknown in the splits, and goes where missing values go."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = table("cancer", missing=0.0)
    X["tone"] = np.where(np.arange(len(X)) == 5, "lonely", X["tone"])
    model = HistGradientBoostingClassifier(
        max_iter=20,
        categorical_features=["tone"],
        early_stopping=True,
        validation_fraction=0.3,
        n_iter_no_change=50,
        random_state=3,
    ).fit(X, y)
    assert assert_exact(model, X, "classification", 1e-12) > len(X)


# ---- linear models and preprocessing ---------------------------------------------------------


def _preprocessing(variant: str, X: pd.DataFrame, task: Task = "classification") -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import (
        MaxAbsScaler,
        MinMaxScaler,
        OneHotEncoder,
        OrdinalEncoder,
        RobustScaler,
        StandardScaler,
        TargetEncoder,
    )

    numbers, text = _numbers(X), _text_columns(X)
    if variant == "standard":
        num = make_pipeline(SimpleImputer(strategy="mean", add_indicator=True), StandardScaler())
        cat = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="none"),
            OneHotEncoder(handle_unknown="ignore", drop="first"),
        )
        return ColumnTransformer([("n", num, numbers), ("t", cat, text)])
    if variant == "minmax":
        num = make_pipeline(SimpleImputer(strategy="median"), MinMaxScaler(clip=True))
        cat = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20)
        return ColumnTransformer([("n", num, numbers[:3]), ("t", cat, text)], remainder="drop")
    if variant == "robust":
        num = make_pipeline(SimpleImputer(strategy="most_frequent"), RobustScaler())
        cat = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=3)
        ct = ColumnTransformer(
            [("t", cat, text), ("n", num, numbers[1:])], remainder=SimpleImputer()
        )
        return ct
    if variant == "maxabs":
        num = make_pipeline(SimpleImputer(keep_empty_features=True), MaxAbsScaler())
        cat = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2
        )
        return ColumnTransformer([("n", num, numbers), ("t", cat, text)])
    assert variant == "target"
    num = make_pipeline(SimpleImputer(), StandardScaler(with_mean=False))
    target = "continuous" if task == "regression" else "auto"
    return ColumnTransformer([("n", num, numbers), ("t", TargetEncoder(target_type=target), text)])


@pytest.mark.parametrize("variant", ["standard", "minmax", "robust", "maxabs", "target"])
@pytest.mark.parametrize(
    ("name", "task", "kind"),
    [
        ("cancer", "classification", "LogisticRegression"),
        ("wine", "classification", "LogisticRegression"),
        ("diabetes", "regression", "Ridge"),
    ],
)
def test_preprocessing_steps_before_linear_models(
    variant: str, name: str, task: Task, kind: str
) -> None:
    from sklearn import linear_model
    from sklearn.pipeline import make_pipeline

    X, y = table(name)
    X_train, y_train, X_test = _split(X, y)
    final = getattr(linear_model, kind)(**({"max_iter": 5000} if task == "classification" else {}))
    model = make_pipeline(_preprocessing(variant, X, task), final).fit(X_train, y_train)
    assert assert_exact(model, X_test, task, 1e-12) > len(X_test)


@pytest.mark.parametrize(
    ("name", "task", "kind", "params"),
    [
        ("diabetes", "regression", "LinearRegression", {}),
        ("diabetes", "regression", "Lasso", {"alpha": 0.1}),
        ("diabetes", "regression", "ElasticNet", {"alpha": 0.01}),
        ("diabetes", "regression", "SGDRegressor", {"random_state": 0}),
        ("cancer", "classification", "SGDClassifier", {"loss": "log_loss", "random_state": 0}),
        ("iris", "classification", "SGDClassifier", {"loss": "log_loss", "random_state": 0}),
    ],
)
def test_linear_models(name: str, task: Task, kind: str, params: dict[str, object]) -> None:
    from sklearn import linear_model
    from sklearn.pipeline import make_pipeline

    X, y = table(name)
    X_train, y_train, X_test = _split(X, y)
    final = getattr(linear_model, kind)(**params)
    model = make_pipeline(_preprocessing("standard", X), final).fit(X_train, y_train)
    assert assert_exact(model, X_test, task, 1e-12) > len(X_test)


def test_scaled_trees_see_the_thresholds_through_the_scaler() -> None:
    """A tree after a scaler: the check values are the thresholds mapped back to the input."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    X, y = table("cancer")
    X_train, y_train, X_test = _split(X, y)
    final = RandomForestClassifier(n_estimators=5, random_state=0)
    model = make_pipeline(_preprocessing("standard", X), final).fit(X_train, y_train)
    assert assert_exact(model, X_test, "classification") > len(X_test)
    served_model, _ = served(model, X_test, "classification")
    assert len(edge_values(served_model)) == len(_numbers(X))


def test_a_bare_forest_on_an_array() -> None:
    """Fitted on numpy (no feature names): the features are taken in their table order."""
    from sklearn.ensemble import RandomForestRegressor

    X, y = table("diabetes", missing=0.0)
    X = X.drop(columns="tone")
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(X.to_numpy(), y)
    assert not hasattr(model, "feature_names_in_")
    assert assert_exact(model, X, "regression") > len(X)


def test_columns_reordered_by_the_estimator() -> None:
    """An estimator fitted on the columns in another order than the feature table's."""
    from sklearn.tree import DecisionTreeClassifier

    X, y = table("iris", missing=0.0)
    X = X.drop(columns="tone")
    model = DecisionTreeClassifier(random_state=0).fit(X[X.columns[::-1]], y)
    features = describe_features(X)
    data = pipeline.export(model, features, "classification", (0, 1, 2))
    assert data is not None
    served_model = pipeline.load(data, features=features, task="classification", classes=(0, 1, 2))
    answers = served_model.predict(frame_rows(X, features))
    assert [label for label, _ in answers] == model.predict(X[X.columns[::-1]]).tolist()


def test_not_covered_estimators_give_none() -> None:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    X, y = table("iris", missing=0.0)
    X = X.drop(columns="tone")
    features = describe_features(X)
    for model in (
        KNeighborsClassifier().fit(X, y),
        make_pipeline(PolynomialFeatures(), KNeighborsClassifier()).fit(X, y),
    ):
        assert pipeline.export(model, features, "classification", (0, 1, 2)) is None


def test_missing_and_unknown_go_where_scikit_learn_sends_them() -> None:
    """The probes really do exercise missing values: a forest trained on them answers a row
    with a missing value differently from the same row with the value filled in."""
    from sklearn.ensemble import RandomForestClassifier

    X, y = table("cancer", missing=0.2)
    model = _encoded(X, RandomForestClassifier(n_estimators=10, random_state=0)).fit(X, y)
    served_model, features = served(model, X, "classification")
    rows = frame_rows(X.iloc[:50], features)
    blanked = [[None if i == 1 else v for i, v in enumerate(row)] for row in rows]
    assert served_model.predict(rows) != served_model.predict(blanked)
    assert not math.isnan(served_model.predict(blanked)[0][1][0])  # type: ignore[index]
