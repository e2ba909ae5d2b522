"""The classifier's defaults on real MNIST digits, beside an RBF SVC and a random forest.

The shared 8,000 labelled MNIST digits are the first 8,000 of MNIST's test file: the first
6,400 train and the last 1,600 score. MNIST's test file holds the digits of Census employees
first and of students after them, so the scored digits come mostly from writers of another
population than most training ones: a figure a user would see on new handwriting, not on
digits next to the training ones. Every model is fitted in the same run, on the same split.

    python benchmarks/mnist_digits.py PATH/TO/mnist_digits_8000.npz [--n-train 6400]
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.svm import SVC

from skrnn import RNNImageClassifier

SCORED = 1600  # the last 1,600 digits are scored


def timed(model, X_train, y_train, X_test, y_test):
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = float(np.mean(model.predict(X_test) == y_test))
    return accuracy, fit, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="mnist_digits_8000.npz (keys X and y)")
    parser.add_argument("--n-train", type=int, default=6400, help="the first N digits train")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with np.load(args.data) as data:
        X, y = data["X"], data["y"]
    if not 0 < args.n_train <= len(X) - SCORED:
        parser.error(f"--n-train must be between 1 and {len(X) - SCORED}, got {args.n_train}")
    X_train, y_train = X[: args.n_train], y[: args.n_train]
    X_test, y_test = X[-SCORED:], y[-SCORED:]
    flat_train = X_train.reshape(len(X_train), -1) / 255.0
    flat_test = X_test.reshape(len(X_test), -1) / 255.0

    rows = [
        (
            "RNNImageClassifier() defaults",
            *timed(RNNImageClassifier(random_state=0), X_train, y_train, X_test, y_test),
        ),
        ("SVC(C=10), pixels / 255", *timed(SVC(C=10), flat_train, y_train, flat_test, y_test)),
        (
            "RandomForestClassifier(300 trees)",
            *timed(
                RandomForestClassifier(n_estimators=300, n_jobs=2, random_state=0),
                flat_train,
                y_train,
                flat_test,
                y_test,
            ),
        ),
    ]
    print(f"MNIST digits: {len(X_train)} train (first), {len(X_test)} scored (last)")
    print(f"{'model':<36} {'accuracy':>9} {'fit s':>8} {'predict s':>10}")
    for name, accuracy, fit, predict in rows:
        print(f"{name:<36} {accuracy:>9.4f} {fit:>8.1f} {predict:>10.2f}")


if __name__ == "__main__":
    main()
