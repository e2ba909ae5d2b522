"""Running out of memory in fit or predict gives an error that names the batch size and what
to lower, and leaves the estimator usable: fit keeps the last finished epoch, and prediction
goes on with smaller batches."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

from skrnn import RNNImageClassifier, RNNSegmenter
from skrnn._utils import device_memory_bytes
from skrnn.datasets import make_shapes
from skrnn.exceptions import OutOfMemoryError

TINY = dict(hidden_size=4, batch_size=4, max_epochs=3, random_state=0, device="cpu")
RNG = np.random.default_rng(0)
X = RNG.random((16, 6, 5)).astype(np.float32)
Y = np.arange(16) % 2

CUDA_OOM = lambda: torch.cuda.OutOfMemoryError(  # noqa: E731
    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total capacity)"
)
CPU_OOM = lambda: RuntimeError(  # noqa: E731
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
    "memory: you tried to allocate 4398046511104 bytes. Error code 12"
)


class FailAt(Callback):
    """Raise ``error()`` in the first training batch of epoch ``epoch``; keep each finished
    epoch's weights."""

    def __init__(self, epoch, error):
        self.epoch, self.error = epoch, error

    def initialize(self):
        self.weights = {}
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            raise self.error()

    def on_epoch_end(self, net, **kwargs):
        state = net.module_.state_dict()
        self.weights[len(net.history)] = {k: v.clone() for k, v in state.items()}


@pytest.mark.parametrize("error", [CUDA_OOM, CPU_OOM, MemoryError], ids=["cuda", "cpu", "python"])
def test_fit_out_of_memory_names_the_batch_size_and_keeps_the_last_epoch(error):
    watch = FailAt(epoch=3, error=error)
    clf = RNNImageClassifier(**TINY, callbacks=[watch])
    with pytest.raises(OutOfMemoryError) as raised:
        clf.fit(X, Y)
    message = str(raised.value)
    assert "batch_size=4 (4 images of 6x5x1 a batch)" in message
    assert "Lower batch_size" in message and "keeps the weights of epoch 2" in message
    assert isinstance(raised.value, MemoryError)
    assert raised.value.__cause__ is not None
    state = clf.net_.module_.state_dict()
    assert all(torch.equal(state[k], watch.weights[2][k]) for k in state)
    assert clf.n_iter_ == 2 and np.isfinite(clf.predict_proba(X)).all()
    clf.set_params(callbacks=None).fit(X, Y)  # and it trains again
    assert clf.n_iter_ == 3


def test_fit_out_of_memory_in_the_first_epoch_leaves_the_estimator_unfitted():
    clf = RNNImageClassifier(**TINY, callbacks=[FailAt(epoch=1, error=CUDA_OOM)])
    with pytest.raises(OutOfMemoryError, match="left unfitted"):
        clf.fit(X, Y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_other_runtime_errors_are_not_taken_for_memory():
    clf = RNNImageClassifier(**TINY, callbacks=[FailAt(epoch=1, error=lambda: RuntimeError("bug"))])
    with pytest.raises(RuntimeError, match="^bug$"):
        clf.fit(X, Y)


def test_a_model_too_large_for_the_memory_is_refused_clearly():
    # An LSTM of 2**20 units needs terabytes of weights. It is refused before anything is
    # allocated: a system that overcommits memory would grant the allocation and kill the
    # process when the weights are written.
    if device_memory_bytes(torch.device("cpu")) is None:
        pytest.skip("this platform does not tell its memory")
    clf = RNNImageClassifier(**{**TINY, "hidden_size": 2**20})
    refused = r"Building the model would run out.*\d+\.\d TiB.*hidden_size=1048576"
    with pytest.raises(OutOfMemoryError, match=refused):
        clf.fit(X, Y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_weights_must_fit_the_host_memory_they_are_built_in_before_the_gpu(monkeypatch):
    """The module is built in the host's memory and then moved: a GPU larger than the host's
    memory does not let weights larger than the host's memory through."""
    from skrnn import _base

    clf = RNNImageClassifier(**TINY)
    clf._device = torch.device("cuda")
    sizes = {"cpu": 100 << 30, "cuda": 140 << 30}
    monkeypatch.setattr(_base, "device_memory_bytes", lambda device: sizes[device.type])
    assert clf._memory_for_weights() == (100 << 30, "the host's memory")
    sizes["cuda"] = 80 << 30
    assert clf._memory_for_weights() == (80 << 30, "the CUDA device")


def test_cells_of_the_users_own_are_not_built_twice():
    calls = []

    def make_cell(input_size, hidden_size, num_layers, bidirectional, dropout):
        calls.append(torch.empty(0).device.type)
        return torch.nn.Sequential(torch.nn.Linear(input_size, hidden_size))

    RNNImageClassifier(**{**TINY, "cell": make_cell, "bidirectional": False}).fit(X, Y)
    assert calls == ["cpu"]


def test_an_allocation_that_fails_while_building_is_refused_clearly(monkeypatch):
    """Weights that fit the memory, but not what is left of it: the allocator's error."""

    def build_fails(*args, **kwargs):
        raise CPU_OOM()

    monkeypatch.setattr(RNNImageClassifier, "_initialize_net", build_fails)
    clf = RNNImageClassifier(**TINY)
    with pytest.raises(OutOfMemoryError, match=r"Building the model ran out of memory.*unfitted"):
        clf.fit(X, Y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def _fail_above(module, images, error):
    """Make ``module`` run out of memory on batches of more than ``images`` images."""
    forward = module.forward

    def limited(batch, *args, **kwargs):
        if len(batch) > images:
            raise error()
        return forward(batch, *args, **kwargs)

    module.forward = limited
    return forward


@pytest.mark.parametrize("error", [CUDA_OOM, CPU_OOM])
def test_prediction_goes_on_with_smaller_batches(error):
    clf = RNNImageClassifier(**TINY).fit(X, Y)
    expected = clf.predict_proba(X)
    _fail_above(clf.net_.module_, 3, error)
    with pytest.warns(RuntimeWarning) as record:
        probabilities = clf.predict_proba(X)
    assert [str(w.message) for w in record] == [
        # 16 images padded to the CPU's inference batch
        "Prediction ran out of memory on cpu with 128 images a batch; it went on with 2."
    ]
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


@pytest.mark.parametrize("error", [CUDA_OOM, CPU_OOM])
def test_one_image_goes_on_with_smaller_padded_batches(error):
    # a call's batches are padded to one size: running out of memory on one image halves that
    clf = RNNImageClassifier(**TINY).fit(X, Y)
    expected = clf.predict_proba(X[:1])
    _fail_above(clf.net_.module_, 3, error)
    with pytest.warns(RuntimeWarning, match="with 128 images a batch; it went on with 2"):
        probabilities = clf.predict_proba(X[:1])
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def test_segmenter_prediction_goes_on_with_smaller_batches():
    images, masks = make_shapes(n_samples=8, image_size=12, random_state=0)
    seg = RNNSegmenter(conv=(), hidden_size=4, max_epochs=1, random_state=0).fit(images, masks)
    expected = seg.predict(images)
    _fail_above(seg.net_.module_, 2, CUDA_OOM)
    with pytest.warns(RuntimeWarning, match="out of memory"):
        np.testing.assert_array_equal(seg.predict(images), expected)


def test_prediction_out_of_memory_at_one_image_is_an_error_and_the_model_stays_usable():
    clf = RNNImageClassifier(**TINY).fit(X, Y)
    expected = clf.predict(X)
    forward = _fail_above(clf.net_.module_, 0, CUDA_OOM)
    with pytest.raises(OutOfMemoryError, match="one image at a"):
        clf.predict(X)
    clf.net_.module_.forward = forward
    np.testing.assert_array_equal(clf.predict(X), expected)
