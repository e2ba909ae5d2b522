import numpy as np
import pytest
import torch

from skrnn.datasets import load_digits_images


@pytest.fixture(scope="session")
def batch_tolerance():
    """How closely results that depend on how images are batched agree: float32 rounding on
    the CPU; on a GPU, cuDNN picks its kernels by batch size and matrix products may run in
    TF32, so they agree less closely there."""
    if torch.cuda.is_available():
        return dict(rtol=1e-3, atol=1e-4)
    return dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="session")
def assert_trained_alike():
    """Assert that the predictions of two fits that should train alike agree: on the CPU to
    ``cpu_atol`` (0: bit for bit), where every step rounds alike. On a GPU, kernels that
    reduce in another order (a mean against a weighted sum) and cuDNN's TF32 kernels round
    differently, and the training steps carry those differences forward, so there they agree
    to 2e-3 (probabilities)."""

    def check(first, second, *, cpu_atol=0.0):
        if torch.cuda.is_available():
            np.testing.assert_allclose(first, second, rtol=0, atol=max(cpu_atol, 2e-3))
        elif cpu_atol:
            np.testing.assert_allclose(first, second, rtol=0, atol=cpu_atol)
        else:
            np.testing.assert_array_equal(first, second)

    return check


@pytest.fixture(scope="session")
def digits():
    """A small, fixed slice of the bundled digits: (images, labels)."""
    X, y = load_digits_images(return_X_y=True)
    return X[:400], y[:400]


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    """90 digits of 3 classes as an .npz file, the command line's data."""
    X, y = load_digits_images(n_class=3, return_X_y=True)
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, X=X[:90], y=y[:90])
    return path


@pytest.fixture(scope="session")
def digits_split():
    X, y = load_digits_images(return_X_y=True)
    return X[:600], y[:600], X[600:900], y[600:900]


@pytest.fixture
def tiny():
    """Keyword arguments for a tiny, fast, seeded network."""
    return dict(hidden_size=16, max_epochs=4, batch_size=32, lr=1e-2, random_state=0)


def images(n=20, height=6, width=5, channels=None, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, height, width) if channels is None else (n, height, width, channels)
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.random(shape).astype(dtype)


@pytest.fixture
def caller_threads():
    """The caller runs torch with 4 threads, whatever this machine has; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield 4
    torch.set_num_threads(before)
