"""Serving images to torch batch by batch, without copying a whole data set to float."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

# In-memory data smaller than this is converted to one float32 tensor per fit; larger data and
# memory maps are sliced and cast per batch.
PRELOAD_LIMIT_BYTES = 1 << 30


def as_batch_source(images: np.ndarray, dtype=torch.float32):
    """A tensor of ``images`` when it fits comfortably in memory, else the array itself."""
    if isinstance(images, np.memmap) or images.size * 4 > PRELOAD_LIMIT_BYTES:
        return images
    return torch.as_tensor(np.ascontiguousarray(images), dtype=dtype)


def _take(source, indices: np.ndarray, dtype):
    if isinstance(source, torch.Tensor):
        return source[torch.from_numpy(indices)]
    # Sorted indices read a memory map front to back; the batch order does not matter.
    return torch.as_tensor(np.asarray(source[np.sort(indices)]), dtype=dtype)


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
    the estimators seed, so training is reproducible.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False):
        if isinstance(dataset, Subset):
            self.source = dataset.dataset
            self.indices = np.asarray(dataset.indices, dtype=np.int64)
        else:
            self.source = dataset
            self.indices = np.arange(len(dataset), dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.indices) / self.batch_size)

    def __iter__(self):
        indices = self.indices
        if self.shuffle:
            indices = indices[torch.randperm(len(indices)).numpy()]
        for start in range(0, len(indices), self.batch_size):
            yield self.source.batch(indices[start : start + self.batch_size])
