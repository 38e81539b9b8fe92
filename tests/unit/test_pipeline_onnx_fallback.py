"""ONNX, the fallback beyond pipeline.json: any column name, ties, missing values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelapi.errors import BundleError, TrainingError
from modelapi.formats import FORMATS, Format, format_of, onnx, pipeline
from modelapi.formats.onnx import INPUT_COLUMNS, OnnxModel
from modelapi.training import export
from modelapi.training.check_rows import frame_rows
from modelapi.training.data import describe_features
from modelapi.training.export import export_model

# What skl2onnx renames: spaces, dots, dashes, parentheses.
COLUMNS = ["sepal length (cm)", "sepal.width", "petal-length", "petal width (cm)"]


def _iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    X.columns = COLUMNS
    return X, y


def _network(columns: list[str]) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    network = MLPClassifier(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=3000, random_state=0)
    return make_pipeline(ColumnTransformer([("scaled", StandardScaler(), columns)]), network)


def test_any_column_name_is_served_from_onnx() -> None:
    X, y = _iris()
    model = _network(COLUMNS).fit(X, y)  # type: ignore[attr-defined]
    features = describe_features(X)
    artifacts = export_model(
        model, features=features, task="classification", classes=(0, 1, 2), X_check=X
    )
    assert artifacts.serving == "model.onnx"
    served = OnnxModel(
        artifacts.files["model.onnx"], features=features, task="classification", classes=(0, 1, 2)
    )
    answers = served.predict(frame_rows(X, features))
    assert [label for label, _ in answers] == model.predict(X).tolist()  # type: ignore[attr-defined]
    proba = model.predict_proba(X)  # type: ignore[attr-defined]
    assert np.allclose([p for _, p in answers], proba, rtol=0, atol=1e-5)


def _graph(model: object, names: list[str], metadata: str | None) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    final = model.steps[-1][1]  # type: ignore[attr-defined]
    graph = convert_sklearn(
        model,
        initial_types=[(n, FloatTensorType([None, 1])) for n in names],
        options={id(final): {"zipmap": False}},
        target_opset=onnx.ONNX_OPSET,
    )
    if metadata is not None:
        entry = graph.metadata_props.add()
        entry.key, entry.value = INPUT_COLUMNS, metadata
    data: bytes = graph.SerializeToString()
    return data


def test_a_graph_without_the_map_needs_inputs_named_by_the_columns() -> None:
    X, y = _iris()
    X.columns = ["a", "b", "c", "d"]
    model = _network(list(X.columns)).fit(X, y)  # type: ignore[attr-defined]
    features = describe_features(X)
    served = OnnxModel(
        _graph(model, list(X.columns), None),
        features=features,
        task="classification",
        classes=(0, 1, 2),
    )
    answers = served.predict(frame_rows(X, features))
    assert [label for label, _ in answers] == model.predict(X).tolist()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ("not json", "is not a map of names"),
        ('{"a": "a"}', "does not map the graph's inputs"),
        ('{"a": "a", "b": "a", "c": "c", "d": "d"}', "does not map the graph's inputs"),
        ('{"a": "x", "b": "b", "c": "c", "d": "d"}', "match neither"),
    ],
)
def test_a_bad_input_map_is_refused(metadata: str, reason: str) -> None:
    X, y = _iris()
    X.columns = ["a", "b", "c", "d"]
    model = _network(list(X.columns)).fit(X, y)  # type: ignore[attr-defined]
    with pytest.raises(BundleError, match=reason):
        OnnxModel(
            _graph(model, list(X.columns), metadata),
            features=describe_features(X),
            task="classification",
            classes=(0, 1, 2),
        )


def test_onnx_trees_with_missing_values_are_refused_naming_pipeline_json(
    monkeypatch: pytest.MonkeyPatch, pima_csv: Path
) -> None:
    """The released skl2onnx drops the missing-value direction trees learn; the check sees it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline

    frame = pd.read_csv(pima_csv)
    X, y = frame.drop(columns="Outcome").astype(float), frame["Outcome"]
    rng = np.random.default_rng(0)
    X = X.mask(rng.random(X.shape) < 0.05)
    columns = ColumnTransformer([("numbers", "passthrough", list(X.columns))])
    model = make_pipeline(columns, RandomForestClassifier(n_estimators=20, random_state=0))
    model.fit(X, y)
    features = describe_features(X)
    monkeypatch.setattr(export, "FORMATS", (format_of("model.onnx"),))
    with pytest.raises(TrainingError) as refused:
        export_model(model, features=features, task="classification", classes=(0, 1), X_check=X)
    message = str(refused.value)
    assert message.startswith("model.onnx: disagrees with scikit-learn")
    assert "missing value in " in message
    assert "pipeline.json serves trees with missing values exactly" in message
    monkeypatch.setattr(export, "FORMATS", FORMATS)
    artifacts = export_model(
        model, features=features, task="classification", classes=(0, 1), X_check=X
    )
    assert artifacts.serving == "pipeline.json"
    assert all(f.accepts_missing for f in artifacts.features)


class _FlipsTies:
    """A served model answering the other class wherever scikit-learn's probabilities tie."""

    def __init__(self, model: object) -> None:
        self.model = model

    def predict(self, rows: list[object]) -> list[tuple[object, tuple[float, ...] | None]]:
        answers = self.model.predict(rows)  # type: ignore[attr-defined]
        return [
            (1 - label if probs[0] == probs[1] else label, probs)  # type: ignore[index, operator]
            for label, probs in answers
        ]


def _flipping(tolerance: float) -> tuple[Format, ...]:
    def load(data: bytes, **given: object) -> _FlipsTies:
        return _FlipsTies(pipeline.load(data, **given))  # type: ignore[arg-type]

    return (format_of(pipeline.FILE_NAME)._replace(load=load, tolerance=tolerance),)


@pytest.mark.parametrize(("tolerance", "stored"), [(1e-5, True), (1e-12, False)])
def test_a_float32_format_may_break_a_tie_the_other_way(
    monkeypatch: pytest.MonkeyPatch, pima_csv: Path, tolerance: float, stored: bool
) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(pima_csv)
    X_train, X, y_train, _ = train_test_split(
        frame.drop(columns="Outcome"), frame["Outcome"], test_size=0.3, random_state=1
    )
    model = RandomForestClassifier(n_estimators=50, random_state=1).fit(X_train, y_train)
    assert (model.predict_proba(X)[:, 0] == 0.5).any()
    monkeypatch.setattr(export, "FORMATS", _flipping(tolerance))
    features = describe_features(X)
    if stored:
        export_model(model, features=features, task="classification", classes=(0, 1), X_check=X)
        return
    with pytest.raises(TrainingError, match=r"labels differ: held-out: \d+"):
        export_model(model, features=features, task="classification", classes=(0, 1), X_check=X)
