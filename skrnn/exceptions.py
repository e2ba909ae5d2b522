"""The exceptions skrnn raises beyond Python's and scikit-learn's own."""

from __future__ import annotations

__all__ = ["MissingCellError", "ModelFileError", "NonFiniteLossError"]


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
