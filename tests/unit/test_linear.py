"""The pure-Python linear format: decisions, probabilities and refusals of bad specs."""

from __future__ import annotations

import math

import msgspec
import pytest

from modelapi.errors import BundleError
from modelapi.formats.linear import LinearModel, LinearSpec


def _model(spec: dict[str, object], classes: list[object] | None) -> LinearModel:
    return LinearModel.from_bytes(msgspec.json.encode(spec), classes)


def test_binary_logistic_matches_the_sigmoid_of_the_decision() -> None:
    model = _model({"kind": "logistic", "intercept": [-1.0], "weights": [[0.5], [2.0]]}, [0, 1])
    [(label, probs)] = model.predict([[4.0, 0.25]])
    z = -1.0 + 0.5 * 4.0 + 2.0 * 0.25
    assert label == 1
    assert probs == pytest.approx((1 - 1 / (1 + math.exp(-z)), 1 / (1 + math.exp(-z))), abs=1e-15)


@pytest.mark.parametrize("z", [-800.0, -30.0, 0.0, 30.0, 800.0])
def test_extreme_decisions_never_overflow(z: float) -> None:
    model = _model({"kind": "logistic", "intercept": [z], "weights": []}, ["no", "yes"])
    [(label, probs)] = model.predict([[]])
    assert probs is not None
    assert 0.0 <= probs[1] <= 1.0
    assert math.isclose(sum(probs), 1.0)
    assert label == ("yes" if z > 0 else "no")


def test_multinomial_uses_softmax_and_category_weights() -> None:
    spec = {
        "kind": "logistic",
        "intercept": [0.1, 0.2, 0.3],
        "weights": [[1.0, 0.0, -1.0], {"a": [0.0, 2.0, 0.0], "b": [0.0, 0.0, 3.0]}],
    }
    model = _model(spec, ["x", "y", "z"])
    [(label, probs)] = model.predict([[1.0, "b"]])
    z = [0.1 + 1.0, 0.2 + 0.0, 0.3 - 1.0 + 3.0]
    expected = [math.exp(v) / sum(math.exp(u) for u in z) for v in z]
    assert label == "z"
    assert probs == pytest.approx(expected, abs=1e-15)


def test_regression_returns_the_value() -> None:
    model = _model({"kind": "regression", "intercept": [3.0], "weights": [[2.0]]}, None)
    assert model.predict([[1.5], [0.0]]) == [(6.0, None), (3.0, None)]


@pytest.mark.parametrize(
    ("spec", "classes", "reason"),
    [
        ({"kind": "logistic", "intercept": [0.0], "weights": []}, [1], "at least two classes"),
        ({"kind": "logistic", "intercept": [0.0, 1.0], "weights": []}, [0, 1], "2 intercepts"),
        ({"kind": "regression", "intercept": [0.0, 1.0], "weights": []}, None, "one intercept"),
        ({"kind": "regression", "intercept": [0.0], "weights": [[1.0, 2.0]]}, None, "1 entries"),
        ({"kind": "tree", "intercept": [0.0], "weights": []}, None, "linear.json"),
        ({"kind": "regression"}, None, "linear.json"),
    ],
)
def test_bad_specs_are_refused_naming_the_file(
    spec: dict[str, object], classes: list[object] | None, reason: str
) -> None:
    with pytest.raises(BundleError, match=reason):
        _model(spec, classes)


def test_spec_round_trips_through_json() -> None:
    spec = LinearSpec(kind="regression", intercept=[1.0], weights=[[2.0], {"a": [1.0]}])
    assert msgspec.json.decode(msgspec.json.encode(spec), type=LinearSpec) == spec
