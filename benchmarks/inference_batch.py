"""How large an inference batch should be on the CPU, now that every batch has one size.

Every inference batch of a call is padded to one size (``BaseRNNEstimator._run_inference``), so
an image's predictions do not depend on the other images of the call; a call for one image then
costs a whole batch. This prints, for the default classifier on images of 8x8 and 28x28, the
images per second of the bare network at batch sizes 64, 128 and 256 (best of three passes over
1,024 images), and the time of ``predict`` for one image and for 1,024, side by side with the
same calls without padding. With ``--check-estimator`` it also times scikit-learn's whole
``check_estimator`` on ``RNNImageRegressor(random_state=0)``, check by check.

    python benchmarks/inference_batch.py [--threads 2] [--check-estimator]
"""

import argparse
import time
import warnings
from unittest import mock

import numpy as np
import torch

from skrnn import RNNImageClassifier, RNNImageRegressor
from skrnn._base import BaseRNNEstimator


def images_per_second(module, images, batch_size, repeats=3):
    best = 0.0
    with torch.inference_mode():
        module(images[:batch_size])
        for _ in range(repeats):
            start = time.perf_counter()
            for first in range(0, len(images), batch_size):
                module(images[first : first + batch_size])
            best = max(best, len(images) / (time.perf_counter() - start))
    return best


def seconds(estimator, images, repeats=5):
    """The best time of ``estimator.predict(images)``."""
    estimator.predict(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        estimator.predict(images)
        times.append(time.perf_counter() - start)
    return min(times)


PADDED = BaseRNNEstimator._run_inference


def unpadded(self, n, batch_size, make_batch, compute, dtype=np.float32, fixed_size=False):
    """The inference loop as it was: the last batch of a call as small as it comes."""
    return PADDED(self, n, batch_size, make_batch, compute, dtype)


def batch_table(threads):
    rng = np.random.default_rng(0)
    print(f"Bare network, images/s, {threads} thread(s)")
    print(f"{'image':>6} {'batch 64':>9} {'batch 128':>10} {'batch 256':>10}")
    for side in (8, 28):
        X = rng.random((256, side, side)).astype(np.float32)
        clf = RNNImageClassifier(max_epochs=1, n_threads=threads, random_state=0)
        clf.fit(X, rng.integers(0, 10, 256))
        module = clf.net_.module_.eval()
        images = torch.as_tensor(rng.random((1024, side, side, 1)).astype(np.float32))
        rates = [images_per_second(module, images, size) for size in (64, 128, 256)]
        print(f"{side:>4}x{side:<2}" + "".join(f"{rate:>10,.0f}" for rate in rates))

        one, many = images[:1, ..., 0].numpy(), images[..., 0].numpy()
        padded_one, padded_many = seconds(clf, one), seconds(clf, many)
        with mock.patch.object(BaseRNNEstimator, "_run_inference", unpadded):
            plain_one, plain_many = seconds(clf, one), seconds(clf, many)
        print(
            f"       predict 1 image: {padded_one * 1e3:.1f} ms padded, "
            f"{plain_one * 1e3:.1f} ms unpadded; 1,024 images: {padded_many * 1e3:.0f} ms "
            f"padded, {plain_many * 1e3:.0f} ms unpadded"
        )


def check_estimator_table():
    from functools import partial

    from sklearn.utils.estimator_checks import estimator_checks_generator

    timings, failed = [], []
    total = time.perf_counter()
    checks = estimator_checks_generator(RNNImageRegressor(random_state=0), legacy=True)
    for estimator, check in checks:
        name = (check.func if isinstance(check, partial) else check).__name__
        start = time.perf_counter()
        try:
            check(estimator)
        except Exception as error:  # noqa: BLE001 - a table of what failed
            failed.append(f"{name} ({type(error).__name__})")
        timings.append((time.perf_counter() - start, name))
    total = time.perf_counter() - total
    print(f"\ncheck_estimator(RNNImageRegressor(random_state=0)): {total:.0f} s in all")
    for spent, name in sorted(timings, reverse=True)[:6]:
        print(f"  {spent:6.1f} s  {name}")
    print("  failed: " + (", ".join(failed) or "none"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--check-estimator", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    batch_table(args.threads)
    if args.check_estimator:
        check_estimator_table()


if __name__ == "__main__":
    main()
