"""Test log-likelihood and sample quality of RNNImageGenerator() with its defaults on the digits.

Side by side in one run, on one 80/20 split of the bundled digits (random_state=0):

* test negative log-likelihood (nats per image) of the generator, fitted class-conditionally,
  against an independent per-pixel categorical model with Laplace smoothing fitted on the same
  training images. The generator is scored without labels, ``-log p(x)`` (summing over the
  classes), which is what the baseline scores; the label-given numbers follow for reference.
* whether class-conditional samples look like their class: an ``RNNImageClassifier`` trained on
  the real training digits labels 500 samples (50 per class) and we count how many it labels
  as the class they were drawn for.

    python benchmarks/generation.py
    python benchmarks/generation.py --param hidden_size=64 --param max_epochs=10
    python benchmarks/generation.py --temperature 1.0 --temperature 0.8
"""

from __future__ import annotations

import argparse
import ast
import time

import numpy as np
from sklearn.model_selection import train_test_split

from skrnn import RNNImageClassifier, RNNImageGenerator
from skrnn.datasets import load_digits_images

N_LEVELS = 17  # the digits hold ink counts 0-16
NLL_TARGET = 0.70  # at least 30 % below the independent baseline
SAMPLE_TARGET = 0.80


def independent_pixel_log_likelihood(X_train, X_test, y_train=None, y_test=None):
    """Per-image log-likelihood of an independent categorical model per pixel (Laplace).

    With labels it fits one such model per class and scores each test image under its class.
    """
    train = X_train.reshape(len(X_train), -1).astype(int)
    test = X_test.reshape(len(X_test), -1).astype(int)
    if y_train is None:
        y_train, y_test = np.zeros(len(train)), np.zeros(len(test))
    pixels = np.arange(train.shape[1])
    scores = np.empty(len(test))
    for label in np.unique(y_train):
        counts = np.ones((train.shape[1], N_LEVELS))  # Laplace smoothing
        np.add.at(counts, (pixels[None, :], train[y_train == label]), 1)
        log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))
        rows = y_test == label
        scores[rows] = log_probs[pixels, test[rows]].sum(axis=1)
    return scores


def parse_params(items):
    params = {}
    for item in items:
        name, value = item.split("=", 1)
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE for the RNN")
    parser.add_argument(
        "--temperature", action="append", type=float, help="sampling temperature (repeatable)"
    )
    args = parser.parse_args(argv)
    params = {"random_state": 0, **parse_params(args.param)}
    temperatures = args.temperature or [1.0]

    X, y = load_digits_images(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

    baseline = -independent_pixel_log_likelihood(X_train, X_test).mean()
    baseline_given_y = -independent_pixel_log_likelihood(X_train, X_test, y_train, y_test).mean()

    generator = RNNImageGenerator(**params)
    start = time.perf_counter()
    generator.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    nll = -generator.score(X_test)
    nll_given_y = -generator.score(X_test, y_test)

    classifier = RNNImageClassifier(random_state=0).fit(X_train, y_train)
    real_accuracy = classifier.score(X_test, y_test)
    requested = np.repeat(np.arange(10), 50)
    recognised = {}
    for temperature in temperatures:
        start = time.perf_counter()
        samples = generator.sample(
            len(requested), y=requested, temperature=temperature, random_state=0
        )
        sample_seconds = time.perf_counter() - start
        recognised[temperature] = (classifier.predict(samples) == requested).mean()

    def verdict(ok):
        return "yes" if ok else "NO"

    name = "RNNImageGenerator(" + ", ".join(args.param) + ")"
    print(f"generator: {name}, fitted in {fit_seconds:.1f} s on {len(X_train)} images")
    print(f"{'quantity':<52} {'generator':>10} {'baseline':>10} {'target':>12} {'met':>4}")
    reduction = 1 - nll / baseline
    print(
        f"{'test NLL, nats/image, -log p(x)':<52} {nll:>10.2f} {baseline:>10.2f} "
        f"{'<= ' + format(NLL_TARGET * baseline, '.2f'):>12} {verdict(reduction >= 0.3):>4}"
    )
    print(f"{'  reduction against the baseline':<52} {reduction:>10.1%} {'':>10} {'>= 30%':>12}")
    print(
        f"{'test NLL given the label, -log p(x | y)':<52} {nll_given_y:>10.2f} "
        f"{baseline_given_y:>10.2f}"
    )
    print(f"{'classifier accuracy on the real test digits':<52} {real_accuracy:>10.3f}")
    for temperature, share in recognised.items():
        label = f"samples labelled as asked (500, T={temperature:g})"
        print(
            f"{label:<52} {share:>10.3f} {'':>10} {'>= ' + format(SAMPLE_TARGET, '.2f'):>12} "
            f"{verdict(share >= SAMPLE_TARGET):>4}"
        )
    print(f"(drawing the last 500 samples took {sample_seconds:.1f} s)")


if __name__ == "__main__":
    main()
