"""Column roles, the default pipelines per model family, and what the report shows of them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelapi.errors import DataError
from modelapi.schema import Feature
from modelapi.training.data import Dataset, load_dataset
from modelapi.training.preprocessing import describe_pipeline, fit_estimator, handles_missing
from modelapi.training.roles import infer_role, parse_feature_option
from modelapi.training.workflow import make_estimator, train
from modelapi.values import datetime_days
from tests.tables import PLANS, customers, write_customers


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_customers(tmp_path_factory.mktemp("data") / "customers.csv")


@pytest.fixture(scope="module")
def dataset(table: Path) -> Dataset:
    return load_dataset(table)


def test_each_column_gets_its_role(dataset: Dataset) -> None:
    roles = {r.column: r.role for r in dataset.roles}
    assert roles == {
        "customer_id": "identifier",
        "plan": "category",
        "Autopay": "boolean",
        "signup_date": "datetime",
        "Tenure Months": "integer",
        "Monthly Charges": "number",
        "Support Calls (last 90d)!": "number",  # whole numbers, but NaN makes them floats
        "country": "constant",
        "notes": "text",
    }
    keys = [f.key for f in dataset.features]
    assert keys == [
        "plan",
        "autopay",
        "signup_date",
        "tenure_months",
        "monthly_charges",
        "support_calls_last_90d",
    ]
    assert dataset.target.key == "churn"
    assert dataset.classes == ("no", "yes")


def test_values_reach_the_model_as_serving_reads_them(dataset: Dataset, table: Path) -> None:
    raw = pd.read_csv(table, keep_default_na=False, dtype=str)
    X = dataset.X
    days = [datetime_days(v) if v else None for v in raw["signup_date"]]
    assert [None if np.isnan(v) else v for v in X["signup_date"]] == days
    flags = {"True": 1.0, "False": 0.0}
    assert [None if np.isnan(v) else v for v in X["Autopay"]] == [
        flags.get(v) for v in raw["Autopay"]
    ]
    assert set(X["plan"].dropna()) == set(PLANS)
    assert X["plan"].isna().sum() == (raw["plan"] == "").sum()
    plan = next(f for f in dataset.features if f.key == "plan")
    assert plan.categories == tuple(sorted(PLANS))
    signup = next(f for f in dataset.features if f.key == "signup_date")
    assert (signup.type, signup.min) == ("datetime", min(d for d in days if d is not None))
    assert dataset.has_missing


def test_the_summary_prints_roles_and_what_was_dropped(dataset: Dataset) -> None:
    text = dataset.summary.format()
    assert re.search(r"customer_id +identifier +2000 +0 +dropped: named like an identifier", text)
    assert re.search(r"signup_date +datetime .* 2021-01-\d\d to 2024-12-\d\d", text)
    assert "warning: not used as features: customer_id (identifier" in text
    assert "country (constant: a single value in 2000 rows)" in text
    assert "notes (text: free text" in text
    # Counts and statistics only: no id, no note, no category value.
    frame = customers()
    for value in [*frame["customer_id"][:50], *frame["notes"][:50], *PLANS]:
        assert value not in text


@pytest.mark.parametrize(
    ("values", "name", "role"),
    [
        ([1, 2, 3] * 10, "x", "integer"),
        (list(range(40)), "row", "identifier"),
        (list(range(40))[::-1], "count", "integer"),
        ([0.5, 1.5] * 10, "x", "number"),
        (["yes", "no", None] * 10, "x", "boolean"),
        ([True, False] * 10, "x", "boolean"),
        ([0, 1] * 10, "x", "integer"),
        (["a", "b", "c"] * 10, "Customer ID", "identifier"),
        ([f"u{i}" for i in range(40)], "user", "identifier"),
        ([f"free text number {i}" for i in range(40)], "x", "text"),
        (["one two three four five"] * 3 + ["six"], "x", "text"),
        (["2024-01-01", "2024-02-01T10:00"] * 10, "x", "datetime"),
        (["2024-01-01", "not a date"] * 10, "x", "category"),
        ([None, None], "x", "constant"),
        (["NZ"] * 5, "x", "constant"),
        ([1, 2] * 10, "Unnamed: 0", "identifier"),
    ],
)
def test_role_rules(values: list[object], name: str, role: str) -> None:
    assert infer_role(pd.Series(values, name=name), given={}, ignore=()).role == role


def test_the_user_overrides_the_roles(table: Path) -> None:
    dataset = load_dataset(
        table,
        ignore=["plan", "monthly_charges"],
        feature_types=dict([parse_feature_option("Tenure Months:category")]),
    )
    roles = {r.column: (r.role, r.reason) for r in dataset.roles}
    assert roles["plan"] == ("ignored", "--ignore")
    assert roles["Monthly Charges"] == ("ignored", "--ignore")
    assert roles["Tenure Months"] == ("category", "--feature")
    tenure = next(f for f in dataset.features if f.column == "Tenure Months")
    assert tenure.categories is not None
    assert "1" in tenure.categories
    assert "1.0" not in tenure.categories
    kept = load_dataset(table, feature_types={"customer_id": "category"})
    customer = next(f for f in kept.features if f.key == "customer_id")
    assert len(customer.categories or ()) == 2000
    with pytest.raises(DataError, match="COLUMN:TYPE"):
        parse_feature_option("plan:enum")


def test_rows_without_a_target_are_dropped_and_counted(tmp_path: Path) -> None:
    frame = customers(n_rows=200)
    frame.loc[:9, "churn"] = None
    dataset = load_dataset(frame)
    assert (dataset.summary.n_no_target, dataset.info.n_rows) == (10, 190)
    assert "dropped 10 rows without a value in churn" in dataset.summary.format()


def _steps(pipeline: object) -> dict[str, list[str]]:
    """Each branch of the ColumnTransformer: the class names of its steps."""
    columns = pipeline.steps[0][1]  # type: ignore[attr-defined]
    found: dict[str, list[str]] = {}
    for name, transformer, _ in columns.transformers:
        inner = getattr(transformer, "steps", None)
        found[name] = (
            [type(s).__name__ for _, s in inner] if inner else [type(transformer).__name__]
        )
    return found


FEATURES = (
    Feature(column="a", key="a", type="number"),
    Feature(column="c", key="c", type="category", categories=("x", "y")),
)


@pytest.mark.parametrize(
    ("model", "missing", "scale", "expected"),
    [
        ("logistic_regression", False, False, {"numeric": ["str"], "category": ["OneHotEncoder"]}),
        (
            "logistic_regression",
            True,
            True,
            {
                "numeric": ["SimpleImputer", "StandardScaler"],
                "category": ["SimpleImputer", "OneHotEncoder"],
            },
        ),
        (
            "gradient_boosting",
            True,
            False,
            {"numeric": ["SimpleImputer"], "category": ["SimpleImputer", "OneHotEncoder"]},
        ),
        # Random forests take NaN themselves (scikit-learn >= 1.4): no numeric imputer.
        (
            "random_forest",
            True,
            False,
            {"numeric": ["str"], "category": ["SimpleImputer", "OneHotEncoder"]},
        ),
    ],
)
def test_default_pipelines_per_family(
    model: str, missing: bool, scale: bool, expected: dict[str, list[str]]
) -> None:
    pipeline = make_estimator(model, "classification", FEATURES, missing=missing, scale=scale)
    assert _steps(pipeline) == expected
    encoder = pipeline.steps[0][1].transformers[1][1]  # type: ignore[attr-defined]
    encoder = getattr(encoder, "steps", [(None, encoder)])[-1][1]
    assert encoder.handle_unknown == "ignore"


def test_handles_missing_follows_scikit_learn_tags() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    assert handles_missing(RandomForestClassifier())
    assert handles_missing(HistGradientBoostingClassifier())
    assert not handles_missing(LogisticRegression())


def test_breast_cancer_converges_by_scaling_and_says_why() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_breast_cancer(as_frame=True).frame
    dataset = load_dataset(frame)
    result = train(dataset, name="cancer")
    steps = _steps(result.estimator)
    assert steps["numeric"] == ["StandardScaler"]
    notes = " ".join(result.notes)
    # The whole warning, scikit-learn's advice included, and why the model was refitted.
    assert "lbfgs failed to converge" in notes
    assert "Increase the number of iterations" in notes
    assert "scale the data" in notes
    assert "fitted again with them scaled" in notes
    # It is the scaled model scikit-learn fits on the same split.
    X, y = dataset.X, dataset.y
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=1)
    reference = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    reference.fit(X_train, y_train)
    assert result.metrics["accuracy"] == reference.score(X_test, y_test)
    never = train(dataset, name="cancer", scale="never")
    assert _steps(never.estimator)["numeric"] == ["str"]
    assert "fitted again" not in " ".join(never.notes)


def test_pima_is_never_scaled(pima_csv: Path) -> None:
    dataset = load_dataset(pima_csv)
    fitted, notes = fit_estimator(
        lambda scaled: make_estimator(
            "logistic_regression", "classification", dataset.features, scale=scaled
        ),
        dataset.X,
        dataset.y,
    )
    assert notes == ()
    assert describe_pipeline(fitted) == (
        "numeric (8): passthrough (unchanged); model: LogisticRegression(max_iter=1000)"
    )


def test_the_report_shows_roles_pipeline_weights_and_auc(dataset: Dataset) -> None:
    from sklearn.metrics import roc_auc_score

    from modelapi.training.report import ReportInput, _roc_figure, render_report

    pipeline = make_estimator(
        "random_forest",
        "classification",
        dataset.features,
        params={"n_estimators": 15},
        missing=dataset.has_missing,
    )
    fitted, _ = fit_estimator(lambda scaled: pipeline, dataset.X, dataset.y)
    scores = fitted.predict_proba(dataset.X)  # type: ignore[attr-defined]
    report = ReportInput(
        title="churn",
        estimator="random_forest",
        task="classification",
        summary=dataset.summary,
        metrics={},
        classes=dataset.classes,
        y_true=dataset.y.tolist(),
        y_pred=fitted.predict(dataset.X).tolist(),  # type: ignore[attr-defined]
        scores=scores.tolist(),
        fitted=fitted,
        features=dataset.features,
    )
    page = render_report(report).decode()
    for words in (
        "<b>customer_id</b>: identifier, named like an identifier",
        "<td>datetime</td>",
        "<h2>Pipeline</h2>",
        "SimpleImputer(strategy=most_frequent) &gt; OneHotEncoder(handle_unknown=ignore",
        "<h2>Feature importances</h2>",
        "<th>Support Calls (last 90d)!</th>",
        "<th>plan</th>",
    ):
        assert words in page, words
    frame = customers()
    for value in [*frame["customer_id"][:50], *frame["notes"][:50], *PLANS]:
        assert f">{value}<" not in page
        assert f"{value}," not in page
    [legend] = [t.get_text() for t in _roc_figure(report, ["no", "yes"]).axes[0].get_legend().texts]
    auc = roc_auc_score(dataset.y == "yes", scores[:, 1])
    assert legend == f"yes (AUC {auc:.3f})"


def test_linear_reports_show_coefficients_per_feature(pima_csv: Path) -> None:
    from modelapi.training.weights import model_weights

    dataset = load_dataset(pima_csv)
    result = train(dataset, name="diabetes")
    weights = model_weights(result.estimator, dataset.features)
    assert weights is not None
    coef = result.estimator[-1].coef_[0]  # type: ignore[index]
    expected = dict(zip([f.column for f in dataset.features], coef.tolist(), strict=True))
    assert dict(weights.values) == expected
    assert "Coefficients" in result.bundle.files["report.html"].decode()
