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
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import inspect
import multiprocessing
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from skorch.callbacks import Callback

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
    """The processes that train one model together, and the collectives the fit needs."""

    rank: int
    size: int
    device: torch.device  # where the collectives' tensors live (the CPU for gloo)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values) -> np.ndarray:
        """The element-wise sum over the processes of a few float64 values."""
        tensor = torch.as_tensor(np.asarray(values, dtype=np.float64), device=self.device)
        with lost_peers(self):
            torch.distributed.all_reduce(tensor)
        return tensor.cpu().numpy()

    def gather(self, value) -> list:
        """Every process's ``value`` (any picklable object), in rank order."""
        values = [None] * self.size
        with lost_peers(self):
            torch.distributed.all_gather_object(values, value)
        return values

    def from_main(self, compute):
        """What ``compute()`` returns on rank 0, on every rank; an error it raises on rank 0
        is raised on every rank. ``compute`` runs on rank 0 only."""
        box = [None]
        if self.main:
            try:
                box[0] = ("value", compute())
            except Exception as exc:  # raised everywhere below, not only here
                box[0] = ("error", exc)
        with lost_peers(self):
            torch.distributed.broadcast_object_list(box, src=0, device=self.device)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    def copy_from_main(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's weights and buffers, bit for bit."""
        with lost_peers(self), torch.no_grad():
            for tensor in module.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)

    def shut_down(self) -> None:
        """Leave the group: the other processes' next collective fails at once, where it would
        otherwise wait for this process until the timeout."""
        if _joined():
            with contextlib.suppress(Exception):
                torch.distributed.destroy_process_group()


def process_group(setting, device: torch.device) -> Group | None:
    """The group a fit with ``distributed=setting`` trains in, or None for one process.

    ``"auto"`` uses an initialised group of several processes, or joins the one ``torchrun``
    set up; True insists on one; False trains alone.
    """
    if setting is False:
        return None
    if not init() and setting is True:
        raise ValueError(
            "distributed=True trains in several processes, but this process belongs to no "
            "process group: launch the script with torchrun (torchrun --nproc-per-node N "
            "script.py, or python -m torch.distributed.run), or initialise "
            "torch.distributed first. distributed='auto' trains alone outside torchrun."
        )
    if not _joined() or torch.distributed.get_world_size() == 1:
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


def same_data_everywhere(group: Group, estimator, images, targets) -> None:
    """Refuse to fit when the processes were given different data: each reads its own share
    of the same samples, so they must agree on what the samples are.

    Every process sees every other's data, so all of them refuse together; they leave the
    group together first (:func:`finish`), as a process that exits while another still talks
    to it may be aborted instead of exiting with the error.
    """
    digest = hashlib.sha256()
    if targets is not None:
        digest.update(np.ascontiguousarray(np.asarray(targets)).tobytes())
    mine = (type(estimator).__name__, tuple(images.shape), str(images.dtype), digest.hexdigest())
    everyone = group.gather(mine)
    problem = None
    for other_rank, theirs in enumerate(everyone):
        if theirs != mine:
            problem = (
                f"The processes of a distributed fit must all fit the same data; process "
                f"{group.rank} has {mine[0]} on images of shape {mine[1]} ({mine[2]}), process "
                f"{other_rank} has {theirs[0]} on {theirs[1]} ({theirs[2]})"
                + (", with other targets" if theirs[:3] == mine[:3] else "")
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
        with lost_peers(self.group, f"at the end of epoch {len(net.history)}"):
            total, count = self.group.sum([total, count])
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
    with lost_peers(group, "at the end of training"):
        group.copy_from_main(net.module_)
