"""R² of RNNImageRegressor() with its defaults: the centre of mass of the ink of the digits.

Side by side in the same run, on the same 5 folds, with Ridge and MLPRegressor on flat pixels.

    python benchmarks/regression.py
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrnn import RNNImageRegressor
from skrnn.datasets import load_digits_images


def ink_centre(X):
    """(row, column) centre of mass of the ink of each image."""
    rows, cols = np.indices(X.shape[1:])
    total = X.sum(axis=(1, 2))
    return np.stack([(X * rows).sum(axis=(1, 2)) / total, (X * cols).sum(axis=(1, 2)) / total], 1)


def main():
    X, _ = load_digits_images(return_X_y=True)
    y = ink_centre(X)
    flat = X.reshape(len(X), -1)
    folds = list(KFold(5, shuffle=True, random_state=0).split(flat))
    models = [
        ("RNNImageRegressor()", RNNImageRegressor, X),
        ("RidgeCV", lambda: make_pipeline(StandardScaler(), RidgeCV()), flat),
        (
            "MLPRegressor",
            lambda: make_pipeline(StandardScaler(), MLPRegressor(max_iter=2000, random_state=0)),
            flat,
        ),
    ]
    print(f"{'model':<22} {'mean R2':>9} {'std':>7} {'median fit s':>13}")
    for name, make, data in models:
        scores, times = [], []
        for train, test in folds:
            model = make()
            start = time.perf_counter()
            model.fit(data[train], y[train])
            times.append(time.perf_counter() - start)
            scores.append(model.score(data[test], y[test]))
        print(
            f"{name:<22} {np.mean(scores):>9.4f} {np.std(scores):>7.4f} {np.median(times):>13.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
