"""Training one model in several processes: data parallelism on :mod:`torch.distributed`.

The same script, launched by ``torchrun``, fits one model in every process it starts::

    torchrun --nproc-per-node 2 train.py            # two processes on this machine
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-endpoint HOST:29400 train.py

Every estimator's ``distributed="auto"`` joins the process group that ``torchrun`` sets up
(gloo on CPUs, NCCL on GPUs; or any group the script initialised itself with
:func:`torch.distributed.init_process_group`) and trains with
:class:`~torch.nn.parallel.DistributedDataParallel`:

* every process holds the same data (an array, a memory map or a folder's cache) but reads only
  its share of each batch: ``batch_size`` is the global batch, split between the processes, so
  a fit in N processes takes the gradient steps a fit in one would take;
* gradients are averaged over the processes after every backward pass; the training loss of
  each epoch is averaged too, and every process scores the whole validation split, so early
  stopping and ``max_epochs="auto"`` decide the same epoch everywhere;
* each process draws its own dropout and augmentation; the order of the samples is one draw
  shared by all;
* only the first process (rank 0) reads and writes the checkpoint, and ``save`` writes model
  files on rank 0 only; the fitted estimator is the same, bit for bit, in every process;
* a process that dies or fails ends the fit in the others with a
  :class:`~skrnn.exceptions.DistributedError`, never a hang.

Prediction is not distributed: every process predicts what it is given.

The processes of a group trust each other, as :mod:`torch.distributed` assumes: anyone who can
reach the rendezvous endpoint can join the group and send the others weights and gradients.
Run them on a private network. What skrnn itself sends between them is tensors and bytes (a
seed, digests of the data, a checkpoint file's bytes), never pickles, and every message's
length is bounded before anything is allocated for it.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import inspect
import io
import multiprocessing
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback

from . import exceptions
from ._checkpoint import Checkpoint
from ._data import read_rows
from ._json import dumps, loads
from ._random import current as current_random
from .exceptions import DistributedError

__all__ = ["finish", "init", "launched_by_torchrun", "rank", "world_size"]

# How long a collective waits for the other processes before it fails, for groups skrnn
# initialises: long enough for a slow epoch of validation on rank 0, short of a silent hang.
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)

# What the error of a collective whose peer died or stopped answering looks like: gloo raises a
# plain RuntimeError ("Connection reset by peer", "Connection closed by peer"), NCCL and newer
# torch builds their DistError subclasses.
_LOST_PEER = re.compile(
    r"gloo|nccl|connection (reset|closed|refused)|broken pipe|timed out|timeout|socket",
    re.IGNORECASE,
)
# The most bytes a process accepts from another in one message (a description of its data, an
# error's message), and in a checkpoint: four times the largest weights a model file may hold,
# 64 GiB (the weights, Adam's two moments and early stopping's best weights).
_MAX_MESSAGE_BYTES = 1 << 20
_MAX_CHECKPOINT_BYTES = 256 << 30
# The images whose pixels the processes compare before a fit: evenly spaced over the data, the
# first and the last included (a few reads of a memory map).
_COMPARED_IMAGES = 256
# The errors of rank 0 that :meth:`Group.from_main` raises as themselves on the other ranks;
# others become a RuntimeError that names them.
_ERRORS = {
    error.__name__: error
    for error in (
        ValueError,
        TypeError,
        KeyError,
        OSError,
        RuntimeError,
        MemoryError,
        FloatingPointError,
        *(getattr(exceptions, name) for name in exceptions.__all__),
    )
    if issubclass(error, Exception) and not issubclass(error, Warning)
}


def launched_by_torchrun() -> bool:
    """Whether this process is one that ``torchrun`` started for a group of several.

    ``torchrun`` (torch's elastic launcher) sets ``TORCHELASTIC_RUN_ID``, ``RANK`` and
    ``WORLD_SIZE`` in each process it starts. The child processes those start in turn (the
    workers of a parallel search) inherit that environment but are not members of the group;
    they are told apart as processes started by :mod:`multiprocessing`.

    Returns
    -------
    launched : bool
        True in a process that ``torchrun`` started, one of several.
    """
    env = os.environ
    try:
        size = int(env.get("WORLD_SIZE", "1"))
    except ValueError:
        return False
    return (
        "TORCHELASTIC_RUN_ID" in env
        and "RANK" in env
        and size > 1
        and multiprocessing.parent_process() is None
    )


def _available() -> bool:
    return torch.distributed.is_available()


def _joined() -> bool:
    return _available() and torch.distributed.is_initialized()


def init(backend: str | None = None, timeout: datetime.timedelta | None = None) -> bool:
    """Join the process group that ``torchrun`` set up for this process, if there is one.

    The estimators call it themselves (``distributed="auto"``); call it first to use the group
    for something of your own, such as printing on rank 0 only.

    Parameters
    ----------
    backend : str or None, default=None
        None picks gloo for CPU tensors and NCCL for CUDA tensors where CUDA is present
        (``"cpu:gloo,cuda:nccl"``), gloo alone otherwise.
    timeout : datetime.timedelta or None, default=None
        How long a collective waits for the other processes; None waits 30 minutes.

    Returns
    -------
    joined : bool
        Whether this process now belongs to a group of more than one process: False when it
        was not started by ``torchrun`` for several processes.

    Examples
    --------
    >>> from skrnn import distributed
    >>> distributed.init()  # a plain python process: nothing to join
    False
    """
    if _joined():
        return torch.distributed.get_world_size() > 1
    if not launched_by_torchrun():
        return False
    if not _available():
        raise DistributedError(
            "This process was started by torchrun for several processes, but this torch build "
            "has no torch.distributed. Install a torch build with distributed support."
        )
    if backend is None:
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    torch.distributed.init_process_group(backend=backend, timeout=timeout or DEFAULT_TIMEOUT)
    return torch.distributed.get_world_size() > 1


def finish() -> None:
    """Wait for every process of the group, then leave it: the clean end of a distributed
    script (a process that exits while another still talks to it may be aborted). Nothing
    outside a group.

    Examples
    --------
    >>> from skrnn import distributed
    >>> distributed.finish()  # a plain python process: nothing to wait for
    """
    if not _joined():
        return
    with contextlib.suppress(Exception):
        torch.distributed.barrier()
    with contextlib.suppress(Exception):
        torch.distributed.destroy_process_group()


def rank() -> int:
    """This process's rank in the process group.

    Returns
    -------
    rank : int
        From 0 to ``world_size() - 1``; 0 outside a group (and in its first process).
    """
    return torch.distributed.get_rank() if _joined() else 0


def world_size() -> int:
    """The number of processes in the process group.

    Returns
    -------
    size : int
        The processes of the group; 1 outside one.
    """
    return torch.distributed.get_world_size() if _joined() else 1


@dataclass
class Group:
    """The processes that train one model together, and the collectives the fit needs.

    Every collective takes ``during``, what the fit was doing (``"at the end of epoch 3"``),
    which the :class:`~skrnn.exceptions.DistributedError` of a lost peer names. They send
    tensors and bytes only: bytes go as a uint8 tensor, after their length, which every process
    checks against a bound before it allocates anything for them.
    """

    rank: int
    size: int
    device: torch.device  # where the collectives' tensors live (the CPU for gloo)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values, during: str = "") -> np.ndarray:
        """The element-wise sum over the processes of a few float64 values."""
        tensor = torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device)
        with lost_peers(self, during):
            torch.distributed.all_reduce(tensor)
        return tensor.cpu().numpy()

    def int_from_main(self, value: int, during: str = "") -> int:
        """Rank 0's ``value`` (an int64) on every rank."""
        tensor = torch.tensor([value], dtype=torch.int64, device=self.device)
        with lost_peers(self, during):
            torch.distributed.broadcast(tensor, src=0)
        return int(tensor.item())

    def gather(self, data: bytes, limit: int = _MAX_MESSAGE_BYTES, during: str = "") -> list:
        """Every process's ``data`` (bytes of at most ``limit``), in rank order."""
        with lost_peers(self, during):
            length = torch.tensor([len(data)], dtype=torch.int64, device=self.device)
            lengths = [torch.empty_like(length) for _ in range(self.size)]
            torch.distributed.all_gather(lengths, length)
            lengths = [int(n.item()) for n in lengths]
            for sender, n in enumerate(lengths):  # every rank refuses alike: no one waits
                self._check_length(n, limit, sender)
            mine = torch.zeros(max(*lengths, 1), dtype=torch.uint8, device=self.device)
            mine[: len(data)] = _as_tensor(data, self.device)
            everyone = [torch.empty_like(mine) for _ in range(self.size)]
            torch.distributed.all_gather(everyone, mine)
        return [_as_bytes(t[:n]) for t, n in zip(everyone, lengths, strict=True)]

    def from_main(
        self, compute: Callable[[], bytes], limit: int = _MAX_MESSAGE_BYTES, during: str = ""
    ) -> bytes:
        """The bytes that ``compute()`` returns on rank 0 (at most ``limit``), on every rank;
        an error it raises on rank 0 is raised on every rank. ``compute`` runs on rank 0 only.

        An error travels as its class's name and its message: the other ranks raise the same
        class where it is one of Python's or skrnn's, a RuntimeError naming it otherwise.
        """
        failure, data, header = None, b"", [0, 0]
        if self.main:
            try:
                data = bytes(compute())
            except Exception as exc:  # raised everywhere below, not only here
                failure = exc
                text = {"type": type(exc).__name__, "message": str(exc)[: _MAX_MESSAGE_BYTES // 8]}
                data = dumps(text)
            header = [int(failure is not None), len(data)]
        header = torch.tensor(header, dtype=torch.int64, device=self.device)
        with lost_peers(self, during):
            torch.distributed.broadcast(header, src=0)
            failed, length = (int(n) for n in header.tolist())
            self._check_length(length, _MAX_MESSAGE_BYTES if failed else limit, 0)
            payload = (
                _as_tensor(data, self.device)
                if self.main
                else torch.empty(length, dtype=torch.uint8, device=self.device)
            )
            if length:
                torch.distributed.broadcast(payload, src=0)
        if failure is not None:
            raise failure
        if failed:
            text = loads(_as_bytes(payload))
            error = _ERRORS.get(text["type"])
            if error is None:
                raise RuntimeError(f"Process 0 failed with {text['type']}: {text['message']}")
            raise error(text["message"])
        return _as_bytes(payload)

    def copy_from_main(self, module: torch.nn.Module, during: str = "") -> None:
        """Give every rank rank 0's weights and buffers, bit for bit."""
        with lost_peers(self, during), torch.no_grad():
            for tensor in module.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)

    def shut_down(self) -> None:
        """Leave the group: the other processes' next collective fails at once, where it would
        otherwise wait for this process until the timeout."""
        if _joined():
            with contextlib.suppress(Exception):
                torch.distributed.destroy_process_group()

    def _check_length(self, length: int, limit: int, sender: int) -> None:
        if not 0 <= length <= limit:
            raise DistributedError(
                f"Process {sender} of {self.size} announced a message of {length} bytes, where "
                f"this fit accepts at most {limit}: the processes do not all run the same "
                "program (the same versions of skrnn and torch), or something that is not one "
                "of them joined the group. Launch every process from the same installation, on "
                "a network that only they can reach."
            )


def _as_tensor(data: bytes, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(bytearray(data), dtype=np.uint8)).to(device)


def _as_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.cpu().numpy().tobytes()


def process_group(setting, device: torch.device) -> Group | None:
    """The group a fit with ``distributed=setting`` trains in, or None for one process.

    ``"auto"`` uses an initialised group of several processes, or joins the one ``torchrun``
    set up; True insists on one; False trains alone.
    """
    if setting is False:
        return None
    if not init():  # no group of several processes
        if setting is True:
            raise ValueError(
                "distributed=True trains in several processes, but this process belongs to no "
                "process group: launch the script with torchrun (torchrun --nproc-per-node N "
                "script.py, or python -m torch.distributed.run), or initialise "
                "torch.distributed first. distributed='auto' trains alone outside torchrun."
            )
        return None
    backend = str(torch.distributed.get_backend()).lower()
    cpu_collectives = "gloo" in backend or "mpi" in backend or device.type == "cpu"
    return Group(
        rank=torch.distributed.get_rank(),
        size=torch.distributed.get_world_size(),
        device=torch.device("cpu") if cpu_collectives else device,
    )


def local_device(device: torch.device) -> torch.device:
    """The GPU of this process under torchrun: ``cuda:LOCAL_RANK`` for a device without an
    index (each process on a machine takes its own GPU); other devices as they are."""
    if device.type != "cuda" or device.index is not None:
        return device
    count = torch.cuda.device_count()
    local = int(os.environ.get("LOCAL_RANK", rank()))
    return torch.device("cuda", local % max(count, 1))


def is_lost_peer(error: BaseException) -> bool:
    """Whether ``error`` is a collective's failure because another process died or hung."""
    dist_error = getattr(torch.distributed, "DistError", ())
    if dist_error and isinstance(error, dist_error):
        return True
    return isinstance(error, RuntimeError) and bool(_LOST_PEER.search(str(error)))


@contextlib.contextmanager
def lost_peers(group: Group, during: str = "") -> Iterator[None]:
    """Turn the failure of a collective whose peer is gone into a DistributedError."""
    try:
        yield
    except DistributedError:
        raise
    except Exception as exc:
        if not is_lost_peer(exc):
            raise
        where = f" {during}" if during else ""
        raise DistributedError(
            f"Process {group.rank} of {group.size} lost contact with another process of the "
            f"group{where}: it died, failed or stopped answering (its own output says why). "
            f"The fit stops here in every process; with a checkpoint, running the same "
            f"command again resumes after the last finished epoch. ({type(exc).__name__}: "
            f"{str(exc).strip()[:300]})"
        ) from exc


def _digest(array) -> str:
    """A digest of an array's shape, dtype and values (an object array's by their repr)."""
    digest = hashlib.sha256()
    if array is None:
        digest.update(b"none")
        return digest.hexdigest()
    array = np.ascontiguousarray(np.asarray(array))
    digest.update(repr((array.shape, str(array.dtype))).encode())
    digest.update(repr(array.tolist()).encode() if array.dtype.kind == "O" else array.data)
    return digest.hexdigest()


def _description(estimator, images, targets) -> dict:
    """What two processes of one fit must agree on: the estimator, the images' shape and dtype,
    the targets, and the pixels of a sample of the images."""
    n = len(images)
    picked = np.unique(np.linspace(0, n - 1, min(n, _COMPARED_IMAGES)).round().astype(np.int64))
    return {
        "estimator": type(estimator).__name__,
        "shape": [int(size) for size in images.shape],
        "dtype": str(images.dtype),
        "targets": _digest(targets),
        "pixels": _digest(read_rows(images, picked)),
    }


def same_data_everywhere(group: Group, estimator, images, targets) -> None:
    """Refuse to fit when the processes were given different data: each reads its own share
    of the same samples, so they must agree on what the samples are.

    The processes compare the estimator, the images' shape and dtype, a digest of the targets
    and one of the pixels of up to 256 images spread over the data. Every process sees every
    other's description, so all of them refuse together; they leave the group together first
    (:func:`finish`), as a process that exits while another still talks to it may be aborted
    instead of exiting with the error.
    """
    mine = _description(estimator, images, targets)
    everyone = group.gather(dumps(mine), during="while comparing the processes' data")
    problem = None
    for other_rank, message in enumerate(everyone):
        theirs = loads(message)
        if theirs == mine:
            continue
        same_kind = all(theirs[name] == mine[name] for name in ("estimator", "shape", "dtype"))
        other = [
            label
            for name, label in (("targets", "other targets"), ("pixels", "other pixel values"))
            if theirs[name] != mine[name]
        ]
        problem = (
            f"The processes of a distributed fit must all fit the same data; process "
            f"{group.rank} has {mine['estimator']} on images of shape {tuple(mine['shape'])} "
            f"({mine['dtype']}), process {other_rank} has {theirs['estimator']} on "
            f"{tuple(theirs['shape'])} ({theirs['dtype']})"
            + (f", with {' and '.join(other)}" if same_kind else "")
            + ". Load the same data in every process; each reads only its share."
        )
        break
    if problem is None and len(images) < group.size:
        problem = (
            f"A distributed fit in {group.size} processes needs at least {group.size} samples, "
            f"got {len(images)}."
        )
    if problem is not None:
        finish()
        raise ValueError(problem)


def checkpoint_from_main(group: Group, checkpoint: Checkpoint) -> dict | None:
    """What ``checkpoint.read()`` gives on rank 0, in every process.

    Rank 0 reads the file's bytes once and checks them as this fit's checkpoint (an error there
    is raised in every process), then sends those bytes and the fit's identity (which only
    rank 0 computes, as JSON); every process takes its state from the same bytes, so a file
    replaced meanwhile cannot give the processes different states.
    """
    saved = None

    def read() -> bytes:
        nonlocal saved
        path = Path(os.fspath(checkpoint.path))
        if not path.exists():
            checkpoint.read()  # None, or the error that its folder does not exist
            return b""
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > _MAX_CHECKPOINT_BYTES:
                raise exceptions.ModelFileError(
                    f"The checkpoint {os.fspath(checkpoint.path)!r} holds {size:,} bytes, more "
                    f"than a distributed fit sends ({_MAX_CHECKPOINT_BYTES:,}). Delete it to "
                    "start the fit afresh."
                )
            data = file.read(size)
        saved = checkpoint.parse(io.BytesIO(data))
        return data

    during = "while reading the checkpoint"
    data = group.from_main(read, _MAX_CHECKPOINT_BYTES, during)
    if not data:
        return None
    identity = group.from_main(lambda: dumps(checkpoint.identity), during=during)
    if group.main:
        return saved
    return Checkpoint(checkpoint.path, loads(identity), writes=False).parse(io.BytesIO(data))


def _mixed(*numbers: int) -> int:
    """A 63-bit seed from a few integers (numpy's SeedSequence mixes them)."""
    state = np.random.SeedSequence([int(n) & 0xFFFFFFFFFFFF for n in numbers]).generate_state(2)
    return int(state[0]) << 31 ^ int(state[1])


@dataclass
class Shard:
    """Which samples of each epoch's batches one process reads.

    Every process draws the same order of the samples (from the fit's seed and the epoch);
    each global batch of ``batch_size`` samples is split in ``size`` nearly equal parts and
    process ``rank`` takes part ``rank``. A last batch with fewer samples than processes is
    left out of the epoch (at most ``size - 1`` samples, others every epoch).
    """

    rank: int
    size: int
    seed: int
    epoch: int = field(default=0)

    def order(self, n: int) -> np.ndarray:
        generator = torch.Generator().manual_seed(_mixed(self.seed, self.epoch) % (1 << 63))
        return torch.randperm(n, generator=generator).numpy()

    def keeps(self, batch_size: int) -> bool:
        """Whether the processes read a batch of ``batch_size`` samples: each needs one."""
        return batch_size >= self.size

    def parts(self, batches: list) -> list:
        return [
            np.array_split(batch, self.size)[self.rank]
            for batch in batches
            if self.keeps(len(batch))
        ]


class SyncAcrossRanks(Callback):
    """Keep the processes of a distributed fit deciding alike, epoch by epoch.

    At the start of an epoch it tells the loader's :class:`Shard` the epoch, and seeds this
    process's dropout and augmentation for it (from the fit's seed, the epoch and the rank:
    other draws in each process, the same on a resumed fit). At its end it replaces the
    process's training loss by the mean over all samples of all processes, before any
    callback that decides on it (convergence, checkpoints) sees it.
    """

    def __init__(self, group: Group, shard: Shard):
        self.group = group
        self.shard = shard

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1  # skorch has opened this epoch's row
        self.shard.epoch = epoch
        seed = _mixed(self.shard.seed, epoch, self.group.rank + 1) % (1 << 63)
        random = current_random()  # the fit's own generators; torch's outside an estimator
        if random is None:
            torch.manual_seed(seed)
        else:
            random.reseed(seed)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        batches = [b for b in row["batches"] if "train_loss" in b]
        total = sum(b["train_loss"] * b["train_batch_size"] for b in batches)
        count = sum(b["train_batch_size"] for b in batches)
        during = f"at the end of epoch {len(net.history)}"
        total, count = self.group.sum([total, count], during)
        if "train_loss" in row and count > 0:
            row["train_loss"] = float(total / count)
            earlier = [r["train_loss"] for r in net.history[:-1] if "train_loss" in r]
            row["train_loss_best"] = not earlier or row["train_loss"] < min(earlier)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["group"] = None  # a pickled net trains alone
        return state


@contextlib.contextmanager
def data_parallel(net, group: Group, interrupted) -> Iterator[None]:
    """Train ``net`` under DistributedDataParallel for the body; when it finishes every rank
    ends with rank 0's weights. A failure, or an interruption (``interrupted()`` true after
    the body: a Ctrl-C reaches the processes at different batches), leaves the group, so that
    the other processes stop too rather than wait; a lost peer becomes a DistributedError."""
    from torch.nn.parallel import DistributedDataParallel

    device = torch.device(net.device)
    with lost_peers(group, "at the start of training"):
        # The buffers (input statistics) never change in training: no syncing them at every
        # forward pass. (Newer torch names the switch forward_sync_buffers.)
        parameters = inspect.signature(DistributedDataParallel).parameters
        buffers = "forward_sync_buffers" if "forward_sync_buffers" in parameters else None
        # (Past skorch's __setattr__, which allows torch modules only in initialize_module.)
        net.__dict__["ddp_module_"] = DistributedDataParallel(
            net.module_,
            device_ids=[device.index] if device.type == "cuda" else None,
            **{buffers or "broadcast_buffers": False},
            gradient_as_bucket_view=True,  # the gradients live in the buckets: no copies
        )
    try:
        with lost_peers(group, "during training"):
            yield
    except BaseException:
        group.shut_down()
        raise
    finally:
        net.__dict__.pop("ddp_module_", None)
    if interrupted():
        group.shut_down()
        return
    group.copy_from_main(net.module_, "at the end of training")
