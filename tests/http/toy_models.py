"""Small hand-made linear models for the routes the Pima model cannot exercise.

A classifier with string classes and a category whose name needs escaping in HTML, and a
regressor: built in memory from a `linear.json` spec, the same way a trained bundle is served.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from modelapi.app import App, create_app
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.schema import Feature, Target
from modelapi.source import ModelSource
from tests.linear_models import linear_predictor

__all__ = ["HOSTILE_CATEGORY", "TOY_FEATURES", "running_app", "toy_predictor"]

# A category a careless page would turn into markup.
HOSTILE_CATEGORY = '<b id="x">green</b> & "teal"'
TOY_FEATURES = (
    Feature(column="Colour", key="colour", type="category", categories=("red", HOSTILE_CATEGORY)),
    Feature(column="Size cm", key="size_cm", type="number", min=1.5, max=9.25),
    Feature(column="Count", key="count", type="integer", min=0.0, max=12.0),
)


def toy_predictor(
    task: str = "classification", *, name: str = "toy", version: int = 1
) -> Predictor:
    """A predictor for a three-feature toy model: classes a/b/c, or a regression value."""
    if task == "classification":
        spec = {
            "kind": "logistic",
            "intercept": [0.1, -0.2, 0.05],
            "weights": [
                {"red": [0.5, -0.5, 0.0], HOSTILE_CATEGORY: [-0.3, 0.2, 0.4]},
                [0.2, -0.1, 0.05],
                [-0.05, 0.1, 0.02],
            ],
        }
        classes: tuple[str, ...] | None = ("a", "b", "c")
    else:
        spec = {
            "kind": "regression",
            "intercept": [1.0],
            "weights": [{"red": [0.5], HOSTILE_CATEGORY: [-0.5]}, [2.0], [0.25]],
        }
        classes = None
    return linear_predictor(
        spec,
        TOY_FEATURES,
        classes,
        target=Target(column="Label", key="label"),
        name=name,
        version=version,
    )


@contextmanager
def running_app(predictor: Predictor | None, settings: Settings) -> Iterator[App]:
    """The ASGI app serving `predictor` (None: a model that is not loaded); closed afterwards."""
    if predictor is None:
        source = ModelSource("absent", settings.store)
    else:
        source = ModelSource.of(predictor)
    app = create_app(settings, source=source)
    try:
        yield app
    finally:
        app.close()
