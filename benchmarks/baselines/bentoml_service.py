"""The BentoML peer: a `@bentoml.service` serving the Pima model from BentoML's own store.

`predict` takes one row as the example body (its parameters are the wire names) and answers
`{"outcome": n}`; `predict_batch` takes `{"rows": [[8 numbers], ...]}` and answers a list of
labels. Both are sync APIs, as a scikit-learn model's are usually written. One worker, access
log off (as the other servers run), 127.0.0.1. Run with BENTOML_HOME set to the store that
pima_train.py filled: `bentoml serve bentoml_service:Pima --host 127.0.0.1 --port N`.
"""

from __future__ import annotations

from typing import Annotated

import bentoml
import numpy as np
from bentoml.validators import DType, Shape

__all__ = ["Pima"]


@bentoml.service(workers=1, logging={"access": {"enabled": False}})
class Pima:
    """The Pima logistic regression behind two sync APIs."""

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model("pima:latest")

    @bentoml.api
    def predict(
        self,
        pregnancies: int,
        glucose: int,
        blood_pressure: int,
        skin_thickness: int,
        insulin: int,
        bmi: float,
        diabetes_pedigree_function: float,
        age: int,
    ) -> dict[str, int]:
        """Predict the outcome of one patient."""
        row = [
            pregnancies,
            glucose,
            blood_pressure,
            skin_thickness,
            insulin,
            bmi,
            diabetes_pedigree_function,
            age,
        ]
        return {"outcome": int(self.model.predict(np.array([row], dtype=float))[0])}

    @bentoml.api
    def predict_batch(
        self, rows: Annotated[np.ndarray, Shape((-1, 8)), DType("float64")]
    ) -> np.ndarray:
        """Predict the outcomes of an [n, 8] array of patients."""
        labels: np.ndarray = self.model.predict(rows).astype(np.int64)
        return labels
