"""uint8 memory maps are read batch by batch: never copied whole, never cast whole to float."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from skrnn import RNNImageClassifier
from skrnn._data import as_batch_source, is_memory_mapped, read_rows
from skrnn._validation import check_images


def write_memmap(path, n, height, width, seed=0):
    """Random uint8 images whose label is whether the top half is brighter than the bottom."""
    rng = np.random.default_rng(seed)
    images = np.memmap(path, dtype=np.uint8, mode="w+", shape=(n, height, width))
    for start in range(0, n, 4096):
        chunk = rng.integers(0, 256, size=(min(4096, n - start), height, width), dtype=np.uint8)
        images[start : start + len(chunk)] = chunk
    top = images[:, : height // 2].mean(axis=(1, 2))
    bottom = images[:, height // 2 :].mean(axis=(1, 2))
    labels = (top > bottom).astype(np.int64)
    images.flush()
    del images
    return labels


def test_validation_keeps_a_memmap_as_a_view_and_batches_read_it_lazily(tmp_path):
    write_memmap(tmp_path / "x.u8", 50, 6, 5)
    X = np.memmap(tmp_path / "x.u8", dtype=np.uint8, mode="r", shape=(50, 6, 5))
    images = check_images(RNNImageClassifier(), X, reset=True)
    assert np.shares_memory(images, X)
    assert images.dtype == np.uint8
    assert is_memory_mapped(images)
    source = as_batch_source(images)
    assert not isinstance(source, torch.Tensor)  # small, but still read per batch
    rows = read_rows(source, np.array([3, 7]), np.float32)
    np.testing.assert_array_equal(rows[..., 0], X[[3, 7]])
    assert not is_memory_mapped(np.ones(3))


def test_fit_and_predict_on_a_memmap_match_the_in_memory_array(tmp_path):
    labels = write_memmap(tmp_path / "x.u8", 200, 8, 8)
    X = np.memmap(tmp_path / "x.u8", dtype=np.uint8, mode="r", shape=(200, 8, 8))
    # Without dropout the order of samples inside a batch (sorted for a memmap) cannot matter.
    params = dict(hidden_size=4, dropout=0.0, max_epochs=1, batch_size=50, random_state=0)
    on_disk = RNNImageClassifier(**params).fit(X, labels)
    in_memory = RNNImageClassifier(**params).fit(np.array(X), labels)
    np.testing.assert_allclose(
        on_disk.predict_proba(X), in_memory.predict_proba(np.array(X)), rtol=1e-5
    )


MEASURE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from skrnn import RNNImageClassifier

    def memory_mb(field):
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024

    path, n, height, width = sys.argv[1], *map(int, sys.argv[2:])
    X = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, height, width))
    y = np.load(path + ".labels.npy")
    params = dict(hidden_size=4, bidirectional=False, max_epochs=1, batch_size=256,
                  lr_schedule="constant", n_threads=1, random_state=0)
    # A first small fit loads torch's kernels and skorch's code, which are not the data's cost.
    RNNImageClassifier(**params).fit(np.array(X[:300]), y[:300]).predict(np.array(X[:300]))
    before = memory_mb("VmRSS:")
    RNNImageClassifier(**params).fit(X, y).predict(X)
    print(memory_mb("VmHWM:") - before)
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
def test_training_on_a_memmap_needs_far_less_memory_than_a_float_copy(tmp_path):
    n, height, width = 24_000, 16, 256  # 94 MB of uint8; a float32 copy would take 375 MB
    path = tmp_path / "images.u8"
    np.save(str(path) + ".labels.npy", write_memmap(path, n, height, width))
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(n), str(height), str(width)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    growth_mb = float(result.stdout.split()[-1])
    float_copy_mb = 4 * n * height * width / 2**20
    print(f"peak memory grew by {growth_mb:.0f} MB; a float32 copy is {float_copy_mb:.0f} MB")
    # A few batches and the allocator's caches, far from a float copy of the data.
    assert growth_mb < 0.4 * float_copy_mb


def memmap_views(tmp_path):
    """(name, array, reads the file directly) for memory maps laid out in every common way."""
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, size=(30, 5, 4), dtype=np.uint8)
    data.tofile(tmp_path / "plain.u8")
    plain = np.memmap(tmp_path / "plain.u8", dtype=np.uint8, mode="r", shape=(30, 5, 4))
    np.save(tmp_path / "saved.npy", data)
    with open(tmp_path / "offset.u8", "wb") as file:
        file.write(b"junk!!!")  # 7 bytes: an offset that is not page-aligned
        data.tofile(file)
    wide = data.astype(">u2") * 3
    wide.tofile(tmp_path / "wide.u16")
    writable = np.memmap(tmp_path / "rw.u8", dtype=np.uint8, mode="w+", shape=(30, 5, 4))
    writable[:] = data
    writable[0] = 255  # not flushed: the file must still read the same through the cache
    private = np.memmap(tmp_path / "plain.u8", dtype=np.uint8, mode="c", shape=(30, 5, 4))
    private[1] = 7  # a copy-on-write change that only the map has
    return [
        ("plain", plain, True),
        ("npy", np.load(tmp_path / "saved.npy", mmap_mode="r"), True),
        ("offset 7", np.memmap(tmp_path / "offset.u8", np.uint8, "r", 7, (30, 5, 4)), True),
        ("channel view", plain[..., None], True),
        ("slice of a slice", plain[4:][2:20][..., None], True),
        ("every other row", plain[1:27:2], True),
        ("big-endian uint16", np.memmap(tmp_path / "wide.u16", ">u2", "r", shape=(30, 5, 4)), True),
        ("unflushed w+", writable, True),
        ("reversed", plain[::-1], False),
        ("transposed rows", plain.transpose(0, 2, 1), False),
        ("copy-on-write", private, False),
    ]


def test_rows_read_from_the_file_equal_numpy_indexing(tmp_path):
    from skrnn._data import _file_layout

    for name, array, direct in memmap_views(tmp_path):
        assert (_file_layout(array) is not None) == direct, name
        for index in [
            slice(2, 9),
            slice(None),
            slice(3, 3),
            np.array([0, 3, 4, 5, 11]),
            np.array([6, 1, 2, 2]),
            np.array([], dtype=np.int64),
        ]:
            expected = array[index]
            np.testing.assert_array_equal(read_rows(array, index), expected, err_msg=name)
            as_float = read_rows(array, index, np.float32)
            assert as_float.dtype == np.float32
            np.testing.assert_array_equal(as_float, expected.astype(np.float32), err_msg=name)


def test_a_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "x.u8"
    np.zeros((10, 4, 4), dtype=np.uint8).tofile(path)
    X = np.memmap(path, dtype=np.uint8, mode="r", shape=(10, 4, 4))
    with open(path, "r+b") as file:
        file.truncate(16 * 5)
    with pytest.raises(OSError, match="shorter than its memory map"):
        read_rows(X, np.array([8]))
