"""The GPU's fast paths, exercised on the CPU: training data kept on the device, losses read
one batch late, and ``batch_size="auto"``. The CUDA-only checks at the end run where CUDA is.
tests/test_training_safety.py runs every non-finite-loss check with losses read late too."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

import skrnn._data
from skrnn import RNNImageClassifier, RNNSegmenter, RNNSequenceRecognizer
from skrnn._augment import Augmenter
from skrnn._base import BaseRNNEstimator
from skrnn._checkpoint import fit_identity
from skrnn._data import ArrayDataset, BatchLoader
from skrnn._docs import _gpu_base_epochs
from skrnn._utils import gpu_batch_size
from skrnn._validation import check_images, finite_values_checked_elsewhere
from skrnn.datasets import make_digit_strings, make_shapes

CPU = torch.device("cpu")


@pytest.fixture
def resident_on_cpu(monkeypatch):
    """Take the path of a GPU with room for the data, on the CPU: data "move" to the CPU once
    per fit and batches are gathered with an index tensor on the device."""
    monkeypatch.setattr(skrnn._data, "_free_device_bytes", lambda device: 1 << 40)
    monkeypatch.setattr(BaseRNNEstimator, "_data_device", lambda self: CPU)


@pytest.fixture
def deferred_loss(monkeypatch):
    monkeypatch.setattr(BaseRNNEstimator, "_defer_loss", lambda self: True)


def _batches(loader):
    torch.manual_seed(0)
    out = []
    for X, y in loader:
        X = X if isinstance(X, dict) else {"X": X}
        out.append(({k: v.clone() for k, v in X.items()}, y.clone()))
    return out


def test_batches_gathered_on_the_device_are_the_host_batches(monkeypatch):
    rng = np.random.default_rng(0)
    images = torch.as_tensor(rng.random((50, 12, 12, 1), dtype=np.float32))
    dataset = ArrayDataset(images, rng.integers(0, 3, 50), rng.random(50))
    augment = Augmenter(
        hflip=True, vflip=False, shift=0.1, scale=0.1, intensity=0.2, mean=[0.5], std=[0.2]
    )
    params = dict(batch_size=16, shuffle=True, augment=augment)
    on_host = _batches(BatchLoader(dataset, **params))
    monkeypatch.setattr(skrnn._data, "_free_device_bytes", lambda device: 1 << 40)
    on_device = _batches(BatchLoader(dataset, device=CPU, **params))
    assert dataset.on_device(CPU) is not None  # the resident copy was made, and is kept
    assert dataset.on_device(CPU) is dataset.on_device(CPU)
    assert len(on_host) == len(on_device) == 4
    for (X_host, y_host), (X_device, y_device) in zip(on_host, on_device, strict=True):
        assert X_host.keys() == X_device.keys() == {"X", "sample_weight"}
        for key in X_host:
            torch.testing.assert_close(X_device[key], X_host[key])
        torch.testing.assert_close(y_device, y_host)


def test_a_memory_map_that_fits_moves_in_its_own_dtype_and_trains_as_in_memory(
    monkeypatch, tmp_path
):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (40, 6, 6, 1), dtype=np.uint8)
    np.save(tmp_path / "images.npy", images)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    labels = rng.integers(0, 3, 40)
    monkeypatch.setattr(skrnn._data, "_free_device_bytes", lambda device: 1 << 40)
    monkeypatch.setattr(skrnn._data, "_DEVICE_COPY_BYTES", 7 * 36)  # several slices
    from_map = ArrayDataset(mapped, labels)
    resident = from_map.on_device(CPU)
    assert resident.X.dtype == torch.uint8 and resident.X.shape == images.shape
    torch.testing.assert_close(resident.X, torch.from_numpy(images))
    in_memory = ArrayDataset(torch.as_tensor(images, dtype=torch.float32), labels)
    params = dict(batch_size=16, shuffle=True)
    for (X_map, y_map), (X_mem, y_mem) in zip(
        _batches(BatchLoader(from_map, device=CPU, **params)),
        _batches(BatchLoader(in_memory, device=CPU, **params)),
        strict=True,
    ):
        assert X_map["X"].dtype == torch.float32  # cast as each batch is gathered
        torch.testing.assert_close(X_map["X"], X_mem["X"])
        torch.testing.assert_close(y_map, y_mem)


def test_data_that_do_not_fit_on_the_device_stay_on_the_host(monkeypatch):
    images = torch.zeros(10, 4, 4, 1)
    dataset = ArrayDataset(images, np.arange(10))
    monkeypatch.setattr(skrnn._data, "_free_device_bytes", lambda device: 1000)
    assert dataset.on_device(CPU) is None  # 640 bytes of images need more than a quarter
    as_array = ArrayDataset(np.zeros((10, 4, 4, 1)), np.arange(10))  # float64: moved as float32
    assert as_array.on_device(CPU) is None
    monkeypatch.setattr(skrnn._data, "_free_device_bytes", lambda device: 4 * 720)
    assert as_array.on_device(CPU) is None  # the refusal is kept for the fit
    assert ArrayDataset(np.zeros((10, 4, 4, 1)), np.arange(10)).on_device(CPU).X.dtype == (
        torch.float32
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: RNNImageClassifier(hidden_size=16, max_epochs=3, random_state=0),
        lambda: RNNImageClassifier(
            hidden_size=16, max_epochs=3, early_stopping=True, augment=True, random_state=0
        ),
    ],
    ids=["plain", "validation-and-augmentation"],
)
def test_the_gpu_paths_train_exactly_as_the_host_paths(digits, make, monkeypatch):
    X, y = digits
    reference = make().fit(X, y)
    monkeypatch.setattr(skrnn._data, "_free_device_bytes", lambda device: 1 << 40)
    monkeypatch.setattr(BaseRNNEstimator, "_data_device", lambda self: CPU)
    monkeypatch.setattr(BaseRNNEstimator, "_defer_loss", lambda self: True)
    fast = make().fit(X, y)
    assert fast.net_.defer_loss
    for epoch, expected in zip(fast.history_, reference.history_, strict=True):
        for key in ("train_loss", "valid_loss", "valid_acc"):
            if key in expected:
                assert epoch[key] == pytest.approx(expected[key], rel=1e-6), key
    for name, value in reference.net_.module_.state_dict().items():
        torch.testing.assert_close(fast.net_.module_.state_dict()[name], value)
    # every batch's loss reached the history, the last one at the end of its epoch
    batches = fast.net_.history[-1, "batches"]
    assert all("train_loss" in row for row in batches if "train_batch_size" in row)


def test_segmenter_and_recognizer_train_on_the_gpu_paths(resident_on_cpu, deferred_loss):
    X, Y = make_shapes(n_samples=12, image_size=16, random_state=0)
    segmenter = RNNSegmenter(hidden_size=8, max_epochs=2, augment=True, random_state=0)
    assert segmenter.fit(X, Y).predict(X).shape == Y.shape
    lines, texts = make_digit_strings(n_samples=12, random_state=0)
    reader = RNNSequenceRecognizer(hidden_size=8, max_epochs=2, random_state=0).fit(lines, texts)
    assert len(reader.predict(lines)) == 12
    assert np.isfinite(reader.history_[-1]["train_loss"])


@pytest.mark.parametrize(
    "estimator, shape, expected",
    [
        (RNNImageClassifier(), (28, 28, 1), 256),
        (RNNImageClassifier(), (32, 32, 3), 256),
        (RNNImageClassifier(), (64, 64, 3), 64),
        (RNNImageClassifier(), (180, 240, 3), 32),
        (RNNSegmenter(), (32, 32, 3), 64),
        (RNNSegmenter(), (180, 240, 3), 8),
        (RNNImageClassifier(batch_size=48), (28, 28, 1), 48),
        (RNNImageClassifier(max_epochs=10), (28, 28, 1), 32),  # N epochs train alike anywhere
    ],
)
def test_auto_batch_size_grows_on_a_gpu_only(estimator, shape, expected):
    estimator.image_shape_ = shape
    assert estimator._training_batch_size(torch.device("cuda")) == expected
    cpu = estimator.batch_size if estimator.batch_size != "auto" else estimator._cpu_batch_size
    assert estimator._training_batch_size(CPU) == cpu
    if estimator.batch_size == "auto" and estimator.max_epochs == "auto":  # the docstring's rule
        per_image = int(np.prod(shape))
        assert gpu_batch_size(estimator._cpu_batch_size, per_image) == expected


def test_auto_batch_size_on_the_cpu_keeps_the_former_defaults(digits):
    X, y = digits
    clf = RNNImageClassifier(hidden_size=8, max_epochs=1, device="cpu", random_state=0)
    clf.fit(X, y)
    assert clf.net_.batch_size == 32
    assert clf.history_[0]["train_batch_count"] == int(np.ceil(len(X) / 32))
    assert RNNSegmenter()._cpu_batch_size == 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_data_live_on_the_device_and_predictions_match_the_cpu(digits_split):
    X, y, X_test, _ = digits_split
    params = dict(hidden_size=16, max_epochs=3, batch_size=256, random_state=0, augment=True)
    gpu = RNNImageClassifier(device="cuda", **params).fit(X, y)
    assert gpu.net_.defer_loss and RNNImageClassifier(device="cuda")._training_batch_size() == 256
    assert all(np.isfinite(epoch["train_loss"]) for epoch in gpu.history_)
    cpu = RNNImageClassifier(device="cpu", **params).fit(X, y)
    np.testing.assert_allclose(
        gpu.predict_proba(X_test), cpu.predict_proba(X_test), rtol=0.05, atol=0.05
    )


class ModeRecorder(Callback):
    """Record, per batch, whether every submodule of the module was in training mode."""

    def initialize(self):
        self.modes = []
        return self

    def on_batch_end(self, net, training, **kwargs):
        modes = {module.training for module in net.module_.modules()}
        self.modes.append((training, modes))


def test_batches_run_in_their_mode_although_the_mode_is_set_only_on_change(digits):
    X, y = digits
    recorder = ModeRecorder()
    clf = RNNImageClassifier(
        hidden_size=8,
        max_epochs=2,
        early_stopping=True,
        random_state=0,
        callbacks=[("modes", recorder)],
    ).fit(X, y)
    assert {training for training, _ in recorder.modes} == {True, False}
    assert all(modes == {training} for training, modes in recorder.modes)
    # a submodule left in another mode (by user code) is switched back for training
    clf.net_.module_.train()
    next(iter(clf.net_.module_.children())).eval()
    clf.set_params(warm_start=True, max_epochs=1).fit(X, y)
    assert all(modes == {training} for training, modes in recorder.modes)


def test_callbacks_that_define_a_hook_are_called_and_no_ops_skipped(digits):
    X, y = digits

    class Counter(Callback):
        def initialize(self):
            self.batches = 0
            return self

        def on_batch_end(self, net, **kwargs):
            self.batches += 1

    counter = Counter()
    RNNImageClassifier(
        hidden_size=8, max_epochs=2, batch_size=32, random_state=0, callbacks=[("count", counter)]
    ).fit(X, y)
    assert counter.batches == 2 * int(np.ceil(len(X) / 32))


def test_the_finite_check_can_be_left_to_the_batches():
    clf = RNNImageClassifier()
    X = np.zeros((3, 4, 4))
    X[1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_images(clf, X, reset=True)
    with finite_values_checked_elsewhere():
        assert np.isnan(check_images(clf, X, reset=True)).sum() == 1
    with pytest.raises(ValueError, match="NaN"):  # the context has ended
        check_images(clf, X, reset=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_on_cuda_non_finite_images_are_refused_at_predict(digits, bad):
    X, y = digits
    clf = RNNImageClassifier(hidden_size=8, max_epochs=1, device="cuda", random_state=0)
    clf.fit(X, y)
    X_bad = X[:50].astype(np.float32)
    X_bad[30, 3, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        clf.predict(X_bad)
    np.testing.assert_array_equal(clf.predict(X[:50]), clf.predict(X[:50].astype(np.float32)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_a_memory_map_trains_as_the_same_data_in_memory(digits, tmp_path):
    X, y = digits
    images = (X * 15).astype(np.uint8)  # 8-bit, copied as such and cast on the GPU
    path = tmp_path / "images.npy"
    np.save(path, images)
    mapped = np.load(path, mmap_mode="r")
    # no augmentation: a memory map's batches are read in sorted order, so the same random
    # changes would fall on other images
    params = dict(hidden_size=16, max_epochs=2, random_state=0, device="cuda", augment=False)
    in_memory = RNNImageClassifier(**params).fit(images, y)
    on_disk = RNNImageClassifier(**params).fit(mapped, y)
    assert on_disk.history_[-1]["train_loss"] == pytest.approx(
        in_memory.history_[-1]["train_loss"], rel=1e-3
    )
    np.testing.assert_allclose(
        on_disk.predict_proba(images), in_memory.predict_proba(images), rtol=1e-3, atol=1e-4
    )


@pytest.mark.parametrize(
    "estimator, n_fit, epochs",
    [
        (RNNImageClassifier(), 60_000, 85),  # 8 times the batch: 30 * sqrt(8) base epochs
        (RNNImageClassifier(), 1437, 167),  # the digits: 1,000 steps of 256 need more
        (RNNImageClassifier(max_epochs=30), 60_000, 30),  # given epochs are kept
        (RNNImageClassifier(batch_size=256), 60_000, 30),  # a given batch does not grow them
        (RNNSegmenter(), 367, 27),  # photos keep their batch of 8: as on the CPU, 1,200 steps
    ],
)
def test_auto_epochs_grow_with_the_batch_a_gpu_takes(estimator, n_fit, epochs):
    estimator.image_shape_ = (180, 240, 3) if isinstance(estimator, RNNSegmenter) else (28, 28, 1)
    estimator._device = torch.device("cuda")  # as fit sets it on a GPU machine
    assert estimator._epochs(n_fit) == epochs
    if estimator.max_epochs == "auto" and estimator.batch_size == "auto":  # the docstring's rule
        assert _gpu_base_epochs(type(estimator)) == int(
            np.ceil(
                estimator._base_epochs
                * np.sqrt(
                    gpu_batch_size(estimator._cpu_batch_size, 784) / estimator._cpu_batch_size
                )
            )
        )


def test_a_checkpoint_knows_the_batch_that_auto_took():
    clf = RNNImageClassifier()
    clf.image_shape_ = (28, 28, 1)
    clf._device = CPU
    on_cpu = fit_identity(clf, "data", None)
    clf._device = torch.device("cuda")
    on_gpu = fit_identity(clf, "data", None)
    assert (on_cpu["params"]["batch_size"], on_gpu["params"]["batch_size"]) == (32, 256)


def test_a_hook_set_on_a_callback_instance_is_called(digits):
    X, y = digits
    seen = []
    callback = Callback()
    callback.on_batch_end = lambda net, **kwargs: seen.append(1)
    RNNImageClassifier(
        hidden_size=8, max_epochs=1, batch_size=100, random_state=0, callbacks=[("c", callback)]
    ).fit(X, y)
    assert len(seen) == 4


def test_a_warm_start_trains_with_the_batch_size_it_is_given(digits):
    X, y = digits
    clf = RNNImageClassifier(hidden_size=8, max_epochs=1, batch_size=100, random_state=0)
    clf.fit(X, y)
    clf.set_params(warm_start=True, batch_size=50).fit(X, y)
    assert clf.net_.batch_size == 50
    assert clf.history_[-1]["train_batch_count"] == 8


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_an_unpickled_model_keeps_its_recurrent_weights_in_one_block(digits):
    X, y = digits
    clf = RNNImageClassifier(hidden_size=8, max_epochs=1, device="cuda", random_state=0)
    expected = clf.fit(X, y).predict_proba(X)
    loaded = pickle.loads(pickle.dumps(clf))
    # Without the fix, the GPU suite's pickle tests showed this warning (2026-11-27, H200).
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*single contiguous chunk of memory")
        np.testing.assert_array_equal(loaded.predict_proba(X), expected)


def test_unpickling_puts_the_recurrent_weights_back_in_one_block(digits, monkeypatch):
    """What the CUDA test above checks on a GPU, here as the call cuDNN needs (on the CPU
    ``flatten_parameters`` does nothing)."""
    X, y = digits
    clf = RNNImageClassifier(hidden_size=8, max_epochs=1, device="cpu", random_state=0).fit(X, y)
    pickled = pickle.dumps(clf)
    flattened = []
    monkeypatch.setattr(torch.nn.RNNBase, "flatten_parameters", lambda m: flattened.append(m))
    loaded = pickle.loads(pickled)
    layers = [m for m in loaded.net_.module_.modules() if isinstance(m, torch.nn.RNNBase)]
    assert layers and {id(m) for m in layers} <= {id(m) for m in flattened}


def test_read_only_images_train_without_a_warning(digits):
    """Read-only images of the model's dtype are shared with the training tensor, not copied
    (on a GPU every image dtype travels so), and torch's warning about that is not the user's
    concern: batches are gathered from it, never written in place."""
    X, y = digits
    X = X.astype(np.float32)  # the tensor's own dtype: shared with the array, not copied
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        clf = RNNImageClassifier(hidden_size=8, max_epochs=1, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.0
