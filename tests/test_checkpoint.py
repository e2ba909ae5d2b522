"""Checkpoint and resume: a fit killed mid-training and started again with the same checkpoint
path ends with exactly the weights of a fit that was never interrupted (on the CPU, with an int
random_state), and a checkpoint is never resumed into another fit."""

import copy
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

import skrnn
from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSegmenter
from skrnn.datasets import load_digits_images, make_shapes
from skrnn.exceptions import ModelFileError

TINY = dict(hidden_size=6, random_state=0, n_threads=1, device="cpu")


class Crash(BaseException):
    """A crash that nothing in the fit catches (as a killed process would not clean up)."""


class CrashAt(Callback):
    """Raise :class:`Crash` after ``batch`` training batches of epoch ``epoch`` (1-based), or
    at the end of training when ``epoch`` is None."""

    def __init__(self, epoch=None, batch=1):
        self.epoch, self.batch = epoch, batch

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.epoch:
            if len(net.history[-1]["batches"]) == self.batch:
                raise Crash

    def on_train_end(self, net, **kwargs):
        if self.epoch is None:
            raise Crash


@pytest.fixture(scope="module")
def data():
    X, y = load_digits_images(return_X_y=True)
    masks_X, masks = make_shapes(n_samples=24, image_size=12, random_state=0)
    return {
        "classifier": (X[:240], y[:240]),
        "regressor": (X[:160], (y[:160] + X[:160].mean(axis=(1, 2))).astype(np.float32)),
        "segmenter": (masks_X, masks),
        "generator": (X[:120], y[:120]),
    }


FITS = {
    # augmentation, dropout and early stopping: every random draw and every piece of state
    "classifier": lambda **kw: RNNImageClassifier(
        max_epochs=5, augment=True, dropout=0.2, early_stopping=True, n_iter_no_change=2, **kw
    ),
    "regressor": lambda **kw: RNNImageRegressor(max_epochs=4, lr_schedule="cosine", **kw),
    "segmenter": lambda **kw: RNNSegmenter(
        max_epochs=4, conv=(4,), batch_size=8, augment=True, **kw
    ),
    "generator": lambda **kw: RNNImageGenerator(
        max_epochs=4, embedding_dim=4, batch_size=32, optimizer="adamw", **kw
    ),
}


def _same_weights(a, b):
    first, second = a.net_.module_.state_dict(), b.net_.module_.state_dict()
    assert first.keys() == second.keys()
    return all(torch.equal(first[k], second[k]) for k in first)


def _losses(estimator):
    return [epoch["train_loss"] for epoch in estimator.history_]


@pytest.mark.parametrize("kind", sorted(FITS))
def test_a_crashed_fit_resumes_to_the_weights_of_an_uninterrupted_one(kind, data, tmp_path):
    X, y = data[kind]
    make = FITS[kind]
    path = tmp_path / "fit.ckpt"
    uninterrupted = make(**TINY).fit(X, y)
    with pytest.raises(Crash):
        make(**TINY, checkpoint=path, callbacks=[CrashAt(epoch=3, batch=2)]).fit(X, y)
    assert path.exists()
    resumed = make(**TINY, checkpoint=path).fit(X, y)
    assert _same_weights(uninterrupted, resumed)
    assert _losses(resumed) == _losses(uninterrupted)
    assert resumed.n_iter_ == uninterrupted.n_iter_
    assert not path.exists()  # removed once the fit finished
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("crash_epoch", [3, 5])  # while waiting, and while cooling down
def test_an_auto_fit_that_stops_early_resumes_to_the_same_stop(data, tmp_path, crash_epoch):
    X, y = data["classifier"]
    X, y = X[:40], y[:40]
    # A tol this large counts no epoch after the first as an improvement: 3 epochs of patience
    # end at epoch 4, and one epoch of cool-down follows.
    make = lambda **kw: RNNImageClassifier(batch_size=20, tol=0.5, n_iter_no_change=3, **kw)  # noqa: E731
    path = tmp_path / "fit.ckpt"
    uninterrupted = make(**TINY).fit(X, y)
    assert uninterrupted.n_iter_ == 5
    with pytest.raises(Crash):
        make(**TINY, checkpoint=path, callbacks=[CrashAt(epoch=crash_epoch, batch=1)]).fit(X, y)
    resumed = make(**TINY, checkpoint=path).fit(X, y)
    assert resumed.n_iter_ == 5
    assert _same_weights(uninterrupted, resumed)
    assert _losses(resumed) == _losses(uninterrupted)
    assert not path.exists()


@pytest.mark.parametrize("crash_epoch", [2, 3])  # at half size, and the first at full size
def test_a_progressively_resized_fit_resumes_at_the_size_it_stopped(data, tmp_path, crash_epoch):
    X, y = data["segmenter"]
    make = lambda **kw: RNNSegmenter(  # noqa: E731
        max_epochs=4, conv=(4,), batch_size=8, progressive_resizing=0.5, **kw
    )
    path = tmp_path / "fit.ckpt"
    uninterrupted = make(**TINY).fit(X, y)
    with pytest.raises(Crash):
        make(**TINY, checkpoint=path, callbacks=[CrashAt(epoch=crash_epoch, batch=1)]).fit(X, y)
    resumed = make(**TINY, checkpoint=path).fit(X, y)
    assert _same_weights(uninterrupted, resumed)
    assert _losses(resumed) == _losses(uninterrupted)


@pytest.mark.parametrize(
    "sig, handled", [("SIGKILL", False), ("SIGTERM", False), ("SIGTERM", True)],
    ids=["sigkill", "sigterm", "sigterm-raising-systemexit"],
)  # fmt: skip
def test_a_killed_fit_resumes_bit_identically(data, tmp_path, sig, handled):
    """Killed mid-epoch: by the signal itself, or (as job schedulers' wrappers do) by a
    SIGTERM handler that exits through SystemExit, unwinding the fit."""
    X, y = data["classifier"]
    np.savez(tmp_path / "data.npz", X=X, y=y)
    path = tmp_path / "fit.ckpt"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        import numpy as np
        if {handled!r}:
            signal.signal(signal.SIGTERM, lambda *args: sys.exit(143))
        from skorch.callbacks import Callback
        from skrnn import RNNImageClassifier

        class Kill(Callback):
            def on_batch_end(self, net, training=False, **kwargs):
                if training and len(net.history) == 4 and len(net.history[-1]["batches"]) == 3:
                    os.kill(os.getpid(), signal.{sig})

        data = np.load({str(tmp_path / "data.npz")!r})
        RNNImageClassifier(
            max_epochs=6, dropout=0.2, augment=True, checkpoint={str(path)!r}, callbacks=[Kill()],
            **{TINY!r}
        ).fit(data["X"], data["y"])
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == (143 if handled else -getattr(signal, sig)), run.stderr
    assert path.exists()
    make = lambda **kw: RNNImageClassifier(max_epochs=6, dropout=0.2, augment=True, **TINY, **kw)  # noqa: E731
    resumed = make(checkpoint=path).fit(X, y)
    uninterrupted = make().fit(X, y)
    assert _same_weights(uninterrupted, resumed)
    assert _losses(resumed) == _losses(uninterrupted)
    assert not path.exists()


def test_a_crash_while_writing_leaves_the_previous_checkpoint_usable(data, tmp_path, monkeypatch):
    X, y = data["regressor"]
    make = FITS["regressor"]
    path = tmp_path / "fit.ckpt"
    real_replace, writes = os.replace, []

    def crash_on_the_third_write(source, target):
        writes.append(target)
        if len(writes) == 3:  # the file of epoch 3 is written, but not yet in place
            raise Crash
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", crash_on_the_third_write)
    with pytest.raises(Crash):
        make(**TINY, checkpoint=path).fit(X, y)
    monkeypatch.setattr(os, "replace", real_replace)
    assert os.listdir(tmp_path) == ["fit.ckpt"]  # no half-written temporary file left
    resumed = make(**TINY, checkpoint=path).fit(X, y)
    assert _same_weights(make(**TINY).fit(X, y), resumed)


def test_a_crash_after_the_last_epoch_resumes_without_training_again(data, tmp_path):
    X, y = data["classifier"]
    make = FITS["classifier"]
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Crash):
        make(**TINY, checkpoint=path, callbacks=[CrashAt(epoch=None)]).fit(X, y)
    resumed = make(**TINY, checkpoint=path).fit(X, y)
    # early stopping's best weights come back too, as at the end of an uninterrupted fit
    assert _same_weights(make(**TINY).fit(X, y), resumed)
    assert not path.exists()


def test_ctrl_c_keeps_the_checkpoint_and_the_next_fit_finishes_the_job(data, tmp_path):
    X, y = data["regressor"]
    make = FITS["regressor"]
    path = tmp_path / "fit.ckpt"

    class Interrupt(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            if training and len(net.history) == 2 and len(net.history[-1]["batches"]) == 1:
                raise KeyboardInterrupt

    with pytest.warns(RuntimeWarning, match="interrupted"):
        stopped = make(**TINY, checkpoint=path, callbacks=[Interrupt()]).fit(X, y)
    assert stopped.n_iter_ == 1 and path.exists()
    resumed = make(**TINY, checkpoint=path).fit(X, y)
    assert _same_weights(make(**TINY).fit(X, y), resumed)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(lr=0.005), "the parameters lr differ"),
        (dict(hidden_size=7), "the parameters hidden_size differ"),
        ("data", "the training data"),
        ("weights", "the training data"),
    ],
)
def test_a_checkpoint_of_another_fit_is_refused_and_left_alone(data, tmp_path, change, message):
    X, y = data["regressor"]
    make = FITS["regressor"]
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Crash):
        make(**TINY, checkpoint=path, callbacks=[CrashAt(epoch=2)]).fit(X, y)
    before = path.read_bytes()
    params, fit_args = dict(TINY), {}
    if change == "data":
        X = X + 1
    elif change == "weights":
        fit_args["sample_weight"] = np.linspace(1, 2, len(X))
    else:
        params.update(change)
    with pytest.raises(ValueError, match=f"written by another fit: {message}"):
        make(**params, checkpoint=path).fit(X, y, **fit_args)
    assert path.read_bytes() == before
    # what only changes how the fit runs or reports is not a different fit
    make(**{**TINY, "verbose": 0, "n_threads": 2}, checkpoint=path).fit(*data["regressor"])
    assert not path.exists()


def test_a_file_that_is_not_a_checkpoint_is_never_overwritten(data, tmp_path):
    X, y = data["regressor"]
    path = tmp_path / "notes.txt"
    path.write_bytes(b"someone's notes")
    with pytest.raises(ModelFileError, match="not a skrnn checkpoint.*does not overwrite it"):
        FITS["regressor"](**TINY, checkpoint=path).fit(X, y)
    assert path.read_bytes() == b"someone's notes"
    with pytest.raises(ModelFileError, match="not a skrnn checkpoint"):
        FITS["regressor"](**TINY, checkpoint=tmp_path).fit(X, y)  # a folder


def test_a_damaged_checkpoint_is_a_model_file_error(data, tmp_path):
    X, y = data["regressor"]
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Crash):
        FITS["regressor"](**TINY, checkpoint=path, callbacks=[CrashAt(epoch=2)]).fit(X, y)
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    weights = bytearray(entries["tensors.safetensors"])
    weights[-1] ^= 0xFF
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("state.json", entries["state.json"])
        archive.writestr("tensors.safetensors", bytes(weights))
    with pytest.raises(ModelFileError, match="is damaged.*checksum.*Delete it"):
        FITS["regressor"](**TINY, checkpoint=path).fit(X, y)


def test_a_warm_start_is_its_own_fit(data, tmp_path):
    X, y = data["regressor"]
    make = FITS["regressor"]
    path = tmp_path / "fit.ckpt"
    first = make(**TINY, warm_start=True).fit(X, y)
    start = copy.deepcopy(first)  # what a new process would load from a saved model
    with pytest.raises(Crash):
        first.set_params(checkpoint=path, callbacks=[CrashAt(epoch=6)]).fit(X, y)
    # a fresh fit, or a warm start from other weights, is another fit
    with pytest.raises(ValueError, match="the weights it started from differ"):
        make(**TINY, warm_start=True, checkpoint=path).fit(X, y)
    # the same warm start picks up where it stopped
    resumed = start.set_params(checkpoint=path).fit(X, y)
    uninterrupted = make(**TINY, warm_start=True).fit(X, y).fit(X, y)
    assert _same_weights(uninterrupted, resumed)
    assert resumed.n_iter_ == uninterrupted.n_iter_ == 8
    assert not path.exists()


def test_partial_fit_ignores_the_checkpoint(data, tmp_path):
    X, y = data["regressor"]
    path = tmp_path / "fit.ckpt"
    FITS["regressor"](**TINY, checkpoint=path).partial_fit(X, y)
    assert not path.exists()


def test_checkpoint_path_type_and_folder_are_checked(data, tmp_path):
    X, y = data["regressor"]
    with pytest.raises(ValueError, match="checkpoint"):
        FITS["regressor"](**TINY, checkpoint=3).fit(X, y)
    missing = tmp_path / "missing" / "fit.ckpt"
    with pytest.raises(ValueError, match="in a folder that does not exist"):
        FITS["regressor"](**TINY, checkpoint=missing).fit(X, y)


def test_resumed_fit_warns_nothing_extra(data, tmp_path):
    X, y = data["classifier"]
    path = tmp_path / "fit.ckpt"
    with pytest.raises(Crash):
        FITS["classifier"](**TINY, checkpoint=path, callbacks=[CrashAt(epoch=2)]).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FITS["classifier"](**TINY, checkpoint=path).fit(X, y)


def test_the_checkpoint_path_is_not_saved_in_model_files(data, tmp_path):
    X, y = data["regressor"]
    fitted = FITS["regressor"](**TINY, checkpoint=tmp_path / "fit.ckpt").fit(X, y)
    fitted.save(tmp_path / "model.skrnn")
    with zipfile.ZipFile(tmp_path / "model.skrnn") as archive:
        assert b"fit.ckpt" not in archive.read("model.json")
    assert skrnn.load(tmp_path / "model.skrnn").checkpoint is None


# --------------------------------------------------------------------------- damaged and crafted
@pytest.fixture(scope="module")
def crashed_checkpoint(data, tmp_path_factory):
    """The bytes of a checkpoint the regressor's fit left after its second epoch."""
    path = tmp_path_factory.mktemp("crashed") / "fit.ckpt"
    with pytest.raises(Crash):
        FITS["regressor"](**TINY, checkpoint=path, callbacks=[CrashAt(epoch=2)]).fit(
            *data["regressor"]
        )
    return path.read_bytes()


def _resume(data, path):
    return FITS["regressor"](**TINY, checkpoint=path).fit(*data["regressor"])


def _rewritten(checkpoint: bytes, path, *, state=None, tensors=None, state_suffix=b""):
    """Write the checkpoint to ``path`` with ``state(record)`` applied to its state.json and
    ``tensors`` replacing its tensors' bytes (the checksum recomputed, as whoever edits a
    file can)."""
    with zipfile.ZipFile(io.BytesIO(checkpoint)) as archive:
        record = json.loads(archive.read("state.json"))
        tensor_bytes = archive.read("tensors.safetensors")
    if tensors is not None:
        tensor_bytes = tensors
        record["sha256"] = hashlib.sha256(tensor_bytes).hexdigest()
    if state is not None:
        state(record)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "state.json", json.dumps(record).encode() + state_suffix, zipfile.ZIP_DEFLATED
        )
        archive.writestr("tensors.safetensors", tensor_bytes, zipfile.ZIP_STORED)
    return path


def test_a_damaged_deflate_stream_is_a_model_file_error(data, crashed_checkpoint, tmp_path):
    """zipfile raises zlib.error, neither an OSError nor a BadZipFile, for a deflate stream
    that cannot be inflated: it reached the caller as it was."""
    raw = bytearray(crashed_checkpoint)
    with zipfile.ZipFile(io.BytesIO(crashed_checkpoint)) as archive:
        info = archive.getinfo("state.json")
    assert info.compress_type == zipfile.ZIP_DEFLATED
    name_length, extra_length = struct.unpack_from("<HH", raw, info.header_offset + 26)
    raw[info.header_offset + 30 + name_length + extra_length] = 0b111  # a reserved block type
    path = tmp_path / "fit.ckpt"
    path.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="is damaged: its entry state.json cannot be read"):
        _resume(data, path)
    assert path.read_bytes() == bytes(raw)


def test_a_checkpoint_of_a_newer_format_says_a_newer_skrnn_wrote_it(
    data, crashed_checkpoint, tmp_path
):
    def newer(record):
        record["format_version"] += 1
        record["skrnn_version"] = "99.0"

    path = _rewritten(crashed_checkpoint, tmp_path / "fit.ckpt", state=newer)
    with pytest.raises(ModelFileError, match="written by a newer skrnn \\('99.0'\\)") as error:
        _resume(data, path)
    assert "damaged" not in str(error.value)


def test_a_checkpoint_is_read_within_the_limits_of_model_files(data, crashed_checkpoint, tmp_path):
    # JSON may end in any amount of white space: 64 MiB of it deflates to 64 KB.
    bomb = _rewritten(crashed_checkpoint, tmp_path / "bomb.ckpt", state_suffix=b" " * (64 << 20))
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        message = "not a skrnn checkpoint: its entry state.json declares 67"
        with pytest.raises(ModelFileError, match=message):
            _resume(data, bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    # A 1 KB file whose tensors' header claims 10 GB.
    huge = 10 << 30
    header = json.dumps(
        {"module.x": {"dtype": "F32", "shape": [huge // 4], "data_offsets": [0, huge]}}
    ).encode()
    tensors = len(header).to_bytes(8, "little") + header
    crafted = _rewritten(crashed_checkpoint, tmp_path / "huge.ckpt", tensors=tensors)
    with pytest.raises(ModelFileError, match="is damaged: its tensors are not a valid safetensors"):
        _resume(data, crafted)
