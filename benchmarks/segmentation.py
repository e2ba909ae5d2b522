"""Benchmark: RNNSegmenter against a per-pixel random forest on ``make_shapes``.

Both models are trained on ``make_shapes(n_samples=1000, image_size=32, random_state=0)`` and
scored on ``make_shapes(n_samples=200, image_size=32, random_state=1)``. The segmenter runs
with its default parameters. The baseline is a random forest that labels each pixel from the
raw values of its square neighbourhood (11x11 by default), trained on a random sample of
the training pixels: a strong local model that sees edges and corners but not whole shapes.

Run from the repository root::

    nice python benchmarks/segmentation.py            # the full benchmark
    nice python benchmarks/segmentation.py --quick    # a small smoke run

The target for the segmenter is a mean IoU of at least 0.90 with a fit of at most 3 minutes
on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.ensemble import RandomForestClassifier

from skrnn import RNNSegmenter
from skrnn.datasets import make_shapes
from skrnn.metrics import iou_per_class, mean_iou, pixel_accuracy

TARGET_IOU = 0.90
TARGET_FIT_SECONDS = 180.0


def neighbourhood_features(images: np.ndarray, radius: int) -> np.ndarray:
    """One row per pixel: the values of its ``(2r+1) x (2r+1)`` neighbourhood (edges repeated)."""
    padded = np.pad(images, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    size = 2 * radius + 1
    windows = sliding_window_view(padded, (size, size), axis=(1, 2))
    return windows.reshape(-1, size * size).astype(np.float32)


def describe_machine() -> str:
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    return (
        f"{platform.processor() or platform.machine()}, {cores} usable cores, torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads, {device}, "
        f"load average {load}"
    )


def run_segmenter(X_train, Y_train, X_test, Y_test, **params):
    model = RNNSegmenter(random_state=0, **params)
    start = time.perf_counter()
    model.fit(X_train, Y_train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = model.predict(X_test)
    predict_seconds = time.perf_counter() - start
    return fit_seconds, predict_seconds, predicted


def run_forest(X_train, Y_train, X_test, Y_test, *, radius, n_pixels, n_estimators, n_jobs):
    rng = np.random.RandomState(0)
    features = neighbourhood_features(X_train, radius)
    labels = Y_train.ravel()
    chosen = rng.choice(len(labels), size=min(n_pixels, len(labels)), replace=False)
    forest = RandomForestClassifier(
        n_estimators=n_estimators, min_samples_leaf=2, n_jobs=n_jobs, random_state=0
    )
    start = time.perf_counter()
    forest.fit(features[chosen], labels[chosen])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    predicted = forest.predict(neighbourhood_features(X_test, radius)).reshape(Y_test.shape)
    predict_seconds = time.perf_counter() - start
    return fit_seconds, predict_seconds, predicted


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--forest-radius", type=int, default=5)
    parser.add_argument("--forest-pixels", type=int, default=60_000)
    parser.add_argument("--forest-trees", type=int, default=50)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke run (100 training images)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.forest_trees = 100, 50, 20

    X_train, Y_train = make_shapes(
        n_samples=args.n_train, image_size=args.image_size, random_state=0
    )
    X_test, Y_test = make_shapes(n_samples=args.n_test, image_size=args.image_size, random_state=1)
    print(
        f"make_shapes: {args.n_train} training and {args.n_test} test images of "
        f"{args.image_size}x{args.image_size}"
    )
    print(f"machine: {describe_machine()}")

    results = {}
    results["RNNSegmenter (defaults)"] = run_segmenter(X_train, Y_train, X_test, Y_test)
    size = 2 * args.forest_radius + 1
    results[f"RandomForest {size}x{size} pixels"] = run_forest(
        X_train,
        Y_train,
        X_test,
        Y_test,
        radius=args.forest_radius,
        n_pixels=args.forest_pixels,
        n_estimators=args.forest_trees,
        n_jobs=args.n_jobs,
    )

    names = ["background", "circle", "rectangle", "triangle"]
    header = (
        f"{'model':<28} {'fit s':>7} {'predict s':>9} {'mean IoU':>8} {'pixel acc':>9}  "
        + " ".join(f"{name:>10}" for name in names)
    )
    print(header)
    print("-" * len(header))
    for name, (fit_seconds, predict_seconds, predicted) in results.items():
        per_class = iou_per_class(Y_test, predicted, labels=range(len(names)))
        print(
            f"{name:<28} {fit_seconds:7.1f} {predict_seconds:9.2f} "
            f"{mean_iou(Y_test, predicted):8.4f} {pixel_accuracy(Y_test, predicted):9.4f}  "
            + " ".join(f"{value:10.4f}" for value in per_class)
        )

    fit_seconds, _, predicted = results["RNNSegmenter (defaults)"]
    score = mean_iou(Y_test, predicted)
    met = score >= TARGET_IOU and fit_seconds <= TARGET_FIT_SECONDS
    print(
        f"\ntarget: mean IoU >= {TARGET_IOU} with fit <= {TARGET_FIT_SECONDS:.0f} s -> "
        f"{'met' if met else 'NOT met'} (mean IoU {score:.4f}, fit {fit_seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
