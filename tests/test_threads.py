"""One fitted estimator serving predictions from several Python threads at once."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from skrnn import RNNImageClassifier, RNNImageGenerator, RNNSegmenter
from skrnn.datasets import load_digits_images, make_shapes

N_THREADS = 8


def in_threads(call, n_calls=16):
    with ThreadPoolExecutor(N_THREADS) as pool:
        return list(pool.map(lambda _: call(), range(n_calls)))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images(return_X_y=True)
    return X[:200], y[:200]


def test_concurrent_predict_proba_equals_serial(digits, caller_threads):
    """Dropout is active in training only: predictions from 8 threads must not see it, and
    the caller's torch thread count comes back afterwards."""
    X, y = digits
    clf = RNNImageClassifier(hidden_size=16, dropout=0.5, max_epochs=2, random_state=0).fit(X, y)
    serial = clf.predict_proba(X)
    for result in in_threads(lambda: clf.predict_proba(X)):
        np.testing.assert_array_equal(result, serial)
    assert torch.get_num_threads() == caller_threads


def test_concurrent_segmentation_and_scores_equal_serial(digits, caller_threads):
    X, Y = make_shapes(n_samples=12, image_size=16, random_state=0)
    seg = RNNSegmenter(hidden_size=8, dropout=0.5, max_epochs=1, random_state=0).fit(X, Y)
    serial = seg.predict(X)
    for result in in_threads(lambda: seg.predict(X)):
        np.testing.assert_array_equal(result, serial)
    levels, y = (digits[0][:40, :4, :4] // 4).astype(np.int64), digits[1][:40]
    gen = RNNImageGenerator(hidden_size=8, dropout=0.5, max_epochs=1, random_state=0)
    gen.fit(levels, y)
    serial = gen.score_samples(levels, y)
    for result in in_threads(lambda: gen.score_samples(levels, y)):
        np.testing.assert_array_equal(result, serial)
    assert torch.get_num_threads() == caller_threads


def test_explicit_thread_counts_in_overlapping_calls_restore_the_callers(digits, caller_threads):
    X, y = digits
    clf = RNNImageClassifier(hidden_size=8, max_epochs=1, n_threads=1, random_state=0).fit(X, y)
    in_threads(lambda: clf.predict(X))
    assert torch.get_num_threads() == caller_threads


def test_thread_settings_of_overlapping_calls_come_back_in_any_order(caller_threads):
    """Two calls overlap and the first ends first (as they do in a thread pool): the
    caller's thread count must come back, not the one the second call found on entry."""
    from skrnn._utils import torch_threads

    first, second = torch_threads(2), torch_threads(1)
    first.__enter__()
    second.__enter__()
    assert torch.get_num_threads() == 1
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert torch.get_num_threads() == caller_threads
