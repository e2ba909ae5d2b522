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
