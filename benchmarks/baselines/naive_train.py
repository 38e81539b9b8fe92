"""Train the naive baseline's model as the classic notebook does, and pickle it.

Usage: python naive_train.py PIMA_CSV OUT_PICKLE
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

__all__: list[str] = []

if __name__ == "__main__":
    data_path, out_path = sys.argv[1:3]
    data = np.loadtxt(data_path, delimiter=",", skiprows=1)
    x_train, _x_test, y_train, _y_test = train_test_split(
        data[:, :-1], data[:, -1], test_size=0.3, random_state=1
    )
    model = LogisticRegression(solver="lbfgs", max_iter=1000).fit(x_train, y_train)
    with open(out_path, "wb") as handle:
        pickle.dump(model, handle)
