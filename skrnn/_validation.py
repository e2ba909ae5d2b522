"""Input validation at the edge: every public ``fit`` / ``predict`` checks its images here."""

from __future__ import annotations

import contextlib
import contextvars
import numbers

import numpy as np
from sklearn.utils.validation import check_array, validate_data

# Whether check_images leaves the NaN / infinity check to the caller, which checks each batch
# where it computes (on a GPU: one more small kernel a batch instead of a pass over X on the
# host; see BaseRNNEstimator._forward).
_finite_check_elsewhere = contextvars.ContextVar("skrnn_finite_check_elsewhere", default=False)


@contextlib.contextmanager
def finite_values_checked_elsewhere(elsewhere: bool = True):
    """Within this context, :func:`check_images` does not check for NaN or infinity: the
    caller promises to, with :func:`non_finite_error` for the message."""
    token = _finite_check_elsewhere.set(elsewhere)
    try:
        yield
    finally:
        _finite_check_elsewhere.reset(token)


def non_finite_error(estimator) -> ValueError:
    """The error for NaN or infinite values in ``X``, found by a check of the batches."""
    return ValueError(
        f"Input X contains NaN or infinity. {type(estimator).__name__} expects finite values; "
        "replace or drop the images that hold them."
    )


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def booleans_for_numbers(cls, params: dict) -> list[str]:
    """The parameters in ``params`` set to True or False whose constraints take numbers.

    sklearn's constraints count booleans as integers, so ``num_layers=True`` passes them and
    then trains a different model than the user meant (or breaks torch's kernels later).
    """
    return [
        name
        for name, value in params.items()
        if isinstance(value, bool)
        and not any(
            constraint in ("boolean", "verbose", bool)
            for constraint in cls._parameter_constraints.get(name, [])
        )
    ]


def check_int_pair(value, name: str, *, minimum: int = 1, what: str = "(height, width)"):
    """``(a, b)`` from an int (used for both) or a pair of ints, each at least ``minimum``.

    Parameters
    ----------
    value : int or pair of int
        The value to check, e.g. a ``patch_size`` or an ``image_size`` parameter.
    name : str
        The parameter's name, for the error message.
    minimum : int, default=1
        The smallest value allowed for each of the two.
    what : str, default="(height, width)"
        How the error message names the two values.

    Returns
    -------
    pair : tuple of int
        ``(a, b)``.

    Raises
    ------
    ValueError
        If ``value`` is neither an int nor a pair of ints (booleans excluded) of at least
        ``minimum``; the message names the parameter and what it got.

    Examples
    --------
    >>> from skrnn._validation import check_int_pair
    >>> check_int_pair(2, "patch_size"), check_int_pair([3, 4], "patch_size")
    ((2, 2), (3, 4))
    """
    pair = (value, value) if is_int(value) else value
    if (
        not isinstance(pair, (tuple, list))
        or len(pair) != 2
        or not all(is_int(v) and v >= minimum for v in pair)
    ):
        kind = "a positive int" if minimum == 1 else f"an int of at least {minimum}"
        kinds = "positive ints" if minimum == 1 else f"ints of at least {minimum}"
        raise ValueError(f"{name} must be {kind} or a pair {what} of {kinds}, got {value!r}.")
    return int(pair[0]), int(pair[1])


def check_image_shape(image_shape) -> tuple[int, int, int] | None:
    """Validate an ``image_shape`` parameter; return ``(H, W, C)`` or ``None``."""
    if image_shape is None:
        return None
    if (
        not isinstance(image_shape, (tuple, list))
        or len(image_shape) not in (2, 3)
        or not all(isinstance(s, numbers.Integral) and s >= 1 for s in image_shape)
    ):
        raise ValueError(
            "image_shape must be (height, width) or (height, width, channels) with positive "
            f"ints, got {image_shape!r}."
        )
    height, width, *rest = (int(s) for s in image_shape)
    return height, width, rest[0] if rest else 1


def format_shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"


def check_images(
    estimator,
    X,
    *,
    reset: bool,
    image_shape: tuple[int, int, int] | None = None,
    fixed_size: bool = True,
    dtype="numeric",
):
    """Validate ``X`` and return it as an image batch ``(n, H, W, C)`` without copying.

    ``X`` may be images ``(n, H, W)`` / ``(n, H, W, C)``, flat rows ``(n, H * W * C)`` together
    with ``image_shape``, or a 2-D array without it, read as a column image ``(n_features, 1)``
    so that rows or pixels make a univariate sequence. ``uint8`` arrays and memory maps stay as
    they are; casting to float happens batch by batch later.

    On ``reset`` it records ``n_features_in_`` (values per sample), ``image_shape_``
    ``(H, W, C)`` and the input layout on ``estimator``; otherwise it checks ``X`` against
    them. With ``fixed_size=False`` the height and width may differ from fit time (only the
    channel count must match).
    """
    if not hasattr(X, "ndim") or not hasattr(X, "shape"):
        if hasattr(X, "__array__") or isinstance(X, (list, tuple)):
            X = np.asarray(X)
        else:
            raise TypeError(
                f"X must be an array-like of images, got {type(X).__name__}. Expected a numpy "
                "array of shape (n, H, W), (n, H, W, C) or (n, H * W * C)."
            )
    if hasattr(X, "detach"):  # a torch tensor
        X = X.detach().cpu().numpy()
    name = type(estimator).__name__
    if np.iscomplexobj(X):
        raise ValueError(
            f"Complex data not supported: X has dtype {X.dtype}, but {name} expects "
            "real-valued images; pass the "
            "real part, the magnitude, or both as channels."
        )
    finite = not _finite_check_elsewhere.get()
    if X.ndim <= 2:  # sklearn's own message, with its reshape hint, for 0-D and 1-D input
        X = validate_data(
            estimator, X, reset=reset, dtype=dtype, copy=False, ensure_all_finite=finite
        )
    elif X.ndim in (3, 4):
        validate_data(estimator, X, reset=reset, skip_check_array=True, ensure_2d=False)
        X = check_array(
            X, allow_nd=True, dtype=dtype, copy=False, input_name="X", ensure_all_finite=finite
        )
    else:
        raise ValueError(
            f"X has {X.ndim} dimension(s) (shape {format_shape(X.shape)}), but {name} expects "
            "images (n, H, W) or (n, H, W, C), flat rows (n, H * W * C) with image_shape, or "
            "sequences (n, T, F)."
        )

    n_samples = X.shape[0]
    if X.ndim == 2:
        if image_shape is not None:
            height, width, channels = image_shape
            if height * width * channels != X.shape[1]:
                raise ValueError(
                    f"X has {X.shape[1]} values per sample, but image_shape="
                    f"{format_shape(image_shape)} needs {height * width * channels}."
                )
            images = X.reshape(n_samples, height, width, channels)
        else:
            images = X.reshape(n_samples, X.shape[1], 1, 1)
    else:
        images = X if X.ndim == 4 else X.reshape(X.shape + (1,))
        if image_shape is not None and images.shape[1:] != image_shape:
            given = image_shape if image_shape[2] != 1 else image_shape[:2]
            raise ValueError(
                f"X holds images of shape {format_shape(X.shape[1:])}, but image_shape="
                f"{format_shape(given)} was given; leave image_shape=None for image arrays or "
                "make it match."
            )
    if min(images.shape[1:]) < 1:
        raise ValueError(f"X has images of shape {format_shape(X.shape[1:])} with no pixels.")

    if reset:
        estimator.n_features_in_ = int(np.prod(images.shape[1:]))
        estimator.image_shape_ = tuple(int(s) for s in images.shape[1:])
        estimator._input_layout = tuple(int(s) for s in X.shape[1:])
        return images

    fitted = estimator.image_shape_
    if fixed_size and images.shape[1:] != fitted:
        raise ValueError(
            f"X has images of shape {format_shape(X.shape[1:])} but this {name} was fitted on "
            f"{format_shape(estimator._input_layout)}."
        )
    if not fixed_size and images.shape[3] != fitted[2]:
        raise ValueError(
            f"X has images with {images.shape[3]} channel(s) but this {name} was fitted on "
            f"images with {fitted[2]}."
        )
    return images


def check_target_length(images, y) -> None:
    """Raise a clear error when ``X`` and ``y`` do not have the same number of samples."""
    if len(y) != len(images):
        raise ValueError(
            f"X and y have different numbers of samples: X has {len(images)}, y has {len(y)}."
        )


def check_hidden_size(hidden_size, num_layers: int):
    """Validate ``hidden_size`` with ``num_layers``; return an int or a tuple of ints.

    Parameters
    ----------
    hidden_size : int or sequence of int
        Units of every layer, or of each layer.
    num_layers : int
        Number of layers of an int ``hidden_size``; must be 1 with a sequence.

    Returns
    -------
    hidden_size : int or tuple of int

    Raises
    ------
    ValueError
        If a size is not a positive int, the sequence is empty, or ``num_layers`` is not 1
        with a sequence of sizes.
    """
    if not isinstance(hidden_size, (tuple, list)):
        return int(hidden_size)
    if not hidden_size or not all(is_int(h) and h >= 1 for h in hidden_size):
        raise ValueError(
            f"hidden_size must be a positive int or a non-empty tuple of positive ints, "
            f"got {hidden_size!r}."
        )
    if num_layers != 1:
        raise ValueError(
            f"hidden_size={tuple(hidden_size)!r} already gives one layer per entry; leave "
            f"num_layers at 1 (got {num_layers})."
        )
    return tuple(int(h) for h in hidden_size)


def check_head(head, name: str = "head") -> tuple[int, ...]:
    """Validate a ``head`` parameter (widths of hidden layers); return a tuple of ints.

    Parameters
    ----------
    head : sequence of int or None
        Widths of hidden layers; None means none.
    name : str, default="head"
        The parameter's name, for the error message.

    Returns
    -------
    head : tuple of int

    Raises
    ------
    ValueError
        If a width is not a positive int.
    """
    if head is None:
        return ()
    if not all(is_int(width) and width >= 1 for width in head):
        raise ValueError(f"{name} must be a tuple of positive ints, got {head!r}.")
    return tuple(int(width) for width in head)


def check_input_statistics(mean, std, channels: int) -> None:
    """Raise unless ``mean`` and ``std`` are lists of the finite per-channel means and
    positive standard deviations of ``channels`` channels (fitted ``_input_mean`` /
    ``_input_std``, as a model file restores them)."""
    if not (
        isinstance(mean, list)
        and isinstance(std, list)
        and len(mean) == len(std) == channels
        and all(isinstance(v, float) and np.isfinite(v) for v in mean + std)
        and all(v > 0 for v in std)
    ):
        raise ValueError(
            f"_input_mean and _input_std should hold the mean and the positive standard "
            f"deviation of each of the {channels} channel(s), got {mean!r:.60} and "
            f"{std!r:.60}."
        )
