"""Reading digit strings: RNNSequenceRecognizer() with its defaults against an oracle.

Side by side in one run, on lines of ``make_digit_strings`` (1-8 digits, train seed 0, test
seed 1): the recogniser, which gets whole lines and their strings and nothing else, and an
oracle baseline that is given the true cut points and classifies each digit with
``RNNImageClassifier()``. Both are then also scored on longer lines (9-12 digits, seed 2),
whose widths the recogniser never saw in training.

The quality bar: at least 95 % of the test lines read exactly, a character error rate of at
most 1 %, a fit of at most 5 minutes on 2 CPU cores, and on the longer lines a CER within 2
points of that on the seen lengths.

    python benchmarks/recognition.py                        # 5,000 / 1,000 lines, 2 threads
    python benchmarks/recognition.py --threads 1 --train 2000
    python benchmarks/recognition.py --param hidden_size=128 --no-oracle

Real handwriting, with ``--glyphs GLYPHS.npz`` (``X_train, y_train, X_test, y_test``: labelled
28x28 MNIST digits, such as ``benchmarks/mnist_glyphs.py`` writes from binarized MNIST): lines
of 3-7 digits, each glyph cropped to its middle 20 columns, 0-4 blank columns between them, 28
pixels high and 168 wide; 6,000 training lines from the train glyphs (seed 0), 1,000 test lines
from the test glyphs (seed 1), which the recogniser never saw, and 500 longer lines of 8-10
test digits (seed 2, up to 240 columns). The bar there: at least 97 % of the test lines exact,
a CER of at most 0.7 %, a fit of at most 10 minutes on 2 CPU cores.

    python benchmarks/recognition.py --glyphs glyphs.npz [--train 6000] [--no-oracle]
"""

from __future__ import annotations

import argparse
import ast
import time
from pathlib import Path

import numpy as np

from skrnn import RNNImageClassifier, RNNSequenceRecognizer
from skrnn.datasets import make_digit_strings
from skrnn.metrics import character_error_rate, sequence_accuracy


def crops(X, spans):
    """Every digit of every line, cut at its true columns: ``(n_digits, H, w)``."""
    return np.stack(
        [image[:, start:stop] for image, line in zip(X, spans, strict=True) for start, stop in line]
    )


def oracle_read(classifier, X, spans):
    digits = iter(classifier.predict(crops(X, spans)).tolist())
    return ["".join(str(next(digits)) for _ in line) for line in spans]


def report(name, fit_seconds, sets):
    cells = [f"{name:<34}", f"{fit_seconds:7.0f} s"]
    for truth, read in sets:
        cells.append(f"{100 * sequence_accuracy(truth, read):6.1f} %")
        cells.append(f"{100 * character_error_rate(truth, read):6.2f} %")
    print("  ".join(cells), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glyphs", type=Path, help="npz of labelled 28x28 digits (see above)")
    parser.add_argument("--train", type=int, help="training lines (5,000; 6,000 with --glyphs)")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--longer", type=int, default=500, help="lines longer than any trained")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE, recogniser")
    parser.add_argument("--no-oracle", action="store_true")
    args = parser.parse_args(argv)
    params = {}
    for item in args.param:
        name, value = item.split("=", 1)
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value

    if args.glyphs is None:
        seen, longer = (1, 8), (9, 12)
        lines = dict()
        train_glyphs = test_glyphs = None
        n_train = args.train or 5000
    else:
        seen, longer = (3, 7), (8, 10)
        lines = dict(spacing=(0, 4), jitter=0, noise=0.0)
        with np.load(args.glyphs) as glyphs:  # the middle 20 of 28 columns
            train_glyphs = (glyphs["X_train"][:, :, 4:24], glyphs["y_train"])
            test_glyphs = (glyphs["X_test"][:, :, 4:24], glyphs["y_test"])
        n_train = args.train or 6000

    def make(n, lengths, glyphs, seed):
        low, high = lengths
        return make_digit_strings(
            n, min_length=low, max_length=high, return_spans=True, glyphs=glyphs,
            random_state=seed, **lines,
        )  # fmt: skip

    X, y, spans = make(n_train, seen, train_glyphs, 0)
    X_test, y_test, spans_test = make(args.test, seen, test_glyphs, 1)
    X_long, y_long, spans_long = make(args.longer, longer, test_glyphs, 2)
    print(
        f"train {X.shape}, test {X_test.shape}, longer lines {X_long.shape}; "
        f"{args.threads} thread(s)"
    )
    seen_name, longer_name = "-".join(map(str, seen)), "-".join(map(str, longer))
    print(
        f"{'':<34}  {'fit':>9}  {'exact ' + seen_name:>8}  {'CER ' + seen_name:>8}  "
        f"{'exact ' + longer_name:>8}  {'CER ' + longer_name:>8}"
    )

    reader = RNNSequenceRecognizer(random_state=0, n_threads=args.threads, **params)
    start = time.perf_counter()
    reader.fit(X, y)
    seconds = time.perf_counter() - start
    report(
        f"RNNSequenceRecognizer({', '.join(f'{k}={v!r}' for k, v in params.items())})",
        seconds,
        [(y_test, reader.predict(X_test)), (y_long, reader.predict(X_long))],
    )
    print(f"    ({reader.n_iter_} epochs)")

    if not args.no_oracle:
        digits = np.array([int(d) for text in y for d in text])
        classifier = RNNImageClassifier(random_state=0, n_threads=args.threads)
        start = time.perf_counter()
        classifier.fit(crops(X, spans), digits)
        seconds = time.perf_counter() - start
        report(
            "oracle: true cuts + classifier",
            seconds,
            [
                (y_test, oracle_read(classifier, X_test, spans_test)),
                (y_long, oracle_read(classifier, X_long, spans_long)),
            ],
        )


if __name__ == "__main__":
    main()
