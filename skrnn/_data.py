"""Serving images to torch batch by batch, without copying a whole data set to float."""

from __future__ import annotations

import concurrent.futures
import math
import mmap

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

# In-memory data smaller than this is converted to one float32 tensor per fit; larger data and
# memory maps are sliced and cast per batch.
PRELOAD_LIMIT_BYTES = 1 << 30


def _shared_memory_map(array):
    """The ``mmap`` under ``array`` (a memory map or a view of one), or None.

    Validation turns a ``np.memmap`` into a plain ndarray view of it, so the map is found by
    following ``.base``. Only shared maps (modes ``"r"``, ``"r+"``, ``"w+"``) are returned:
    dropping the pages of a copy-on-write map (``"c"``) would lose its changes.
    """
    mode = None
    while array is not None:
        if isinstance(array, np.memmap) and mode is None:
            mode = array.mode
        if isinstance(array, mmap.mmap):
            return array if mode in ("r", "r+", "w+", "readwrite", "write") else None
        array = getattr(array, "base", None)
    return None


def is_memory_mapped(array) -> bool:
    """Whether ``array`` is a ``np.memmap`` or a view of one."""
    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


def release_pages(array) -> None:
    """Let go of the pages of a memory map that reading ``array`` brought into memory.

    Pages of a file mapped into the process count towards its resident memory until they are
    unmapped, so one pass over a 2 GB memory map would otherwise leave 2 GB resident. The data
    stay in the operating system's file cache; the next read maps them again.
    """
    memory_map = _shared_memory_map(array)
    if memory_map is not None and hasattr(mmap, "MADV_DONTNEED"):
        try:
            memory_map.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # a closed map, or a platform that refuses
            pass


# Rows of a memory map read between two releases of its pages when they are scattered. The
# kernel maps a whole (possibly large, up to megabytes) page-cache folio on each fault, so a
# batch of rows spread over a file could otherwise map much of the file at once.
_SCATTERED_ROWS_PER_READ = 16

# Memory-map modes whose contents are the file's: anything else (copy-on-write "c") may hold
# changes that only the map has.
_SHARED_MODES = ("r", "r+", "w+", "readonly", "readwrite", "write")


def _file_layout(images):
    """Where the rows of ``images`` lie in the file under its memory map, or None.

    Returns ``(path, file offset of row 0, bytes between rows, bytes of a row)`` when
    ``images`` views a shared ``np.memmap`` of a named file with a positive row stride and
    contiguous rows, so that rows can be read from the file with plain reads instead of
    through the map.
    """
    original = images  # the np.memmap made on the mmap itself (views keep its offset)
    while original is not None and not (
        isinstance(original, np.memmap) and isinstance(original.base, mmap.mmap)
    ):
        original = getattr(original, "base", None)
    if original is None or original.mode not in _SHARED_MODES or not original.filename:
        return None
    if images.ndim < 2 or len(images) == 0 or images.strides[0] <= 0:
        return None
    if not images[0].flags.c_contiguous:
        return None
    start = images.__array_interface__["data"][0] - original.__array_interface__["data"][0]
    if start < 0:
        return None
    return original.filename, original.offset + start, images.strides[0], images[0].nbytes


def _read_from_file(images, layout, index: np.ndarray) -> np.ndarray:
    """``images[index]`` read with plain file reads, one per run of consecutive rows."""
    path, first, stride, row_bytes = layout
    rows = np.empty((len(index),) + images.shape[1:], dtype=images.dtype)
    if len(index) == 0:
        return rows
    as_bytes = rows.reshape(len(index), -1).view(np.uint8)
    contiguous = stride == row_bytes
    # Runs of consecutive rows are one read when the rows follow each other in the file.
    breaks = np.flatnonzero(np.diff(index) != 1) + 1 if contiguous else np.arange(1, len(index))
    with open(path, "rb", buffering=0) as file:
        for begin, end in zip(np.r_[0, breaks], np.r_[breaks, len(index)], strict=True):
            file.seek(first + int(index[begin]) * stride)
            target = memoryview(as_bytes[begin:end].reshape(-1))
            if file.readinto(target) != target.nbytes:
                raise OSError(f"{path} is shorter than its memory map; was it truncated?")
    return rows


def read_rows(images, index, dtype=None) -> np.ndarray:
    """A copy of ``images[index]`` as ``dtype``, without leaving memory-mapped pages behind.

    ``index`` is a slice or an array of row indices. Rows of a shared memory map of a named
    file are read from the file with plain reads, so they never count towards the process's
    resident memory; other memory maps are read through the map and their pages released.
    """
    if not is_memory_mapped(images):
        return np.asarray(images[index], dtype=dtype)
    layout = _file_layout(images)
    if layout is not None:
        positions = np.arange(*index.indices(len(images))) if isinstance(index, slice) else index
        rows = _read_from_file(images, layout, np.asarray(positions, dtype=np.int64))
        return rows if dtype is None else rows.astype(dtype, copy=False)
    if isinstance(index, slice):
        rows = np.array(images[index], dtype=dtype, copy=True)
        release_pages(images)
        return rows
    index = np.asarray(index)
    rows = np.empty((len(index),) + images.shape[1:], dtype=dtype or images.dtype)
    for start in range(0, len(index), _SCATTERED_ROWS_PER_READ):
        part = slice(start, start + _SCATTERED_ROWS_PER_READ)
        rows[part] = images[index[part]]
        release_pages(images)
    return rows


def channel_statistics(images) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of images ``(n, H, W, C)``, read in slices.

    Parameters
    ----------
    images : ndarray or memory map of shape (n, H, W, C)
        Images of any numeric dtype; slices of about a million values are cast to float64 at
        a time, so a memory map is never copied whole.

    Returns
    -------
    mean, std : list of float
        One value per channel. A constant channel gets a standard deviation of 1, so
        standardising leaves it at 0 instead of dividing by 0.
    """
    channels = images.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    step = max(1, (1 << 20) // max(1, images[0].size))
    for start in range(0, len(images), step):
        chunk = read_rows(images, slice(start, start + step), np.float64)
        chunk = chunk.reshape(-1, channels)
        total += chunk.sum(axis=0)
        total_sq += np.square(chunk).sum(axis=0)
        count += len(chunk)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std[std < 1e-8] = 1.0
    return mean.tolist(), std.tolist()


def as_batch_source(images: np.ndarray, dtype=torch.float32):
    """A tensor of ``images`` when it fits comfortably in memory, else the array itself.

    Memory maps always stay arrays, to be read and cast one batch at a time.
    """
    if is_memory_mapped(images) or images.size * 4 > PRELOAD_LIMIT_BYTES:
        return images
    return torch.as_tensor(np.ascontiguousarray(images), dtype=dtype)


def _take(source, indices: np.ndarray, dtype):
    if isinstance(source, torch.Tensor):
        return source[torch.from_numpy(indices)]
    return torch.as_tensor(read_rows(source, indices), dtype=dtype)


class ArrayDataset(Dataset):
    """Images with optional targets and sample weights.

    ``X`` is a tensor (data prepared once per fit) or a numpy array / memory map that is read
    and cast one batch at a time. A batch is ``(X, y)``, or ``({"X": X, "sample_weight": w},
    y)`` when there are sample weights.
    """

    def __init__(self, X, y=None, sample_weight=None, dtype=torch.float32):
        self.X = X
        self.y = None if y is None else torch.as_tensor(y)
        self.sample_weight = (
            None if sample_weight is None else torch.as_tensor(sample_weight, dtype=torch.float32)
        )
        self.dtype = dtype

    def __len__(self):
        return len(self.X)

    def batch(self, indices: np.ndarray):
        if not isinstance(self.X, torch.Tensor):
            # Sorted indices read an array or memory map front to back; the order of the
            # samples inside a batch does not matter.
            indices = np.sort(indices)
        index = torch.from_numpy(indices)
        X = _take(self.X, indices, self.dtype)
        if self.sample_weight is not None:
            X = {"X": X, "sample_weight": self.sample_weight[index]}
        y = self.y[index] if self.y is not None else torch.zeros(len(indices))
        return X, y

    def __getitem__(self, i):
        X, y = self.batch(np.array([i]))
        if isinstance(X, dict):
            return {key: value[0] for key, value in X.items()}, y[0]
        return X[0], y[0]


class BatchLoader:
    """Yields whole batches by slicing an :class:`ArrayDataset` (or a ``Subset`` of one).

    Torch's ``DataLoader`` fetches and collates sample by sample; for arrays already in memory
    one slice per batch is much cheaper. Shuffling draws from torch's global generator, which
    the estimators seed, so training is reproducible. ``augment``, a callable
    ``augment(X, y) -> (X, y)`` such as :class:`skrnn._augment.Augmenter`, changes every batch
    it yields (the estimators give one to the loader of training batches only).
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, augment=None, pin_memory=False):
        if isinstance(dataset, Subset):
            self.source = dataset.dataset
            self.indices = np.asarray(dataset.indices, dtype=np.int64)
        else:
            self.source = dataset
            self.indices = None  # every sample, in order: no index array to hold
        self.n_samples = len(dataset)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.pin_memory = pin_memory

    def __len__(self):
        return math.ceil(self.n_samples / self.batch_size)

    def __iter__(self):
        indices = self.indices
        if self.shuffle:
            order = torch.randperm(self.n_samples).numpy()
            indices = order if indices is None else indices[order]
        batches = [
            np.arange(start, min(start + self.batch_size, self.n_samples))
            if indices is None
            else indices[start : start + self.batch_size]
            for start in range(0, self.n_samples, self.batch_size)
        ]
        # Batches read from an array or a memory map (rather than sliced from a tensor) are
        # read one ahead by a background thread while the model trains on the current one.
        # Augmentation stays here, in order, so its random draws are those of a plain loop.
        read = self._read
        if isinstance(self.source.X, torch.Tensor):
            for batch in batches:
                yield self._augmented(read(batch))
            return
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="skrnn-reader") as pool:
            pending = pool.submit(read, batches[0]) if batches else None
            for following in [*batches[1:], None]:
                ready = pending.result()
                pending = None if following is None else pool.submit(read, following)
                yield self._augmented(ready)

    def _read(self, batch):
        X, y = self.source.batch(batch)
        if self.pin_memory:  # page-locked, so the copy to the GPU can overlap its work
            X = {k: v.pin_memory() for k, v in X.items()} if isinstance(X, dict) else X.pin_memory()
        return X, y

    def _augmented(self, batch):
        return batch if self.augment is None else self.augment(*batch)
