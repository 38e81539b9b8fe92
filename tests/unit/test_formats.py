"""Export to linear.json, model.onnx and model.skops, the checks, and the ONNX and skops readers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelapi.bundle import Bundle, read_bundle
from modelapi.errors import BundleError, MissingExtra, TrainingError
from modelapi.formats import FORMATS, Format
from modelapi.formats.linear import linear_spec
from modelapi.formats.onnx import OnnxModel
from modelapi.formats.onnx import export as onnx_export
from modelapi.formats.skops import dump_skops, load_skops, read_estimator
from modelapi.predictor import Predictor
from modelapi.schema import Feature
from modelapi.training import export
from modelapi.training.data import load_dataset
from modelapi.training.export import export_model, frame_rows
from modelapi.training.workflow import TrainResult, train


@pytest.fixture(scope="session")
def pima_frame(pima_csv: Path) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(pima_csv)
    return frame.drop(columns="Outcome"), frame["Outcome"]


@pytest.fixture(scope="session")
def pima_features(pima_csv: Path) -> tuple[Feature, ...]:
    return load_dataset(pima_csv).features


@pytest.fixture(scope="session")
def forest(pima_csv: Path) -> TrainResult:
    return train(load_dataset(pima_csv), model="random_forest", params={"n_estimators": 10})


def _network(columns: list[str]) -> object:
    """A scaled neural network: outside pipeline.json, so it is served from model.onnx."""
    from sklearn.compose import ColumnTransformer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    network = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=2000, random_state=0)
    return make_pipeline(ColumnTransformer([("scaled", StandardScaler(), columns)]), network)


@pytest.fixture(scope="session")
def onnx_result(pima_frame: tuple[pd.DataFrame, pd.Series]) -> TrainResult:
    import modelapi

    X, y = pima_frame
    model = _network(list(X.columns)).fit(X, y)  # type: ignore[attr-defined]
    return modelapi.save(model, X, name="pima", store=None, y_sample=y)


def test_bare_estimator_on_an_array_folds_to_linear(
    pima_frame: tuple[pd.DataFrame, pd.Series], pima_features: tuple[Feature, ...]
) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = pima_frame
    model = LogisticRegression(max_iter=1000).fit(X.to_numpy(), y.to_numpy())
    spec = linear_spec(model, pima_features, "classification")
    assert spec is not None
    assert spec.intercept == [float(model.intercept_[0])]
    assert spec.weights == [[float(w)] for w in model.coef_[0]]
    artifacts = export_model(
        model, features=pima_features, task="classification", classes=(0, 1), X_check=X
    )
    assert artifacts.serving == "linear.json"
    assert artifacts.check["rows"] == len(X)


def test_scaled_linear_model_is_served_from_pipeline_json(
    pima_frame: tuple[pd.DataFrame, pd.Series], pima_features: tuple[Feature, ...]
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = pima_frame
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X.to_numpy(), y.to_numpy())
    assert linear_spec(model, pima_features, "classification") is None
    artifacts = export_model(
        model, features=pima_features, task="classification", classes=(0, 1), X_check=X
    )
    assert artifacts.serving == "pipeline.json"


def test_an_estimator_outside_the_own_formats_is_served_from_onnx(
    pima_frame: tuple[pd.DataFrame, pd.Series], pima_features: tuple[Feature, ...]
) -> None:
    X, y = pima_frame
    model = _network(list(X.columns)).fit(X, y)  # type: ignore[attr-defined]
    artifacts = export_model(
        model, features=pima_features, task="classification", classes=(0, 1), X_check=X
    )
    assert artifacts.serving == "model.onnx"
    onnx = OnnxModel(
        artifacts.files["model.onnx"], features=pima_features, task="classification", classes=(0, 1)
    )
    answers = onnx.predict(frame_rows(X, pima_features))
    assert [label for label, _ in answers] == model.predict(X).tolist()  # type: ignore[attr-defined]


class _OffByABit:
    """Wraps a served model and nudges its probabilities, as a broken export would."""

    def __init__(self, model: object, delta: float) -> None:
        self.model, self.delta = model, delta

    def predict(
        self, rows: list[list[float | str]]
    ) -> list[tuple[object, tuple[float, ...] | None]]:
        answers = self.model.predict(rows)  # type: ignore[attr-defined]
        return [(label, tuple(p + self.delta for p in probs)) for label, probs in answers]


def _off_by_a_bit(file_name: str, delta: float) -> tuple[Format, ...]:
    """The formats, with the one of `file_name` loading models that answer off by `delta`."""

    def nudged(served: Format) -> Format:
        def load(data: bytes, **model: object) -> _OffByABit:
            return _OffByABit(served.load(data, **model), delta)

        return served._replace(load=load)

    return tuple(nudged(f) if f.file_name == file_name else f for f in FORMATS)


def test_linear_export_that_disagrees_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
    pima_frame: tuple[pd.DataFrame, pd.Series],
    pima_features: tuple[Feature, ...],
) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = pima_frame
    model = LogisticRegression(max_iter=1000).fit(X.to_numpy(), y.to_numpy())
    monkeypatch.setattr(export, "FORMATS", _off_by_a_bit("linear.json", 1e-11))
    with pytest.raises(TrainingError, match=r"linear.json: disagrees with scikit-learn"):
        export_model(
            model, features=pima_features, task="classification", classes=(0, 1), X_check=X
        )


def test_onnx_export_that_disagrees_fails_loudly(
    monkeypatch: pytest.MonkeyPatch,
    onnx_result: TrainResult,
    pima_frame: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, _ = pima_frame
    monkeypatch.setattr(export, "FORMATS", _off_by_a_bit("model.onnx", 1e-4))
    with pytest.raises(TrainingError, match=r"model.onnx: disagrees with scikit-learn"):
        export_model(
            onnx_result.estimator,
            features=onnx_result.manifest.features,
            task="classification",
            classes=(0, 1),
            X_check=X,
        )


def test_onnx_model_through_the_predictor(
    onnx_result: TrainResult, pima_frame: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = pima_frame
    predictor = Predictor(onnx_result.bundle)
    answers = predictor.predict(frame_rows(X, onnx_result.manifest.features))
    assert [label for label, _ in answers] == onnx_result.estimator.predict(X).tolist()  # type: ignore[attr-defined]
    proba = onnx_result.estimator.predict_proba(X)  # type: ignore[attr-defined]
    assert np.allclose([p for _, p in answers], proba, rtol=0, atol=1e-5)
    assert all(type(label) is int for label, _ in answers)
    assert predictor.model.predict([]) == []


def test_onnx_refuses_bad_bytes_and_mismatched_inputs(onnx_result: TrainResult) -> None:
    features = onnx_result.manifest.features
    with pytest.raises(BundleError, match=r"model.onnx: not a loadable ONNX model"):
        OnnxModel(b"not onnx", features=features, task="classification", classes=(0, 1))
    # Inputs are matched by name, or by position when the names differ (skl2onnx renames
    # columns to C identifiers); a graph with another number of inputs fits neither.
    fewer = tuple(Feature(column=f"other_{f.column}", key=f.key, type=f.type) for f in features)
    with pytest.raises(BundleError, match="match neither"):
        OnnxModel(
            onnx_result.bundle.files["model.onnx"],
            features=fewer[:-1],
            task="classification",
            classes=(0, 1),
        )


def test_onnx_needs_the_onnx_extra(
    monkeypatch: pytest.MonkeyPatch, onnx_result: TrainResult
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtra, match=r"pip install 'modelapi\[onnx\]'"):
        Predictor(onnx_result.bundle)


def test_flipped_byte_in_onnx_or_skops_is_refused(onnx_result: TrainResult, tmp_path: Path) -> None:
    stored = onnx_result.store(str(tmp_path))
    folder = tmp_path / stored.manifest.name / str(stored.manifest.version)
    for name in ("model.onnx", "model.skops"):
        path = folder / name
        original = path.read_bytes()
        data = bytearray(original)
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(BundleError, match=name):
            read_bundle(folder)
        path.write_bytes(original)
    assert isinstance(read_bundle(folder), Bundle)


def test_skops_loads_trees_from_the_trust_list(
    forest: TrainResult, pima_frame: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = pima_frame
    copy = read_estimator(forest.bundle)
    assert np.array_equal(copy.predict_proba(X), forest.estimator.predict_proba(X))  # type: ignore[attr-defined]


def _custom_function(x: object) -> object:
    return x


def test_skops_refuses_types_outside_the_trust_list() -> None:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    data = sio.dumps(FunctionTransformer(func=_custom_function))
    with pytest.raises(BundleError, match=r"model.skops: holds types outside the trusted list"):
        load_skops(data)
    with pytest.raises(TrainingError, match="trusted list"):
        dump_skops(FunctionTransformer(func=_custom_function))


def test_skops_refuses_a_corrupt_file() -> None:
    with pytest.raises(BundleError, match=r"model.skops: not a readable skops file"):
        load_skops(b"PK\x03\x04 broken")


def test_read_estimator_needs_the_skops_file(forest: TrainResult) -> None:
    served_only = Bundle(forest.manifest, {"pipeline.json": forest.bundle.files["pipeline.json"]})
    with pytest.raises(BundleError, match=r"model.skops: not in this bundle"):
        read_estimator(served_only)


def test_onnx_conversion_refuses_text_without_a_column_transformer() -> None:
    from sklearn.tree import DecisionTreeClassifier

    features = (Feature(column="c", key="c", type="category", categories=("a", "b")),)
    with pytest.raises(TrainingError, match="ColumnTransformer"):
        onnx_export(DecisionTreeClassifier(), features, "classification", (0, 1))
