"""ONNX export: onnxruntime's CPU throughput beside ``predict``, on the same models and images.

For each model (digit classifiers with the three built-in cells, a regressor, and a
segmenter at its training size and at twice that size), the script exports it with
``skrnn.export_onnx``, checks that onnxruntime gives the same labels and (within 1e-4) the same
probabilities or values, and times both: ``predict`` (its input checks, batching and the
torch module) and one onnxruntime call on the whole array (cast to the graph's input dtype
beforehand, as a server would receive it). Both use the same number of CPU threads. Each
timing is the best of ``--repeats``.

    OMP_NUM_THREADS=1 python benchmarks/export.py [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime
import torch
from timing import best_time

import skrnn
from skrnn.datasets import load_digits_images, make_shapes


def session(model, threads):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def compare(name, estimator, images, threads, repeats):
    start = time.perf_counter()
    model = skrnn.export_onnx(estimator)
    export_seconds = time.perf_counter() - start
    runner = session(model, threads)
    feed = {"images": images.astype(np.float32)}
    outputs = runner.run(None, feed)
    predicted = estimator.predict(images)
    if len(outputs) == 2:
        assert (outputs[0] == predicted).all(), name
        difference = np.abs(outputs[1] - estimator.predict_proba(images)).max()
    else:
        difference = np.abs(outputs[0] - predicted).max()
    assert difference <= 1e-4, (name, difference)
    predict_s = best_time(lambda: estimator.predict(images), repeats, warm_up=True)
    onnx_s = best_time(lambda: runner.run(None, feed), repeats, warm_up=True)
    n = len(images)
    print(
        f"{name:<34} {n:>6} {n / predict_s:>12,.0f} {n / onnx_s:>12,.0f} "
        f"{predict_s / onnx_s:>7.2f}x {difference:>9.1e} {export_seconds:>7.2f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    X, y = load_digits_images(return_X_y=True)
    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"{args.threads} thread(s); throughput in images per second\n"
    )
    print(
        f"{'model':<34} {'images':>6} {'predict':>12} {'onnxruntime':>12} {'speedup':>8} "
        f"{'max diff':>9} {'export s':>8}"
    )
    common = dict(hidden_size=64, max_epochs=2, n_threads=args.threads, random_state=0)
    for cell in ("rnn", "lstm", "gru"):
        clf = skrnn.RNNImageClassifier(cell=cell, **common).fit(X, y)
        compare(f"classifier {cell} 8x8 digits", clf, X, args.threads, args.repeats)
    reg = skrnn.RNNImageRegressor(**common).fit(X, X.sum(axis=(1, 2)))
    compare("regressor gru 8x8 digits", reg, X, args.threads, args.repeats)

    images, masks = make_shapes(n_samples=200, image_size=32, random_state=0)
    seg = skrnn.RNNSegmenter(
        hidden_size=16, max_epochs=2, n_threads=args.threads, random_state=0
    ).fit(images, masks)
    compare("segmenter gru 32x32", seg, images, args.threads, args.repeats)
    large, _ = make_shapes(n_samples=50, image_size=64, random_state=1)
    compare("segmenter gru 64x64 (resized)", seg, large, args.threads, args.repeats)


if __name__ == "__main__":
    main()
