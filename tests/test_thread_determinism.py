"""Fits run at once in threads give what they give one after the other, bit for bit, and
leave torch's process-wide random state as they found it."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSegmenter
from skrnn.datasets import load_digits_images, make_shapes

X, Y = load_digits_images(return_X_y=True)
SHAPES, MASKS = make_shapes(n_samples=16, image_size=8, random_state=0)


def _classifier(cell):
    return RNNImageClassifier(
        cell=cell, hidden_size=16, max_epochs=3, random_state=0, n_threads=1, dropout=0.3
    )


def _probabilities(cell):
    return _classifier(cell).fit(X[:300], Y[:300]).predict_proba(X[300:400])


def test_two_fits_in_threads_equal_the_same_fits_one_after_the_other():
    serial = [_probabilities(cell) for cell in ("rnn", "lstm")]
    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            threaded = list(pool.map(_probabilities, ("rnn", "lstm")))
        for one, other in zip(serial, threaded, strict=True):
            np.testing.assert_array_equal(one, other)


JOBS = {
    "classifier": lambda: _classifier("gru").fit(X[:120], Y[:120]).predict_proba(X[:20]),
    "regressor": lambda: RNNImageRegressor(
        hidden_size=8, max_epochs=2, random_state=1, n_threads=1, dropout=0.2
    ).fit(X[:120], X[:120].mean(axis=(1, 2))).predict(X[:20]),
    "segmenter": lambda: RNNSegmenter(
        hidden_size=4, max_epochs=2, random_state=2, n_threads=1, augment=True
    ).fit(SHAPES, MASKS).predict_proba(SHAPES[:2]),
    "generator": lambda: RNNImageGenerator(
        hidden_size=8, max_epochs=1, random_state=3, n_threads=1
    ).fit((X[:60] > 8).astype(np.uint8)).sample(4, random_state=0),
}


def test_eight_threads_fitting_and_predicting_equal_serial_runs():
    names = list(JOBS) * 2
    serial = {name: JOBS[name]() for name in JOBS}
    state = torch.random.get_rng_state()
    pool = ThreadPoolExecutor(8)
    try:
        futures = [pool.submit(JOBS[name]) for name in names]
        results = [future.result(timeout=300) for future in futures]  # a hang fails
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for name, result in zip(names, results, strict=True):
        np.testing.assert_array_equal(result, serial[name], err_msg=name)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's stream untouched
