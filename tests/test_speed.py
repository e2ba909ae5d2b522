"""The choices that make training fast: fused optimizers and a sensible thread count.

Timings belong in benchmarks/; these tests check that the fast paths are taken.
"""

from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from skrnn import RNNImageClassifier, RNNImageRegressor
from skrnn import _utils as utils
from skrnn._utils import fused_optimizer_supported, torch_version

needs_fused_cpu = pytest.mark.skipif(
    torch_version() < (2, 4), reason="torch builds before 2.4 have no fused Adam on the CPU"
)


@needs_fused_cpu
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_named_adam_optimizers_run_fused(digits, tiny, optimizer):
    X, y = digits
    clf = RNNImageClassifier(**tiny, optimizer=optimizer, device="cpu").fit(X, y)
    assert clf.net_.optimizer_.defaults["fused"] is True
    assert clf.score(X, y) > 0.5


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop", torch.optim.Adam])
def test_other_optimizers_keep_their_defaults(digits, tiny, optimizer):
    """SGD and RMSprop have no fused kernel; a class the user passes is left as it is."""
    X, y = digits
    clf = RNNImageClassifier(**tiny, optimizer=optimizer, device="cpu").fit(X[:64], y[:64])
    assert not clf.net_.optimizer_.defaults.get("fused")


@needs_fused_cpu
def test_fused_training_matches_the_unfused_algorithm(digits, tiny):
    """The fused kernel computes the same Adam update: losses agree to float32 rounding."""
    X, y = digits
    fused = RNNImageRegressor(**tiny, device="cpu").fit(X[:128], y[:128].astype(float))

    class Unfused(RNNImageRegressor):
        def _optimizer_params(self):
            return {**super()._optimizer_params(), "fused": None}

    plain = Unfused(**tiny, device="cpu").fit(X[:128], y[:128].astype(float))
    assert not plain.net_.optimizer_.defaults["fused"]
    losses = [[row["train_loss"] for row in model.history_] for model in (fused, plain)]
    np.testing.assert_allclose(*losses, rtol=1e-4)


def test_fused_support_by_device():
    assert fused_optimizer_supported(torch.device("cuda"))
    assert not fused_optimizer_supported(torch.device("mps"))
    assert fused_optimizer_supported(torch.device("cpu")) == (torch_version() >= (2, 4))


class RecordThreads(Callback):
    def initialize(self):
        self.seen = set()
        return self

    def on_batch_begin(self, net, **kwargs):
        self.seen.add(torch.get_num_threads())


def fake_cpu_count(monkeypatch, count):
    """Make joblib (and so skrnn) see ``count`` usable cores, as a container's quota would."""
    monkeypatch.setattr(joblib, "cpu_count", lambda only_physical_cores=False: count)


def test_threads_are_capped_at_the_cpu_quota(digits, tiny, caller_threads, monkeypatch):
    """A container that sees many cores but may use one gets one torch thread, and the
    caller's thread count comes back afterwards."""
    X, y = digits
    fake_cpu_count(monkeypatch, 1)
    record = RecordThreads()
    RNNImageClassifier(**tiny, callbacks=[record]).fit(X[:64], y[:64])
    assert record.seen == {1}
    assert torch.get_num_threads() == caller_threads


@pytest.mark.parametrize("n_threads, expected", [(None, 3), (1, 1), (4, 4)])
def test_explicit_thread_counts_win_and_the_default_is_capped(
    digits, tiny, caller_threads, monkeypatch, n_threads, expected
):
    X, y = digits
    fake_cpu_count(monkeypatch, 3)
    record = RecordThreads()
    clf = RNNImageClassifier(**tiny, n_threads=n_threads, callbacks=[record])
    clf.fit(X[:64], y[:64])
    assert record.seen == {expected}
    assert torch.get_num_threads() == caller_threads


def test_allowed_cpu_count_is_joblibs(monkeypatch):
    assert utils.allowed_cpu_count() == joblib.cpu_count()
    fake_cpu_count(monkeypatch, 3)
    assert utils.allowed_cpu_count() == 3


def test_inference_batches_shrink_for_large_images_but_not_below_a_training_batch(tiny):
    clf = RNNImageClassifier(**tiny)  # batch_size=32
    clf.net_ = SimpleNamespace(device="cpu")  # all the batch size reads of the fitted net
    assert clf._inference_batch_size(8 * 8) == 128
    assert clf._inference_batch_size(28 * 28) == 128
    assert clf._inference_batch_size(128 * 128) == 64
    assert clf._inference_batch_size(256 * 256 * 3) == 32
    clf.net_ = SimpleNamespace(device="cuda")
    assert clf._inference_batch_size(8 * 8) == 1024
    assert clf._inference_batch_size(128 * 128) == 64
    clf.set_params(batch_size=512)
    assert clf._inference_batch_size(256 * 256 * 3) == 512
