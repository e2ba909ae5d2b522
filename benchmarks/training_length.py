"""max_epochs="auto" that stops when it is done, against the whole budget, on small data.

The classifier and the regressor with their defaults on stratified subsets of the bundled
digits (30, 100 and 300 images, three seeds each), scored on all the other digits: with the
default ``tol`` (the fit ends once the training loss has stopped improving, after a short
cool-down) and with ``tol=None`` (the whole budget of at least 1,000 gradient steps, as before
``tol`` existed), side by side in one run. The regressor predicts the digit's value, the
classifier its class. ``MLPClassifier`` / ``MLPRegressor`` with their defaults give the scale
of a fit scikit-learn users know. Each fit runs after one untimed fit, so torch's one-off costs
of a process's first fit (about a second, most of it importing torch's compiler when the first
optimizer is built) are not counted.

    python benchmarks/training_length.py [--sizes 30 100 300] [--seeds 0 1 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor

from skrnn import RNNImageClassifier, RNNImageRegressor
from skrnn.datasets import load_digits_images


def contenders(threads):
    return {
        "classifier": {
            "RNNImageClassifier()": lambda s: RNNImageClassifier(random_state=s, n_threads=threads),
            "RNNImageClassifier(tol=None)": lambda s: RNNImageClassifier(
                random_state=s, tol=None, n_threads=threads
            ),
            "MLPClassifier()": lambda s: MLPClassifier(random_state=s),
        },
        "regressor": {
            "RNNImageRegressor()": lambda s: RNNImageRegressor(random_state=s, n_threads=threads),
            "RNNImageRegressor(tol=None)": lambda s: RNNImageRegressor(
                random_state=s, tol=None, n_threads=threads
            ),
            "MLPRegressor()": lambda s: MLPRegressor(random_state=s, max_iter=1000),
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 100, 300])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=None, help="torch threads per fit")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # MLP's, at its defaults
    X, y = load_digits_images(return_X_y=True)
    RNNImageClassifier(max_epochs=1, n_threads=args.threads).fit(X[:30], y[:30])  # warm up
    header = ("task", "n", "model", "epochs", "fit s", "score", "std")
    print("{:<11} {:>4}  {:<30} {:>7} {:>7} {:>7} {:>6}".format(*header))
    for task, models in contenders(args.threads).items():
        target = y if task == "classifier" else y.astype(np.float64)
        for n in args.sizes:
            for name, make in models.items():
                epochs, times, scores = [], [], []
                for seed in args.seeds:
                    train, test = train_test_split(
                        np.arange(len(X)), train_size=n, stratify=y, random_state=seed
                    )
                    model = make(seed)
                    flat = name.startswith("MLP")
                    inputs = X.reshape(len(X), -1) if flat else X
                    start = time.perf_counter()
                    model.fit(inputs[train], target[train])
                    times.append(time.perf_counter() - start)
                    epochs.append(model.n_iter_)
                    scores.append(model.score(inputs[test], target[test]))
                print(
                    f"{task:<11} {n:>4}  {name:<30} {np.mean(epochs):>7.0f} "
                    f"{np.median(times):>7.2f} {np.mean(scores):>7.3f} {np.std(scores):>6.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
