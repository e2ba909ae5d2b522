"""Accuracy and fit time of RNNImageClassifier() with its defaults on the bundled digits.

Side by side in the same run, on the same 5 stratified folds, with classical sklearn baselines.

    python benchmarks/digits.py                 # the default classifier and the baselines
    python benchmarks/digits.py --orders        # also pixel-by-pixel and row-by-row readings
    python benchmarks/digits.py --param dropout=0.3 --param max_epochs=30   # try other values
"""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from skrnn import RNNImageClassifier
from skrnn.datasets import load_digits_images


def evaluate(make, X, y, folds):
    scores, times = [], []
    for train, test in folds:
        model = make()
        start = time.perf_counter()
        model.fit(X[train], y[train])
        times.append(time.perf_counter() - start)
        scores.append(model.score(X[test], y[test]))
    return np.array(scores), np.array(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE for the RNN")
    parser.add_argument("--orders", action="store_true", help="add pixel and row readings")
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args(argv)
    params = {}
    for item in args.param:
        name, value = item.split("=", 1)
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value

    X, y = load_digits_images(return_X_y=True)
    flat = X.reshape(len(X), -1)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(flat, y))
    rows = [
        (
            "RNNImageClassifier(" + ", ".join(args.param) + ")",
            lambda: RNNImageClassifier(**params),
            X,
        )
    ]
    if args.orders:
        rows += [
            (
                "RNNImageClassifier(order='pixels', readout='mean')",
                lambda: RNNImageClassifier(order="pixels", readout="mean", **params),
                X,
            ),
            (
                "RNNImageClassifier(order='rows', bidirectional=False)",
                lambda: RNNImageClassifier(bidirectional=False, **params),
                X,
            ),
        ]
    if not args.no_baselines:
        rows += [
            ("SVC(C=10)", lambda: SVC(C=10), flat),
            ("MLPClassifier", lambda: MLPClassifier(max_iter=1000, random_state=0), flat),
            ("RandomForest", lambda: RandomForestClassifier(random_state=0), flat),
        ]
    print(f"{'model':<58} {'mean acc':>9} {'std':>7} {'median fit s':>13}")
    for name, make, data in rows:
        scores, times = evaluate(make, data, y, folds)
        print(
            f"{name:<58} {scores.mean():>9.4f} {scores.std():>7.4f} {np.median(times):>13.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
