"""The exceptions skrnn raises beyond Python's and scikit-learn's own."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "DistributedError",
    "MissingCellError",
    "ModelFileError",
    "NonFiniteLossError",
    "OutOfMemoryError",
    "PrecisionWarning",
    "SkippedFilesWarning",
]


class ModelFileError(ValueError):
    """A saved model file cannot be read: it is truncated, altered, or not a skrnn model file.

    A subclass of :class:`ValueError`, so code that already catches bad input catches it too.

    Examples
    --------
    >>> import skrnn
    >>> from skrnn.exceptions import ModelFileError
    >>> try:
    ...     skrnn.load(__file__)
    ... except ModelFileError as error:
    ...     print("refused")
    refused
    """


class MissingCellError(ModelFileError):
    """A saved model uses a recurrent cell that is not registered in this environment.

    The message names the cell and, when the file records it, the plugin package that
    provided it.

    Examples
    --------
    >>> from skrnn.exceptions import MissingCellError, ModelFileError
    >>> issubclass(MissingCellError, ModelFileError)
    True
    """


class DistributedError(RuntimeError):
    """A distributed fit lost one of its processes: it died, failed or stopped answering.

    Raised in the processes that remain, instead of a wait without end; the message names the
    process and what it was doing. A subclass of :class:`RuntimeError`.

    Examples
    --------
    >>> from skrnn.exceptions import DistributedError
    >>> issubclass(DistributedError, RuntimeError)
    True
    """


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss, or NaN or infinite weights.

    Raised by ``fit`` and ``partial_fit`` after the weights have been rolled back to the last
    finished epoch; the message says which epoch the model keeps. A subclass of
    :class:`FloatingPointError`.

    Examples
    --------
    >>> from skrnn.exceptions import NonFiniteLossError
    >>> issubclass(NonFiniteLossError, FloatingPointError)
    True
    """


class OutOfMemoryError(MemoryError):
    """``fit`` or ``predict`` ran out of memory (GPU memory, or the CPU's for a huge batch).

    The message names the batch size and what to lower. ``fit`` raises it after rolling the
    weights back to the last finished epoch, and prediction after trying smaller batches down
    to one image, so the estimator stays usable. A subclass of :class:`MemoryError`; the
    error torch raised is its ``__cause__``.

    Examples
    --------
    >>> from skrnn.exceptions import OutOfMemoryError
    >>> issubclass(OutOfMemoryError, MemoryError)
    True
    """


class SkippedFilesWarning(UserWarning):
    """Files that ``skip_errors=True`` left out because they could not be loaded.

    Its ``skipped`` attribute maps each file (or class folder) left out to the reason, as the
    ``skipped`` field of the loaders' Bunch does; for :func:`read_images`, which returns a
    bare array, it is how to learn which files the rows are.

    Parameters
    ----------
    message : str
        The warning's text: what was left out and why (the first few, and a count).
    skipped : mapping of str to str
        Each file or folder left out, and the reason.

    Examples
    --------
    >>> import tempfile, warnings
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skrnn._folders import read_images
    >>> from skrnn.exceptions import SkippedFilesWarning
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "good.png")
    >>> _ = (folder / "bad.png").write_bytes(b"")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always", SkippedFilesWarning)
    ...     images = read_images([folder / "good.png", folder / "bad.png"], skip_errors=True)
    >>> images.shape, [Path(name).name for name in caught[0].message.skipped]
    ((1, 4, 4), ['bad.png'])
    """

    def __init__(self, message: str, skipped: Mapping[str, str]):
        super().__init__(message)
        self.skipped = dict(skipped)


class PrecisionWarning(UserWarning):
    """Part of a network computes in another precision than the ``precision`` asked for.

    Raised once per process, device and kind of layer, when ``precision="bfloat16"`` meets a
    device that cannot run that kind of recurrent layer in bfloat16 (torch's LSTM on a CPU
    without AVX-512): those layers compute in float32 and the rest in bfloat16.

    Examples
    --------
    >>> from skrnn.exceptions import PrecisionWarning
    >>> issubclass(PrecisionWarning, UserWarning)
    True
    """
