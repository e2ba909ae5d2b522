"""Test log-likelihood and sample quality of RNNImageGenerator() with its defaults on the digits.

Side by side in one run, over several 80/20 splits of the bundled digits (one per seed, which
also seeds the generator):

* test negative log-likelihood (nats per image) of the generator, fitted class-conditionally,
  against an independent per-pixel categorical model with Laplace smoothing fitted on the same
  training images. The generator is scored without labels, ``-log p(x)`` (summing over the
  classes), which is what the baseline scores; the label-given numbers follow for reference.
* whether class-conditional samples look like their class (first seed only): an
  ``RNNImageClassifier`` trained on the real training digits labels 500 samples (50 per
  class) and we count how many it labels as the class they were drawn for.

    python benchmarks/generation.py
    python benchmarks/generation.py --seeds 0 --no-samples --param max_epochs=10
    python benchmarks/generation.py --param hidden_size=64 --temperature 1.0 --temperature 0.8
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
NLL_TARGET = 0.65  # at least 35 % below the independent baseline, on every seed
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


def evaluate_split(X, y, seed, params):
    """Fit the generator on one 80/20 split; its test NLLs, the baseline's, and the fit time."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=seed)
    generator = RNNImageGenerator(**{"random_state": seed, **params})
    start = time.perf_counter()
    generator.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    row = {
        "seed": seed,
        "fit_seconds": fit_seconds,
        "epochs": generator.n_iter_,
        "nll": -generator.score(X_test),
        "baseline": -independent_pixel_log_likelihood(X_train, X_test).mean(),
        "nll_given_y": -generator.score(X_test, y_test),
        "baseline_given_y": -independent_pixel_log_likelihood(
            X_train, X_test, y_train, y_test
        ).mean(),
    }
    row["reduction"] = 1 - row["nll"] / row["baseline"]
    return row, generator, (X_train, X_test, y_train, y_test)


def sample_recognition(generator, split, temperatures, seed):
    """Share of 500 class-conditional samples a classifier of the real digits labels as asked."""
    X_train, X_test, y_train, y_test = split
    classifier = RNNImageClassifier(random_state=seed).fit(X_train, y_train)
    requested = np.repeat(np.arange(10), 50)
    recognised = {}
    for temperature in temperatures:
        start = time.perf_counter()
        samples = generator.sample(
            len(requested), y=requested, temperature=temperature, random_state=seed
        )
        sample_seconds = time.perf_counter() - start
        recognised[temperature] = (classifier.predict(samples) == requested).mean()
    return classifier.score(X_test, y_test), recognised, sample_seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE for the RNN")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="one 80/20 split and generator random_state per seed (default: 0 1 2)",
    )
    parser.add_argument(
        "--temperature", action="append", type=float, help="sampling temperature (repeatable)"
    )
    parser.add_argument("--no-samples", action="store_true", help="skip the sample-quality check")
    args = parser.parse_args(argv)
    params = parse_params(args.param)
    temperatures = args.temperature or [1.0]

    X, y = load_digits_images(return_X_y=True)
    rows = []
    for i, seed in enumerate(args.seeds):
        row, generator, split = evaluate_split(X, y, seed, params)
        rows.append(row)
        if i == 0 and not args.no_samples:
            first = (seed, generator, split)
        print(
            f"seed {seed}: NLL {row['nll']:.2f} vs baseline {row['baseline']:.2f} "
            f"({row['reduction']:.1%} lower), fitted in {row['fit_seconds']:.1f} s",
            flush=True,
        )

    def verdict(ok):
        return "yes" if ok else "NO"

    name = "RNNImageGenerator(" + ", ".join(args.param) + ")"
    n_train = len(split[0])
    print(f"\ngenerator: {name}, {rows[0]['epochs']} epochs on {n_train} images per split")
    print("test NLL in nats/image; -log p(x) scores without labels (the baseline's quantity)")
    header = (
        f"{'seed':>6} {'fit s':>7} {'-log p(x)':>10} {'baseline':>10} {'reduction':>10} "
        f"{'met':>4} {'-log p(x|y)':>12} {'baseline':>10}"
    )
    print(header)
    columns = ("fit_seconds", "nll", "baseline", "reduction", "nll_given_y", "baseline_given_y")
    for row in rows + [{"seed": "mean", **{c: np.mean([r[c] for r in rows]) for c in columns}}]:
        print(
            f"{row['seed']:>6} {row['fit_seconds']:>7.1f} {row['nll']:>10.2f} "
            f"{row['baseline']:>10.2f} {row['reduction']:>10.1%} "
            f"{verdict(row['reduction'] >= 1 - NLL_TARGET):>4} "
            f"{row['nll_given_y']:>12.2f} {row['baseline_given_y']:>10.2f}"
        )
    met = all(row["reduction"] >= 1 - NLL_TARGET for row in rows)
    print(f"target: reduction >= {1 - NLL_TARGET:.0%} on every seed: {verdict(met)}")

    if not args.no_samples:
        seed, generator, split = first
        real_accuracy, recognised, sample_seconds = sample_recognition(
            generator, split, temperatures, seed
        )
        print(f"\nsample quality, seed {seed}:")
        print(f"{'classifier accuracy on the real test digits':<52} {real_accuracy:>7.3f}")
        for temperature, share in recognised.items():
            label = f"samples labelled as asked (500, T={temperature:g})"
            print(
                f"{label:<52} {share:>7.3f}  target >= {SAMPLE_TARGET:.2f}: "
                f"{verdict(share >= SAMPLE_TARGET)}"
            )
        print(f"(drawing the last 500 samples took {sample_seconds:.1f} s)")


if __name__ == "__main__":
    main()
