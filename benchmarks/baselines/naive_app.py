"""The naive baseline: FastAPI + pydantic + a pickled scikit-learn model, as usually written.

A `def` endpoint (run in the thread pool), a pydantic model per row, and `model.predict` on
each request. It accepts one object or a list of objects. The model is the pickle that
`pima_train.py` wrote, named by NAIVE_MODEL.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

__all__ = ["app"]


class Patient(BaseModel):
    """One row of the Pima features."""

    pregnancies: int
    glucose: int
    blood_pressure: int
    skin_thickness: int
    insulin: int
    bmi: float
    diabetes_pedigree_function: float
    age: int


with open(os.environ["NAIVE_MODEL"], "rb") as handle:
    model = pickle.load(handle)  # the usual way, and why modelapi never does it

app = FastAPI()


def _row(patient: Patient) -> list[float]:
    return [
        patient.pregnancies,
        patient.glucose,
        patient.blood_pressure,
        patient.skin_thickness,
        patient.insulin,
        patient.bmi,
        patient.diabetes_pedigree_function,
        patient.age,
    ]


@app.get("/ping")
def ping() -> dict[str, str]:
    """Answer a liveness check."""
    return {"ping": "pong"}


@app.post("/predict")
def predict(body: Patient | list[Patient]) -> dict[str, int] | list[dict[str, int]]:
    """Predict the outcome of one patient or a list of them."""
    patients = body if isinstance(body, list) else [body]
    labels = model.predict(np.array([_row(p) for p in patients], dtype=float))
    answers = [{"outcome": int(label)} for label in labels]
    return answers if isinstance(body, list) else answers[0]
