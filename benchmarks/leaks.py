"""Memory over many fit / predict / save / load cycles in one process (issue: no leaks).

For each estimator, the script runs ``--cycles`` cycles of: fit a small model on the digits (or
synthetic shapes for the segmenter), predict, save to memory, load, predict again. It measures
the resident memory (RSS) after ``--warmup`` cycles, when the allocators have reached their
working size, and at the end, and prints the growth; on a GPU also the CUDA memory still
allocated after the cycles. Target: growth < 50 MB over 200 cycles.

    python benchmarks/leaks.py
    python benchmarks/leaks.py --cycles 40 --warmup 10 --estimator classifier
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import resource
import sys
import time

import numpy as np
import torch

import skrnn
from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSegmenter
from skrnn.datasets import load_digits_images, make_shapes


def resident_mb() -> float:
    """The process's resident memory now, in MB (Linux ``/proc``; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as file:
            pages = int(file.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def workloads():
    X, y = load_digits_images(return_X_y=True)
    X, y = X[:300], y[:300]
    shapes_X, masks = make_shapes(n_samples=32, image_size=16, random_state=0)
    small = dict(hidden_size=16, max_epochs=2, random_state=0)
    return {
        "classifier": (lambda: RNNImageClassifier(**small), X, y, "predict_proba"),
        "regressor": (lambda: RNNImageRegressor(**small), X, y.astype(np.float32), "predict"),
        "segmenter": (lambda: RNNSegmenter(conv=(4,), **small), shapes_X, masks, "predict_proba"),
        "generator": (lambda: RNNImageGenerator(**small), X[:100], y[:100], "score_samples"),
    }


def cycle(make, X, y, method) -> None:
    estimator = make().fit(X, y)
    first = getattr(estimator, method)(X[:50])
    buffer = io.BytesIO()
    estimator.save(buffer)
    buffer.seek(0)
    loaded = skrnn.load(buffer)
    second = getattr(loaded, method)(X[:50])
    if not np.allclose(first, second, atol=1e-5):
        raise AssertionError(f"{method} changed after save and load")


def measure(name, make, X, y, method, cycles, warmup) -> dict:
    for _ in range(warmup):
        cycle(make, X, y, method)
    gc.collect()
    cuda = torch.cuda.is_available()
    start_rss = resident_mb()
    start_cuda = torch.cuda.memory_allocated() if cuda else 0
    started = time.perf_counter()
    for _ in range(cycles):
        cycle(make, X, y, method)
    gc.collect()
    return {
        "estimator": name,
        "cycles": cycles,
        "seconds": time.perf_counter() - started,
        "rss_start": start_rss,
        "rss_end": resident_mb(),
        "cuda_growth": (torch.cuda.memory_allocated() - start_cuda) / 1e6 if cuda else None,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--estimator", action="append", choices=sorted(workloads()))
    args = parser.parse_args(argv)
    chosen = workloads()
    names = args.estimator or list(chosen)
    print(f"{args.cycles} fit/predict/save/load cycles after {args.warmup} warm-up cycles")
    print(
        "| estimator | cycles | time (s) | RSS after warm-up (MB) | RSS at end (MB) | growth (MB) "
        "| CUDA memory growth (MB) |"
    )
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name in names:
        row = measure(name, *chosen[name], args.cycles, args.warmup)
        growth = row["rss_end"] - row["rss_start"]
        worst = max(worst, growth)
        cuda = "-" if row["cuda_growth"] is None else f"{row['cuda_growth']:.1f}"
        print(
            f"| {name} | {row['cycles']} | {row['seconds']:.1f} | {row['rss_start']:.1f} "
            f"| {row['rss_end']:.1f} | {growth:+.1f} | {cuda} |",
            flush=True,
        )
    print(f"largest growth {worst:+.1f} MB (target < 50 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
