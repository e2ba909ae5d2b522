"""BatchLoader: whole batches sliced from an ArrayDataset or a Subset of one."""

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from skrnn._data import ArrayDataset, BatchLoader


def labels_seen(loader):
    return [batch_y.tolist() for _, batch_y in loader]


@pytest.mark.parametrize("subset", [None, [7, 2, 9, 0, 4]])
def test_every_sample_once_per_epoch_in_batches(subset):
    X = np.arange(10 * 2 * 2, dtype=np.float32).reshape(10, 2, 2)
    dataset = ArrayDataset(torch.from_numpy(X), y=np.arange(10))
    expected = list(range(10)) if subset is None else subset
    if subset is not None:
        dataset = Subset(dataset, subset)
    loader = BatchLoader(dataset, batch_size=3)
    assert len(loader) == -(-len(expected) // 3)
    batches = labels_seen(loader)
    assert [len(batch) for batch in batches[:-1]] == [3] * (len(batches) - 1)
    assert sum(batches, []) == expected

    shuffled = BatchLoader(dataset, batch_size=3, shuffle=True)
    torch.manual_seed(0)
    order = sum(labels_seen(shuffled), [])
    assert sorted(order) == sorted(expected)
    torch.manual_seed(0)
    assert sum(labels_seen(shuffled), []) == order  # the seed fixes the order
    torch.manual_seed(0)
    permutation = torch.randperm(len(expected)).numpy()
    assert order == [expected[i] for i in permutation]


def test_batches_read_from_an_array_come_from_a_background_reader_in_order(monkeypatch):
    # a memory map (or a large array) is read one batch ahead by a thread; the batches, their
    # order and the augmentation's random draws are those of a plain loop over tensors
    import threading

    X = np.arange(10 * 2 * 2, dtype=np.float32).reshape(10, 2, 2)
    readers = set()
    real_batch = ArrayDataset.batch

    def recording_batch(self, indices, *args, **kwargs):
        readers.add(threading.current_thread().name)
        return real_batch(self, indices, *args, **kwargs)

    monkeypatch.setattr(ArrayDataset, "batch", recording_batch)

    def noisy(X, y):
        return X + torch.rand(len(X), 1, 1), y

    def epoch(source):
        torch.manual_seed(0)
        loader = BatchLoader(ArrayDataset(source, y=np.arange(10)), 3, shuffle=True, augment=noisy)
        return list(loader)

    from_array = epoch(X)
    assert readers == {"skrnn-reader_0"}  # every batch was read in the background
    torch.manual_seed(0)  # what a plain loop reads and draws, batch after batch
    order = torch.randperm(10).numpy()
    expected = []
    for start in range(0, 10, 3):
        rows = np.sort(order[start : start + 3])  # rows read from arrays come sorted
        expected.append(noisy(torch.from_numpy(X[rows]), torch.from_numpy(rows)))
    assert len(from_array) == len(expected) == 4
    for (ax, ay), (ex, ey) in zip(from_array, expected, strict=True):
        assert torch.equal(ay, ey) and torch.equal(ax, ex)
