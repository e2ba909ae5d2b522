"""Small helpers shared across skrnn. This module imports nothing else of the package."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import joblib
import numpy as np
import torch


def resolve_device(device: str | torch.device) -> torch.device:
    """Turn a ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` picks CUDA when it is present and the CPU otherwise; with several GPUs, the
    workers of a parallel search spread over them (:func:`_auto_cuda_device`).

    Raises
    ------
    ValueError
        If the device string is not one torch understands, or names CUDA on a machine that has
        no CUDA device.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif device == "auto":
        resolved = _auto_cuda_device() if torch.cuda.is_available() else torch.device("cpu")
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(
                f"device={device!r} is not a device torch understands; "
                "expected 'auto', 'cpu', 'cuda' or 'cuda:N'."
            ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for CUDA but this machine has no CUDA device; "
            "use device='auto' or device='cpu'."
        )
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is not supported; expected 'auto', 'cpu' or 'cuda'.")
    return resolved


# What torch's CPU allocator and CUDA say when an allocation fails.
_OUT_OF_MEMORY_MESSAGES = ("out of memory", "can't allocate memory", "not enough memory")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure: CUDA's, the CPU allocator's, or Python's."""
    if isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and any(m in message for m in _OUT_OF_MEMORY_MESSAGES)


def device_memory_bytes(device: torch.device) -> int | None:
    """The memory of ``device`` in bytes: a GPU's own, or the host's physical memory (also
    under a control group's smaller limit); None where it cannot be told."""
    device = torch.device(device)
    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        if device.type != "cpu":
            return None
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file) as limit:
                physical = min(physical, int(limit.read().strip()))
        except (OSError, ValueError):  # no such file, or "max"
            continue
    return int(physical)


def format_bytes(count: int) -> str:
    """``count`` bytes for a message: "512 bytes", "1.5 MiB", "16.0 TiB"."""
    if count < 1024:
        return f"{count} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        count /= 1024
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}"


def release_cached_memory(device: torch.device) -> None:
    """Return the memory torch's CUDA allocator caches, after a failed allocation."""
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def _auto_cuda_device() -> torch.device:
    """The GPU of ``device="auto"``: the current one, except in the worker processes of a
    parallel search on a machine with several GPUs, which spread over them.

    A worker is told apart by its process name: joblib's (loky) and multiprocessing's workers
    are numbered (``LokyProcess-3``, ``ForkPoolWorker-2``), and worker ``k`` takes GPU
    ``(k - 1) % n_gpus``; other child processes (a Dask worker under its nanny) go by their
    process id. Nothing is asked of the GPUs themselves, so no worker opens a CUDA context on
    a GPU it will not use.
    """
    count = torch.cuda.device_count()
    process = multiprocessing.current_process()
    if count <= 1 or multiprocessing.parent_process() is None:
        return torch.device("cuda")
    number = re.search(r"(\d+)$", process.name)
    worker = int(number.group(1)) - 1 if number else os.getpid()
    return torch.device("cuda", worker % count)


# batch_size="auto" on a GPU: the CPU's batch doubled up to this many times its size, while a
# batch holds at most GPU_BATCH_VALUES input values (4 MiB of float32).
GPU_BATCH_GROWTH = 8
GPU_BATCH_VALUES = 1 << 20


def gpu_batch_size(cpu_batch: int, values_per_sample: int) -> int:
    """The batch ``batch_size="auto"`` takes on a GPU: ``cpu_batch`` doubled while it stays at
    most ``GPU_BATCH_GROWTH`` times as large and holds at most ``GPU_BATCH_VALUES`` values."""
    size = cpu_batch
    while 2 * size <= GPU_BATCH_GROWTH * cpu_batch and 2 * size * values_per_sample <= (
        GPU_BATCH_VALUES
    ):
        size *= 2
    return size


def grown_base_epochs(base_epochs: int, batch_size: int, cpu_batch: int) -> int:
    """The base epochs of ``max_epochs="auto"`` where the batch is ``batch_size / cpu_batch``
    times the CPU's: grown by the square root of that factor (never shrunk)."""
    return int(math.ceil(base_epochs * math.sqrt(max(batch_size / cpu_batch, 1.0))))


def torch_version() -> tuple[int, int]:
    """The (major, minor) version of the installed torch."""
    major, minor = re.findall(r"\d+", torch.__version__)[:2]
    return int(major), int(minor)


def fused_optimizer_supported(device: torch.device) -> bool:
    """Whether torch's fused Adam/AdamW kernels run on ``device`` with this torch build."""
    return device.type == "cuda" or (device.type == "cpu" and torch_version() >= (2, 4))


def allowed_cpu_count() -> int:
    """The number of CPU cores this process may use, at least 1.

    This is :func:`joblib.cpu_count`: the process's CPU affinity, capped by the CPU quota of
    its control group rounded up (a container's ``--cpus=0.5`` gives 1, ``--cpus=1.5`` gives 2)
    and by ``LOKY_MAX_CPU_COUNT``. Containers often see every core of the host but may use only
    a few, and torch's default thread count does not know that.

    Returns
    -------
    count : int
        The usable cores.
    """
    return joblib.cpu_count(only_physical_cores=False)


# torch's thread count is one setting of the whole process: calls that overlap in several
# Python threads (predictions served from a thread pool) share it. The first to enter records
# the caller's setting and the last to leave restores it.
_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 1


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the body with ``n_threads`` intra-op torch threads, restoring the old value after.

    ``None`` keeps torch's own setting, which already honours ``OMP_NUM_THREADS`` and the
    limits that joblib's worker processes set, so parallel searches do not oversubscribe --
    but never more threads than :func:`allowed_cpu_count`: torch counts the cores it may run
    on, not a container's CPU quota. Bodies running at once in several Python threads share
    the setting, and the caller's value comes back when the last of them ends.
    """
    global _threads_users, _threads_before
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
        _threads_users += 1
        wanted = min(_threads_before, allowed_cpu_count()) if n_threads is None else int(n_threads)
        if torch.get_num_threads() != wanted:
            torch.set_num_threads(wanted)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0 and torch.get_num_threads() != _threads_before:
                torch.set_num_threads(_threads_before)


def probe_images(shape: tuple) -> np.ndarray:
    """Two float32 images of ``shape`` to check a loaded model's outputs on: a blank one and
    one of noise in [0, 1), always the same."""
    noise = np.random.default_rng(0).random(shape, dtype=np.float32)
    return np.stack([np.zeros(shape, dtype=np.float32), noise])


def seed_from(random_state) -> int:
    """Draw a torch seed from anything :func:`sklearn.utils.check_random_state` accepts."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _umask() -> int:
    """The process's umask (read by setting it, as the os module offers no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def open_atomically(
    path, mode: str = "wb", *, follow_links: bool = True, **open_args
) -> Iterator[IO]:
    """Open a file that replaces ``path`` whole when the body ends, and not at all if it raises.

    The body writes to a temporary file in the folder of ``path``; at its end the file is
    flushed to the disk and renamed over ``path``. A crash or an exception at any moment leaves
    either the old file or the new one, never half a file (at worst a crash leaves a hidden
    temporary file ``.NAME.*`` behind).

    A file that already exists keeps its mode (a private ``0o600`` model stays private); a new
    file gets the mode of any new file (``0o666`` less the umask). A symbolic link at ``path``
    keeps pointing at the file, which is replaced where the link points; with
    ``follow_links=False`` the link itself is replaced by the file (for files written into a
    folder by name, where a link could point at anything, an input included).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    mode : {"wb", "w"}, default="wb"
        Bytes or text.
    follow_links : bool, default=True
        Replace the file a symbolic link at ``path`` points to, or else the link.
    **open_args
        Passed on to :func:`open` (e.g. ``newline=""`` for a CSV).

    Yields
    ------
    file : file object
        The temporary file, open for writing.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}.")
    target = Path(os.path.realpath(os.fspath(path)) if follow_links else os.path.abspath(path))
    try:
        existing = os.lstat(target)  # a link here only where it is not followed
    except FileNotFoundError:
        existing = None
    if existing is None or stat.S_ISLNK(existing.st_mode):
        file_mode = 0o666 & ~_umask()
    else:
        file_mode = stat.S_IMODE(existing.st_mode)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        os.chmod(temporary, file_mode)
        with os.fdopen(handle, mode, **open_args) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_atomically(path, data: bytes, *, follow_links: bool = True) -> None:
    """Write ``data`` to ``path`` whole or not at all, through :func:`open_atomically` (which
    says how: a temporary file and a rename; an existing file keeps its mode; a link is
    followed unless ``follow_links=False``)."""
    with open_atomically(path, "wb", follow_links=follow_links) as file:
        file.write(data)
