"""Train the Pima model as the classic notebook does, and save it in one peer's own format.

Usage: python pima_train.py PIMA_CSV FORMAT OUT, run by a peer's own virtualenv, where FORMAT is

- `pickle`: OUT is a pickle file (the naive baseline, as the original project did);
- `joblib`: OUT is a joblib file (what MLServer's scikit-learn runtime loads);
- `bentoml`: OUT is a BentoML home, emptied, whose model store gets the model as `pima`.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

__all__: list[str] = []

if __name__ == "__main__":
    data_path, kind, out_path = sys.argv[1:4]
    data = np.loadtxt(data_path, delimiter=",", skiprows=1)
    x_train, _x_test, y_train, _y_test = train_test_split(
        data[:, :-1], data[:, -1], test_size=0.3, random_state=1
    )
    model = LogisticRegression(solver="lbfgs", max_iter=1000).fit(x_train, y_train)
    if kind == "pickle":
        with open(out_path, "wb") as handle:
            pickle.dump(model, handle)
    elif kind == "joblib":
        import joblib

        joblib.dump(model, out_path)
    elif kind == "bentoml":
        # One version in the store, so that `pima:latest` is this run's model.
        shutil.rmtree(out_path, ignore_errors=True)
        os.environ["BENTOML_HOME"] = out_path
        os.environ["BENTOML_DO_NOT_TRACK"] = "True"
        import bentoml

        bentoml.sklearn.save_model("pima", model)
    else:
        raise SystemExit(f"FORMAT must be pickle, joblib or bentoml, not {kind!r}")
