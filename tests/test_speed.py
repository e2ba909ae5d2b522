"""The choices that make training fast: fused optimizers and a sensible thread count.

Timings belong in benchmarks/; these tests check that the fast paths are taken.
"""

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


def test_threads_are_capped_at_the_cpu_quota(digits, tiny, monkeypatch):
    """A container that sees many cores but may use one gets one torch thread, and the
    caller's thread count comes back afterwards."""
    X, y = digits
    monkeypatch.setattr(utils, "cgroup_cpu_limit", lambda: 0.5)
    before = torch.get_num_threads()
    record = RecordThreads()
    RNNImageClassifier(**tiny, callbacks=[record]).fit(X[:64], y[:64])
    assert record.seen == {1}
    assert torch.get_num_threads() == before


def test_explicit_and_default_thread_counts(digits, tiny, monkeypatch):
    X, y = digits
    monkeypatch.setattr(utils, "cgroup_cpu_limit", lambda: None)
    before = torch.get_num_threads()
    for n_threads, expected in [(1, 1), (None, min(before, utils.allowed_cpu_count()))]:
        record = RecordThreads()
        clf = RNNImageClassifier(**tiny, n_threads=n_threads, callbacks=[record])
        clf.fit(X[:64], y[:64])
        assert record.seen == {expected}
        assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"/sys/fs/cgroup/cpu.max": "150000 100000\n"}, 1.5),
        ({"/sys/fs/cgroup/cpu.max": "max 100000\n"}, None),
        (
            {
                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "200000\n",
                "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
            },
            2.0,
        ),
        (
            {
                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
                "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
            },
            None,
        ),
        ({"/sys/fs/cgroup/cpu.max": "garbage\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_cpu_limit_reads_v2_then_v1(files, expected, monkeypatch):
    monkeypatch.setattr(utils, "_read_numbers", lambda path: files.get(path, "").split())
    assert utils.cgroup_cpu_limit() == expected


def test_allowed_cpu_count_rounds_a_fractional_quota_up(monkeypatch):
    monkeypatch.setattr(utils, "cgroup_cpu_limit", lambda: 0.2)
    assert utils.allowed_cpu_count() == 1
    monkeypatch.setattr(utils, "cgroup_cpu_limit", lambda: 1000.0)
    assert utils.allowed_cpu_count() >= 1


def test_inference_batches_shrink_for_large_images_but_not_below_a_training_batch(tiny):
    clf = RNNImageClassifier(**tiny)  # batch_size=32
    clf.n_features_in_ = 8 * 8
    clf._device = torch.device("cpu")
    assert clf._inference_batch_size() == 256
    assert clf._inference_batch_size(28 * 28) == 256
    assert clf._inference_batch_size(128 * 128) == 64
    assert clf._inference_batch_size(256 * 256 * 3) == 32
    clf._device = torch.device("cuda")
    assert clf._inference_batch_size() == 1024
    assert clf._inference_batch_size(128 * 128) == 64
    clf.set_params(batch_size=512)
    assert clf._inference_batch_size(256 * 256 * 3) == 512
