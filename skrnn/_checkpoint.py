"""Checkpoints that let a killed ``fit`` resume where it stopped: the ``checkpoint`` parameter.

After every finished epoch, :class:`Checkpoint` writes one file (atomically: a temporary file
and a rename, so a crash mid-write leaves the previous checkpoint whole) that holds everything
the rest of the fit depends on:

* the module's weights, the optimizer's state (Adam's moments and step counts), the
  learning-rate schedule's position, early stopping's counters and best weights, and float16's
  loss scale;
* the fit's random generators (:mod:`skrnn._random`), which draw the shuffling, dropout and
  augmentation of the epochs still to come;
* the history so far, and the identity of the fit: the estimator's class and parameters and a
  digest of the training data (and, for a warm start, of the weights it started from).

A fit given a ``checkpoint`` path that holds a checkpoint of the same fit restores all of it and
trains only the epochs left, so on the CPU with an int ``random_state`` it ends with exactly the
weights of a fit that was never interrupted. A checkpoint of another fit (other data or
parameters) is never resumed: ``fit`` says what differs. The file is removed when the fit
finishes; it stays after a crash, a Ctrl-C or a non-finite loss.

Like model files, a checkpoint is a zip of JSON and safetensors: nothing in it is pickled, and
it is read within the same limits (``skrnn._archive`` and ``skrnn._limits``), so a damaged or
crafted file is refused with :class:`~skrnn.exceptions.ModelFileError` without allocating more
than its own size. One written by a newer skrnn (a newer format version) says so.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, EarlyStopping
from skorch.history import History

from ._archive import (
    check_entries,
    json_object,
    load_tensors,
    open_archive,
    read_entry,
    read_whole_entry,
    safetensors_layout,
)
from ._data import read_rows
from ._json import decode, dumps, encode
from ._limits import MAX_JSON_BYTES, MAX_TENSOR_BYTES
from ._net import LRSchedule, StopWhenConverged
from ._random import current as current_random
from ._random import restore_torch_state, torch_state
from ._resizing import CoarseToFine
from ._utils import write_atomically
from ._version import __version__
from .exceptions import ModelFileError

FORMAT = "skrnn-checkpoint"
FORMAT_VERSION = 1
STATE_ENTRY = "state.json"
TENSORS_ENTRY = "tensors.safetensors"
_ENTRY_LIMITS = {STATE_ENTRY: MAX_JSON_BYTES, TENSORS_ENTRY: MAX_TENSOR_BYTES}
# What every checkpoint's state holds (see _tensor_state and on_epoch_end).
_SAVED_STATE = frozenset({"optimizer_groups", "optimizer_values", "history"})
_WRITTEN_BY = "Checkpoints are written by a fit given checkpoint=path."
# Parameters that change how a fit runs or reports, not what it computes.
_NOT_IDENTITY = frozenset({"checkpoint", "verbose", "n_threads", "device", "callbacks"})
# skrnn's callbacks whose state a resumed fit restores, by their names in the net: each has
# checkpoint_state() (JSON data) and restore_checkpoint_state(state).
_STATEFUL_CALLBACKS = {
    "lr_schedule": LRSchedule,
    "converged": StopWhenConverged,
    "coarse_to_fine": CoarseToFine,
}
# Rows hashed at a time, so a memory-mapped data set is read in pieces.
_DIGEST_ROWS = 4096


def _encode_identity(value, name):
    """A parameter as JSON for the fit's identity; objects a model file cannot hold (a plugin
    optimizer class, an unregistered cell factory) by their qualified name."""
    try:
        return encode(value, f"the parameter {name}")
    except TypeError:
        kind = value if isinstance(value, type) else type(value)
        return {"$object": f"{kind.__module__}.{getattr(value, '__qualname__', kind.__name__)}"}


def data_digest(images, *arrays) -> str:
    """A digest of the training images (read a slice at a time) and their targets and weights."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((type(images).__name__, images.shape, str(images.dtype))).encode())
    for start in range(0, len(images), _DIGEST_ROWS):
        rows = read_rows(images, slice(start, start + _DIGEST_ROWS))
        digest.update(np.ascontiguousarray(rows).data)
    for array in arrays:
        if array is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(np.asarray(array))
        digest.update(repr((array.shape, str(array.dtype))).encode())
        if array.dtype.kind == "O":
            digest.update(repr(array.tolist()).encode())
        else:
            digest.update(array.data)
    return digest.hexdigest()


def weights_digest(module: torch.nn.Module) -> str:
    """A digest of a module's weights (a warm start's starting point)."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def fit_identity(estimator, data: str, start: str | None) -> dict:
    """What makes two fits the same fit: class, parameters, data and starting weights.

    ``batch_size="auto"`` counts as the batch it takes, which depends on the device (a GPU may
    take a larger one, and more epochs): a checkpoint of a GPU's fit does not resume on a CPU.
    """
    params = estimator.get_params(deep=False)
    if params.get("batch_size") == "auto":
        params["batch_size"] = estimator._training_batch_size()
    return {
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "params": {
            name: _encode_identity(value, name)
            for name, value in sorted(params.items())
            if name not in _NOT_IDENTITY
        },
        "data": data,
        "start": start,
    }


def _check_version(state: dict, source: str) -> None:
    """Refuse a checkpoint of a format version this skrnn does not read, saying whether a
    newer skrnn wrote it."""
    version = state.get("format_version")
    if version == FORMAT_VERSION and type(version) is int:
        return
    if type(version) is int and version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source} was written by a newer skrnn ({state.get('skrnn_version')!r:.20}), in "
            f"checkpoint format version {version}; this skrnn {__version__} reads version "
            f"{FORMAT_VERSION}. Resume the fit with that skrnn (upgrade this one), or delete "
            "the checkpoint to start the fit afresh."
        )
    raise ModelFileError(
        f"{source} is damaged: it has the checkpoint format version {version!r:.20}, which no "
        "skrnn writes. Delete it to start the fit afresh."
    )


def _differences(saved: dict, current: dict) -> str:
    """In words, how the fit that wrote a checkpoint differs from this one."""
    if saved.get("estimator") != current["estimator"]:
        return f"it belongs to a {saved.get('estimator')!r:.80}"
    saved_params = saved.get("params") if isinstance(saved.get("params"), dict) else {}
    changed = sorted(
        name
        for name in set(saved_params) | set(current["params"])
        if saved_params.get(name) != current["params"].get(name)
    )
    parts = []
    if changed:
        parts.append(f"the parameters {', '.join(changed[:8])} differ")
    if saved.get("data") != current["data"]:
        parts.append("the training data (or targets or sample weights) differ")
    if saved.get("start") != current["start"]:
        parts.append("the weights it started from differ (a warm start)")
    return " and ".join(parts) or "its identity differs"


def _prefixed(tensors: dict, prefix: str) -> dict:
    """The tensors whose names start with ``prefix``, under their names without it."""
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _tensor_state(net, callbacks: dict) -> tuple[dict, dict]:
    """Everything a resumed fit needs, split into tensors and JSON data."""
    tensors = {f"module.{k}": v for k, v in net.module_.state_dict().items()}
    optimizer = net.optimizer_.state_dict()
    steps = {}
    for index, entries in optimizer["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                steps.setdefault(str(index), {})[key] = value
    json_state = {
        "optimizer_groups": optimizer["param_groups"],
        "optimizer_values": steps,
        "rng": {},
    }
    random = current_random()  # the fit's own generators (torch's, outside an estimator)
    tensors.update(torch_state(net.device) if random is None else random.state(net.device))
    scaler = getattr(net, "scaler_", None)
    if scaler is not None:  # float16's loss scale and its growth counter
        json_state["grad_scaler"] = scaler.state_dict()
    for name, kind in _STATEFUL_CALLBACKS.items():
        if isinstance(callbacks.get(name), kind):  # written after an epoch: they have begun
            json_state[name] = callbacks[name].checkpoint_state()
    stopping = callbacks.get("early_stopping")
    if isinstance(stopping, EarlyStopping) and hasattr(stopping, "misses_"):
        json_state["early_stopping"] = {
            "misses": stopping.misses_,
            "threshold": float(stopping.dynamic_threshold_),
            "best_epoch": stopping.best_epoch_,
            "has_best": stopping.best_model_weights_ is not None,
        }
        for key, value in (stopping.best_model_weights_ or {}).items():
            tensors[f"best.{key}"] = value
    return tensors, json_state


class Checkpoint(Callback):
    """Write the fit's state after every finished epoch, and restore it on a resumed fit.

    The estimator adds it as the last callback (after every callback that records or changes
    state at the end of an epoch) when its ``checkpoint`` parameter is a path.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    identity : dict or None
        :func:`fit_identity` of this fit (None where it does not read the file).
    writes : bool, default=True
        Whether this process writes and removes the file: in a distributed fit only the first
        process does (every process resumes from what it read).
    """

    def __init__(self, path, identity, writes=True):
        self.path = path
        self.identity = identity
        self.writes = writes

    # ------------------------------------------------------------ reading
    def read(self) -> dict | None:
        """The saved state of this fit, or None when there is no checkpoint at the path.

        Raises
        ------
        ValueError
            If the file is a checkpoint of another fit (the message says what differs).
        skrnn.exceptions.ModelFileError
            If the file is not a checkpoint, is damaged, or was written by a newer skrnn.
        """
        path = Path(os.fspath(self.path))
        if not path.exists():
            if not path.parent.is_dir():
                raise ValueError(
                    f"checkpoint={os.fspath(self.path)!r} is in a folder that does not exist; "
                    "create the folder or pass a path in an existing one."
                )
            return None
        return self.parse(path)

    def parse(self, file) -> dict:
        """The saved state of this fit in ``file`` (the checkpoint's path, or a binary file
        object holding its bytes, as the processes of a distributed fit get them), checked as
        :meth:`read` says."""
        source = f"The checkpoint {os.fspath(self.path)!r}"

        def not_a_checkpoint(problem):
            return ModelFileError(
                f"{source} is a file that is not a skrnn checkpoint: {problem} fit does not "
                "overwrite it. Pass a checkpoint path that holds no file yet, or one that an "
                "earlier fit wrote."
            )

        def damaged(problem):
            return ModelFileError(
                f"{source} is damaged: {problem} Delete it to start the fit afresh."
            )

        # Read within the limits of model files (skrnn._limits), whatever the file declares.
        with open_archive(file, not_a_checkpoint, _WRITTEN_BY) as archive:
            info = check_entries(archive, _ENTRY_LIMITS, not_a_checkpoint, only=STATE_ENTRY)
            data = read_entry(archive, info[STATE_ENTRY], damaged, limit=MAX_JSON_BYTES)
            state = json_object(data, damaged, STATE_ENTRY)
            if state.get("format") != FORMAT:
                raise not_a_checkpoint(f"its {STATE_ENTRY} does not name the checkpoint format.")
            _check_version(state, source)
            infos = check_entries(archive, _ENTRY_LIMITS, damaged)
            safetensors_layout(archive, infos[TENSORS_ENTRY], damaged, "its tensors")
            tensor_bytes = read_whole_entry(archive, infos[TENSORS_ENTRY], damaged)
        if state.get("sha256") != hashlib.sha256(tensor_bytes).hexdigest():
            raise damaged("its tensors fail their checksum.")
        tensors = load_tensors(tensor_bytes, damaged, "its tensors")
        try:
            decoded = decode(state["state"], "the checkpoint's state")
            epochs = int(state["epochs"])
            if not isinstance(decoded, dict) or not _SAVED_STATE <= decoded.keys():
                raise ValueError(f"it should be a mapping of {sorted(_SAVED_STATE)}")
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
            raise damaged(f"its state cannot be read ({type(exc).__name__}: {exc}).") from None
        if state.get("identity") != self.identity:
            differences = _differences(state.get("identity") or {}, self.identity)
            raise ValueError(
                f"{source} was written by another fit: {differences}. "
                "Delete it to start this fit afresh, or pass another checkpoint path."
            )
        return {"tensors": tensors, "epochs": epochs, **decoded}

    def resume(self, net, saved: dict | None) -> int:
        """Restore ``saved`` (what :meth:`read` returned) into ``net``; the epochs this
        training call had done.

        The weights and the history are restored now; the optimizer, the schedule, early
        stopping and the random generators when training begins (:meth:`on_train_begin`),
        after the other callbacks have set themselves up.
        """
        self.pending_ = saved
        if saved is None:
            return 0
        tensors = saved["tensors"]
        module_state = _prefixed(tensors, "module.")
        try:
            net.module_.load_state_dict(module_state, strict=True)
        except RuntimeError as exc:
            raise ModelFileError(
                f"The checkpoint {os.fspath(self.path)!r} does not fit this model ({exc}). "
                "Delete it to start the fit afresh."
            ) from None
        net.history_ = History([{**epoch, "batches": []} for epoch in saved["history"]])
        return saved["epochs"]

    def on_train_begin(self, net, **kwargs):
        saved, self.pending_ = getattr(self, "pending_", None), None
        # The epochs before this training call (a warm start's earlier fits) are not its own.
        self.first_epoch_ = len(net.history) - (saved["epochs"] if saved else 0)
        if saved is None:
            return
        tensors, callbacks = saved["tensors"], dict(net.callbacks_)
        optimizer_state = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                index, name = key[len("optimizer.") :].split(".", 1)
                optimizer_state.setdefault(int(index), {})[name] = value
        for index, values in saved["optimizer_values"].items():
            optimizer_state.setdefault(int(index), {}).update(values)
        net.optimizer_.load_state_dict(
            {"state": optimizer_state, "param_groups": saved["optimizer_groups"]}
        )
        if "grad_scaler" in saved and getattr(net, "scaler_", None) is not None:
            net.scaler_.load_state_dict(saved["grad_scaler"])
        for name, kind in _STATEFUL_CALLBACKS.items():
            callback = callbacks.get(name)
            if name in saved and isinstance(callback, kind):
                callback.restore_checkpoint_state(saved[name])
        stopping = callbacks.get("early_stopping")
        if "early_stopping" in saved and isinstance(stopping, EarlyStopping):
            record = saved["early_stopping"]
            stopping.misses_ = record["misses"]
            stopping.dynamic_threshold_ = record["threshold"]
            stopping.best_epoch_ = record["best_epoch"]
            stopping.best_model_weights_ = (
                _prefixed(tensors, "best.") if record["has_best"] else None
            )
        random = current_random()
        if random is None:
            restore_torch_state(tensors, net.device)
        else:
            random.restore(tensors, net.device)

    # ------------------------------------------------------------ writing
    def on_epoch_end(self, net, **kwargs):
        import safetensors.torch

        if not self.writes:
            return
        tensors, state = _tensor_state(net, dict(net.callbacks_))
        state["history"] = [
            {key: value for key, value in epoch.items() if key != "batches"}
            for epoch in net.history
        ]
        # Clones on the CPU: safetensors wants contiguous tensors that share no memory.
        tensor_bytes = safetensors.torch.save(
            {key: value.detach().to("cpu").contiguous().clone() for key, value in tensors.items()}
        )
        record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "skrnn_version": __version__,
            "identity": self.identity,
            "epochs": len(net.history) - self.first_epoch_,
            "sha256": hashlib.sha256(tensor_bytes).hexdigest(),
            "state": encode(state, "the checkpoint's state"),
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(STATE_ENTRY, dumps(record), zipfile.ZIP_DEFLATED)
            archive.writestr(TENSORS_ENTRY, tensor_bytes, zipfile.ZIP_STORED)
        write_atomically(self.path, buffer.getvalue())

    def remove(self) -> None:
        """Delete the checkpoint once the fit has finished."""
        if not self.writes:
            return
        Path(os.fspath(self.path)).unlink(missing_ok=True)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("pending_", None)  # a restored state has no place in a pickle
        return state
