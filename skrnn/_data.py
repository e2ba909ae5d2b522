"""Serving images to torch batch by batch, without copying a whole data set to float."""

from __future__ import annotations

import concurrent.futures
import copy
import math
import mmap
import warnings

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from ._random import fit_generator

# In-memory data smaller than this is converted to one float32 tensor per fit; larger data and
# memory maps are sliced and cast per batch.
PRELOAD_LIMIT_BYTES = 1 << 30
# Such a tensor moves to the GPU once per fit when it takes at most this share of the GPU's free
# memory; batches are then gathered on the GPU, with no copy from the host per batch.
DEVICE_DATA_SHARE = 0.25


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
    images = np.ascontiguousarray(images)
    if images.flags.writeable:
        return torch.as_tensor(images, dtype=dtype)
    # A read-only array of the tensor's dtype is shared, not copied, and torch warns that
    # writing to it would be undefined: batches are gathered from it, never written in place.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(images, dtype=dtype)


# numpy dtypes that go to a GPU as they are and are cast there: fewer bytes to copy than float32.
_COPIED_AS_IS = (np.uint8, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32)


def _travels_as_is(dtype: np.dtype, target: torch.dtype) -> bool:
    """Whether values of ``dtype`` go to a GPU as they are, to be cast to ``target`` there:
    when torch has the dtype and it is no wider than ``target`` (8-bit images, not int64
    images for a float32 model, which are cast on the host)."""
    return dtype.type in _COPIED_AS_IS and dtype.itemsize <= target.itemsize


# One stream per GPU for copies from the host, so that they overlap the computing stream.
_copy_streams: dict[int, torch.cuda.Stream] = {}


def _copy_stream(device: torch.device) -> torch.cuda.Stream:
    index = device.index if device.index is not None else torch.cuda.current_device()
    stream = _copy_streams.get(index)
    if stream is None:
        stream = _copy_streams[index] = torch.cuda.Stream(device=index)
    return stream


def to_gpu(host: torch.Tensor, device) -> torch.Tensor:
    """A host tensor copied to a GPU on a side stream, without waiting for either.

    The copy runs beside the kernels already queued (on the same stream it would wait for
    them); the current stream waits for it before its next kernel, and the copy's memory is
    kept until the current stream is done with it. ``host`` should be page-locked, or the
    copy cannot overlap anything.
    """
    device = torch.device(device)
    current = torch.cuda.current_stream(device)
    stream = _copy_stream(device)
    with torch.cuda.stream(stream):
        moved = host.to(device, non_blocking=True)
    current.wait_stream(stream)
    moved.record_stream(current)
    return moved


def small_to_device(values: torch.Tensor, device) -> torch.Tensor:
    """A small host tensor (random draws, indices, labels) on ``device``: on a GPU through
    page-locked memory, so the copy neither waits for the GPU nor reads freed memory; on
    other devices a plain copy."""
    device = torch.device(device)
    if device.type != "cuda":
        return values.to(device)
    return values.pin_memory().to(device, non_blocking=True)


def to_device(rows: np.ndarray, dtype: torch.dtype, device) -> torch.Tensor:
    """``rows`` as a ``dtype`` tensor on ``device``, without waiting for a GPU.

    On a GPU the rows travel in their own dtype when torch has it (8-bit images: a quarter of
    the bytes of float32) through page-locked memory, with a copy that overlaps the device's
    work (:func:`to_gpu`), and are cast there.
    """
    device = torch.device(device)
    rows = np.ascontiguousarray(rows)  # a view such as X[::-1] has negative strides
    if device.type != "cuda":
        return torch.as_tensor(rows, dtype=dtype).to(device)
    return to_gpu(_host_rows(rows, dtype).pin_memory(), device).to(dtype)


def padded_rows(batch: torch.Tensor, size: int) -> torch.Tensor:
    """``batch`` with rows of zeros appended up to ``size`` rows (``batch`` itself when it has
    them)."""
    missing = size - batch.shape[0]
    if missing <= 0:
        return batch
    return torch.cat([batch, batch.new_zeros((missing, *batch.shape[1:]))])


def _batch_device(X) -> torch.device:
    """The device of a batch's images (``X`` a tensor or ``{"X": tensor, ...}``)."""
    return (X["X"] if isinstance(X, dict) else X).device


# Arrays and memory maps are copied to a device in slices of about this many bytes.
_DEVICE_COPY_BYTES = 64 << 20


def _copied_to(images, device, dtype: torch.dtype) -> torch.Tensor:
    """A tensor or array (a memory map too) as one ``dtype`` tensor on ``device``, copied in
    slices: no copy of the whole data is ever made on the host."""
    if isinstance(images, torch.Tensor):
        return images.to(device)
    moved = torch.empty(images.shape, dtype=dtype, device=device)
    step = max(1, _DEVICE_COPY_BYTES // max(1, images[0].nbytes if len(images) else 1))
    for start in range(0, len(images), step):
        rows = read_rows(images, slice(start, start + step))
        moved[start : start + len(rows)] = torch.as_tensor(np.ascontiguousarray(rows), dtype=dtype)
    return moved


def _take(source, indices: np.ndarray, dtype, device_index=None, narrow=False):
    """Rows ``indices`` of a tensor or array as ``dtype``; with ``narrow`` an array's rows
    keep a narrower dtype of their own (cast later, on the device)."""
    if isinstance(source, torch.Tensor):
        rows = source[torch.from_numpy(indices) if device_index is None else device_index]
        return rows if narrow else rows.to(dtype)
    rows = read_rows(source, indices)
    return _host_rows(rows, dtype) if narrow else torch.as_tensor(rows, dtype=dtype)


def _host_rows(rows: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """Rows bound for a GPU as a host tensor: in their own dtype where they travel as they are
    (:func:`_travels_as_is`), else cast to ``dtype`` here."""
    if _travels_as_is(rows.dtype, dtype):
        return torch.from_numpy(np.ascontiguousarray(rows))
    return torch.as_tensor(rows, dtype=dtype)


def _free_device_bytes(device: torch.device) -> int:
    """Free memory of a GPU (0 for any other device: data stay on the host)."""
    if device.type != "cuda":
        return 0
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


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

    def batch(self, indices: np.ndarray, device_index: torch.Tensor | None = None, cast=True):
        """Samples ``indices``: ``(X, y)`` or ``({"X": X, "sample_weight": w}, y)``.

        ``device_index`` holds the same indices on the device of a data set made by
        :meth:`on_device`, so that gathering a batch needs no copy from the host. With
        ``cast=False`` images read from an array keep their own dtype (fewer bytes to copy to
        a GPU, where they are cast).
        """
        if not isinstance(self.X, torch.Tensor):
            # Sorted indices read an array or memory map front to back; the order of the
            # samples inside a batch does not matter.
            indices = np.sort(indices)
        index = torch.from_numpy(indices) if device_index is None else device_index
        X = _take(self.X, indices, self.dtype, device_index, narrow=not cast)
        if self.sample_weight is not None:
            X = {"X": X, "sample_weight": self.sample_weight[index]}
        if self.y is not None:
            y = self.y[index]
        else:
            y = torch.zeros(len(indices), device=_batch_device(X))
        return X, y

    def on_device(self, device: torch.device):
        """This data set with its data on ``device``, or None where they should stay.

        The copy is made once and kept, so the training and validation batches of a fit share
        it, and only if it takes at most ``DEVICE_DATA_SHARE`` of the device's free memory.
        Arrays and memory maps move slice by slice in their own dtype (8-bit images stay
        8-bit there and each batch is cast as it is gathered); a memory map is read with
        plain file reads, so its pages never pile up in the host's memory.
        """
        cached = getattr(self, "_on_device", None)
        if cached is not None and cached[0] == device:
            return cached[1]
        images = self.X
        if isinstance(images, torch.Tensor):
            image_dtype = images.dtype
        elif _travels_as_is(images.dtype, self.dtype):
            image_dtype = torch.from_numpy(np.empty(0, images.dtype)).dtype
        else:
            image_dtype = self.dtype
        needed = int(np.prod(images.shape)) * image_dtype.itemsize
        needed += sum(t.nbytes for t in (self.y, self.sample_weight) if t is not None)
        moved = None
        if needed <= DEVICE_DATA_SHARE * _free_device_bytes(device):
            moved = copy.copy(self)
            try:
                moved.X = _copied_to(images, device, image_dtype)
                for name in ("y", "sample_weight"):
                    value = getattr(self, name)
                    if value is not None:
                        setattr(moved, name, value.to(device))
            except torch.cuda.OutOfMemoryError:  # memory taken meanwhile: read on the host
                moved = None
                torch.cuda.empty_cache()
            else:
                moved._on_device = None
        self._on_device = (device, moved)
        return moved

    def __getitem__(self, i):
        X, y = self.batch(np.array([i]))
        if isinstance(X, dict):
            return {key: value[0] for key, value in X.items()}, y[0]
        return X[0], y[0]


class BatchLoader:
    """Yields whole batches by slicing an :class:`ArrayDataset` (or a ``Subset`` of one).

    Torch's ``DataLoader`` fetches and collates sample by sample; for arrays already in memory
    one slice per batch is much cheaper. Shuffling draws from the running fit's generator
    (:func:`skrnn._random.fit_generator`; torch's own outside a fit), so training is
    reproducible, in threads too. ``augment``, a callable
    ``augment(X, y) -> (X, y)`` such as :class:`skrnn._augment.Augmenter`, changes every batch
    it yields (the estimators give one to the loader of training batches only).

    On a GPU (``device``), data that fit move there once (:meth:`ArrayDataset.on_device`) and
    each batch is gathered and augmented on the GPU; other data are read on the host (memory
    maps one batch ahead, in their own dtype) into page-locked memory, copied beside the GPU's
    work, then cast and augmented there. Without ``device``, batches stay on the host, in
    page-locked memory with ``pin_memory``.

    In a distributed fit, ``shard`` (a :class:`skrnn.distributed.Shard`) draws the order that
    every process shares and keeps this process's part of each batch.
    """

    def __init__(
        self,
        dataset,
        batch_size=128,
        shuffle=False,
        augment=None,
        pin_memory=False,
        device=None,
        shard=None,
    ):
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
        self.device = None if device is None else torch.device(device)
        self.shard = shard

    def __len__(self):
        if self.shard is not None:  # the shard may leave out a last, smaller batch
            full, rest = divmod(self.n_samples, self.batch_size)
            return full + (rest > 0 and self.shard.keeps(rest))
        return math.ceil(self.n_samples / self.batch_size)

    def __iter__(self):
        indices = self.indices
        if self.shuffle:
            # A distributed fit's processes all draw the same order, each from the shard.
            if self.shard is not None:
                order = self.shard.order(self.n_samples)
            else:
                order = torch.randperm(self.n_samples, generator=fit_generator("cpu")).numpy()
            indices = order if indices is None else indices[order]
        batches = [
            np.arange(start, min(start + self.batch_size, self.n_samples))
            if indices is None
            else indices[start : start + self.batch_size]
            for start in range(0, self.n_samples, self.batch_size)
        ]
        if self.shard is not None:  # this process's share of every batch
            batches = self.shard.parts(batches)
        # Batches read from an array or a memory map (rather than sliced from a tensor) are
        # read one ahead by a background thread while the model trains on the current one.
        # Augmentation stays here, in order, so its random draws are those of a plain loop.
        read = self._read
        resident = None if self.device is None else self.source.on_device(self.device)
        if resident is not None:
            # One copy of this epoch's order to the GPU; each batch is a slice of it.
            order = np.concatenate(batches) if batches else np.empty(0, np.int64)
            on_device = small_to_device(torch.from_numpy(order), self.device)
            start = 0
            for batch in batches:
                index = on_device[start : start + len(batch)]
                start += len(batch)
                yield self._augmented(resident.batch(batch, index))
            return
        if isinstance(self.source.X, torch.Tensor):
            for batch in batches:
                yield self._augmented(self._moved(read(batch)))
            return
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="skrnn-reader") as pool:
            pending = pool.submit(read, batches[0]) if batches else None
            for following in [*batches[1:], None]:
                ready = pending.result()
                pending = None if following is None else pool.submit(read, following)
                yield self._augmented(self._moved(ready))

    def _read(self, batch):
        on_gpu = self.device is not None and self.device.type == "cuda"
        X, y = self.source.batch(batch, cast=not on_gpu)
        if self.pin_memory or on_gpu:  # page-locked, so the copy to the GPU can overlap its work
            X = {k: v.pin_memory() for k, v in X.items()} if isinstance(X, dict) else X.pin_memory()
            y = y.pin_memory()
        return X, y

    def _moved(self, batch):
        """A batch read on the host, on the GPU of ``device`` with its images cast there."""
        if self.device is None or self.device.type != "cuda":
            return batch
        X, y = batch
        dtype = self.source.dtype
        if isinstance(X, dict):
            X = {k: to_gpu(v, self.device) for k, v in X.items()}
            X["X"] = X["X"].to(dtype)
        else:
            X = to_gpu(X, self.device).to(dtype)
        return X, to_gpu(y, self.device)

    def _augmented(self, batch):
        return batch if self.augment is None else self.augment(*batch)
