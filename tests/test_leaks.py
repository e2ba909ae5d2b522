"""No leaks: many fit / predict / save / load cycles in one process keep the resident memory
flat (the short version of benchmarks/leaks.py, which runs 200 cycles per estimator)."""

import contextlib
import ctypes
import gc
import io
import os

import pytest
import torch

import skrnn
from skrnn import RNNImageClassifier, RNNImageGenerator, RNNSegmenter
from skrnn.datasets import load_digits_images, make_shapes

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/statm"), reason="reads the resident memory from /proc"
)


def resident_mb() -> float:
    """Resident memory in MB, after handing the allocator's free pages back to the system.

    Without the trim, glibc's heap keeps freed blocks in place, and after the rest of the
    suite its fragmentation moves RSS by a few MB from cycle to cycle without any leak.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _cycle(make, X, y, method):
    estimator = make().fit(X, y)
    getattr(estimator, method)(X[:20])
    buffer = io.BytesIO()
    estimator.save(buffer)
    buffer.seek(0)
    getattr(skrnn.load(buffer), method)(X[:20])


@pytest.mark.parametrize("kind", ["classifier", "segmenter", "generator"])
def test_fit_predict_save_load_cycles_do_not_grow_memory(kind):
    X, y = load_digits_images(return_X_y=True)
    small = dict(hidden_size=8, max_epochs=1, random_state=0, n_threads=1)
    make, data, method = {
        "classifier": (lambda: RNNImageClassifier(**small), (X[:100], y[:100]), "predict_proba"),
        "segmenter": (
            lambda: RNNSegmenter(conv=(4,), **small),
            make_shapes(n_samples=16, image_size=12, random_state=0),
            "predict_proba",
        ),
        "generator": (lambda: RNNImageGenerator(**small), (X[:30], y[:30]), "score_samples"),
    }[kind]
    for _ in range(6):  # the allocators reach their working size
        _cycle(make, *data, method)
    before = resident_mb()
    for _ in range(15):
        _cycle(make, *data, method)
    # 200 cycles may grow it by less than 50 MB, 0.25 MB a cycle: 15 cycles by under 2 MB
    assert resident_mb() - before < 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_fit_on_the_gpu_returns_its_memory():
    X, y = load_digits_images(return_X_y=True)
    baseline = torch.cuda.memory_allocated()
    clf = RNNImageClassifier(hidden_size=32, max_epochs=1, device="cuda").fit(X, y)
    clf.predict(X)
    assert torch.cuda.memory_allocated() > baseline  # the model lives on the GPU
    del clf
    gc.collect()
    assert torch.cuda.memory_allocated() == baseline
