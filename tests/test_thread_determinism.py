"""Fits run at once in threads give what they give one after the other, bit for bit, and
leave torch's process-wide random state as they found it; they overlap, drawing from
generators of their own (skrnn._random)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from torch import nn

from skrnn import (
    RNNImageClassifier,
    RNNImageGenerator,
    RNNImageRegressor,
    RNNSegmenter,
    RNNSequenceRecognizer,
)
from skrnn._random import draws_from_torch, fit_random
from skrnn.cells import Dropout, TorchRecurrent
from skrnn.datasets import load_digits_images, make_digit_strings, make_shapes

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
    "regressor": lambda: (
        RNNImageRegressor(hidden_size=8, max_epochs=2, random_state=1, n_threads=1, dropout=0.2)
        .fit(X[:120], X[:120].mean(axis=(1, 2)))
        .predict(X[:20])
    ),
    "segmenter": lambda: (
        RNNSegmenter(hidden_size=4, max_epochs=2, random_state=2, n_threads=1, augment=True)
        .fit(SHAPES, MASKS)
        .predict_proba(SHAPES[:2])
    ),
    "generator": lambda: (
        RNNImageGenerator(hidden_size=8, max_epochs=1, random_state=3, n_threads=1)
        .fit((X[:60] > 8).astype(np.uint8))
        .sample(4, random_state=0)
    ),
    # Dropout between stacked layers, and a random ordering per image.
    "stacked": lambda: (
        RNNImageClassifier(
            cell="lstm",
            num_layers=2,
            dropout=0.3,
            hidden_size=8,
            max_epochs=2,
            random_state=4,
            n_threads=1,
        )
        .fit(X[:120], Y[:120])
        .predict_proba(X[:20])
    ),
    "orderings": lambda: (
        RNNImageGenerator(hidden_size=8, max_epochs=1, orderings=2, random_state=5, n_threads=1)
        .fit((X[:60] > 8).astype(np.uint8))
        .score_samples((X[:10] > 8).astype(np.uint8))
    ),
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


def _meeting_cell(barrier):
    """A GRU cell whose first training step waits until every fit holding ``barrier`` has
    reached its own: fits that could not overlap would break the barrier."""

    class Meeting(nn.Module):
        def __init__(self, input_size, hidden_size, num_layers, bidirectional, dropout):
            super().__init__()
            self.gru = TorchRecurrent(
                nn.GRU(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
            )
            self.met = False

        def forward(self, x):
            if self.training and not self.met:
                self.met = True
                barrier.wait()
            return self.gru(x)

    return Meeting


def _small_fit(cell, seed, **params):
    """Probabilities of a small classifier with ``cell`` (2 epochs on 100 digits)."""
    model = RNNImageClassifier(
        cell=cell, hidden_size=8, max_epochs=2, random_state=seed, n_threads=1, **params
    )
    return model.fit(X[:100], Y[:100]).predict_proba(X[:10])


def test_fits_in_threads_overlap():
    barrier = threading.Barrier(2, timeout=60)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(_small_fit, _meeting_cell(barrier), s, dropout=0.3) for s in (0, 1)]
        results = [f.result(timeout=120) for f in futures]
    assert not barrier.broken
    # Alone, its barrier of one never waits.
    alone = _small_fit(_meeting_cell(threading.Barrier(1)), 0, dropout=0.3)
    np.testing.assert_array_equal(results[0], alone)


LINES, TEXTS = make_digit_strings(n_samples=24, random_state=0)


@pytest.mark.parametrize(
    "make, data",
    [
        (lambda: RNNImageClassifier(num_layers=2, dropout=0.3), (X[:40], Y[:40])),
        (lambda: RNNImageRegressor(num_layers=2, dropout=0.3), (X[:40], Y[:40] * 1.0)),
        (lambda: RNNSegmenter(num_layers=2, dropout=0.3), (SHAPES, MASKS)),
        (lambda: RNNSequenceRecognizer(num_layers=2, dropout=0.3), (LINES, TEXTS)),
        (lambda: RNNImageGenerator(reader="pixels", num_layers=2, dropout=0.3), (X[:20] > 8,)),
        (lambda: RNNImageGenerator(reader="rows", num_layers=2, dropout=0.3), (X[:20] > 8,)),
    ],
)
def test_every_estimator_draws_only_from_its_own_generators(make, data):
    model = make().set_params(hidden_size=4, max_epochs=1, random_state=0)
    model.fit(*data)
    assert not draws_from_torch(model.net_.module_)


def _torch_dropout_cell(input_size, hidden_size, num_layers, bidirectional, dropout):
    """A plugin's cell that drops out with torch's own modules."""
    return nn.Sequential(
        nn.Dropout(0.3),
        TorchRecurrent(
            nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)
        ),
    )


def test_a_cell_with_torch_dropout_trains_alone_and_stays_exact():
    assert draws_from_torch(_torch_dropout_cell(3, 4, 1, False, 0.0))
    assert draws_from_torch(nn.LSTM(3, 4, num_layers=2, dropout=0.3))
    assert not draws_from_torch(TorchRecurrent(nn.LSTM(3, 4, num_layers=2, dropout=0.3)))

    serial = [_small_fit(_torch_dropout_cell, s) for s in (0, 1)]
    state = torch.random.get_rng_state()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(_small_fit, _torch_dropout_cell, s) for s in (0, 1)]
        threaded = [f.result(timeout=120) for f in futures]
    for one, other in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(one, other)
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("kind", [nn.RNN, nn.GRU, nn.LSTM])
def test_stacked_layers_run_one_at_a_time_as_the_fused_call_does(kind):
    torch.manual_seed(0)
    cell = TorchRecurrent(kind(3, 5, num_layers=3, bidirectional=True, batch_first=True))
    x = torch.randn(4, 6, 3)
    fused = cell(x)
    cell.layer.dropout = 1e-12  # masks of ones: the layers one at a time, with no change
    with fit_random(0):
        apart = cell(x)
    torch.testing.assert_close(apart, fused, rtol=0, atol=1e-6)
    apart.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cell.parameters())

    cell.layer.dropout = 0.5
    with fit_random(0):
        first = cell(x)
    with fit_random(0):
        again = cell(x)
    with fit_random(1):
        other = cell(x)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_dropout_outside_a_fit_is_torchs():
    layer = Dropout(0.5)
    torch.manual_seed(3)
    ours = layer(torch.ones(50))
    torch.manual_seed(3)
    np.testing.assert_array_equal(ours, nn.Dropout(0.5)(torch.ones(50)))
    assert torch.equal(layer.eval()(torch.ones(5)), torch.ones(5))
