"""Reading images as sequences: the one place where image and sequence shapes are converted.

An image batch is always held as ``(n, H, W, C)``. It is read as a sequence ``(n, T, F)`` in one
of four orders:

========== ============================ =======================
order      time steps ``T``             features per step ``F``
========== ============================ =======================
rows       ``H`` (top to bottom)        ``W * C``
columns    ``W`` (left to right)        ``H * C``
pixels     ``H * W`` (raster order)     ``C``
patches    ``(H/ph) * (W/pw)`` (raster) ``ph * pw * C``
========== ============================ =======================

The functions work on numpy arrays and torch tensors alike, so estimators can convert each
batch inside their torch module instead of copying a whole data set.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._validation import check_image_shape, check_images

ORDERS = ("rows", "columns", "pixels", "patches")


def check_patch_size(patch_size, order: str, image_shape: tuple[int, int, int]):
    """Validate ``patch_size`` for ``order`` and the image size; return ``(ph, pw)`` or ``None``."""
    if order != "patches":
        return None
    if patch_size is None:
        raise ValueError("order='patches' needs patch_size=(ph, pw), e.g. patch_size=(2, 2).")
    if isinstance(patch_size, numbers.Integral):
        patch_size = (patch_size, patch_size)
    if (
        not isinstance(patch_size, (tuple, list))
        or len(patch_size) != 2
        or not all(isinstance(p, numbers.Integral) and p >= 1 for p in patch_size)
    ):
        raise ValueError(
            f"patch_size must be a positive int or a pair of positive ints, got {patch_size!r}."
        )
    ph, pw = int(patch_size[0]), int(patch_size[1])
    height, width = image_shape[:2]
    if height % ph or width % pw:
        raise ValueError(
            f"patch_size=({ph}, {pw}) does not tile images of {height}x{width} pixels; "
            "the image height and width must be multiples of the patch height and width."
        )
    return ph, pw


def sequence_shape(image_shape, order: str, patch_size=None) -> tuple[int, int]:
    """``(T, F)``: the sequence length and features per step for images of ``image_shape``."""
    height, width, channels = image_shape
    if order == "rows":
        return height, width * channels
    if order == "columns":
        return width, height * channels
    if order == "pixels":
        return height * width, channels
    ph, pw = patch_size
    return (height // ph) * (width // pw), ph * pw * channels


def _permute(x, axes):
    return x.permute(*axes) if isinstance(x, torch.Tensor) else x.transpose(axes)


def images_to_sequences(images, order: str, patch_size=None):
    """Read an image batch ``(n, H, W, C)`` as sequences ``(n, T, F)`` (numpy or torch)."""
    n, height, width, channels = images.shape
    if order == "rows":
        return images.reshape(n, height, width * channels)
    if order == "columns":
        return _permute(images, (0, 2, 1, 3)).reshape(n, width, height * channels)
    if order == "pixels":
        return images.reshape(n, height * width, channels)
    ph, pw = patch_size
    tiles = images.reshape(n, height // ph, ph, width // pw, pw, channels)
    tiles = _permute(tiles, (0, 1, 3, 2, 4, 5))
    return tiles.reshape(n, (height // ph) * (width // pw), ph * pw * channels)


def sequences_to_images(sequences, image_shape, order: str, patch_size=None):
    """The exact inverse of :func:`images_to_sequences`."""
    n = sequences.shape[0]
    height, width, channels = image_shape
    if order == "rows":
        return sequences.reshape(n, height, width, channels)
    if order == "columns":
        return _permute(sequences.reshape(n, width, height, channels), (0, 2, 1, 3))
    if order == "pixels":
        return sequences.reshape(n, height, width, channels)
    ph, pw = patch_size
    tiles = sequences.reshape(n, height // ph, width // pw, ph, pw, channels)
    return _permute(tiles, (0, 1, 3, 2, 4, 5)).reshape(n, height, width, channels)


def _time_step_name(order: str) -> str:
    return {"rows": "row", "columns": "column", "pixels": "pixel", "patches": "patch"}[order]


class ImageToSequence(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Turn images into sequences ``(n, T, F)`` that a recurrent network reads.

    Parameters
    ----------
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)``: the shape of each image when ``X`` is given as flat rows
        ``(n, H * W * C)``. Without it, a 2-D ``X`` is read as a univariate sequence
        ``(n, n_features, 1)`` (each feature one time step) and 3-D or 4-D ``X`` is taken as
        images ``(n, H, W)`` or ``(n, H, W, C)``.
    order : {"rows", "columns", "pixels", "patches"}, default="rows"
        How an image becomes a sequence: one time step per row (``F = W * C``), per column
        (``F = H * C``), per pixel in raster order (``F = C``), or per non-overlapping patch in
        raster order (``F = ph * pw * C``, as in ReNet).
    patch_size : int or tuple of int, default=None
        ``(ph, pw)`` for ``order="patches"``; it must tile the image.
    scale : "auto", float or None, default="auto"
        ``"auto"`` divides ``uint8`` images by 255 to ``[0, 1]`` and leaves other dtypes
        untouched; a number divides every value by it; ``None`` never scales.

    Attributes
    ----------
    image_shape_ : tuple of int
        ``(H, W, C)`` of the images seen in ``fit``.
    sequence_shape_ : tuple of int
        ``(T, F)`` of the sequences that ``transform`` returns.
    n_features_in_ : int
        The number of values per input sample, ``H * W * C``.
    feature_names_in_ : ndarray of str
        Names of the input columns, when ``X`` was a DataFrame.

    Notes
    -----
    :meth:`get_feature_names_out` names the time steps (axis 1 of the output), for example
    ``row0, row1, ...``, since those are the columns of the sequence representation.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn import ImageToSequence
    >>> images = np.arange(2 * 4 * 6, dtype=np.uint8).reshape(2, 4, 6)
    >>> ImageToSequence(order="columns").fit_transform(images).shape
    (2, 6, 4)
    >>> ImageToSequence(order="patches", patch_size=(2, 3)).fit_transform(images).shape
    (2, 4, 6)
    """

    _parameter_constraints: dict = {
        "image_shape": [tuple, list, None],
        "order": [StrOptions(set(ORDERS))],
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list, None],
        "scale": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither"), None],
    }

    def __init__(self, image_shape=None, order="rows", patch_size=None, scale="auto"):
        self.image_shape = image_shape
        self.order = order
        self.patch_size = patch_size
        self.scale = scale

    def fit(self, X, y=None):
        """Learn the image shape of ``X``.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, H * W * C)
            Images, or flat rows together with ``image_shape``.
        y : ignored

        Returns
        -------
        self : ImageToSequence
        """
        self._validate_params()
        image_shape = check_image_shape(self.image_shape)
        images = check_images(self, X, reset=True, image_shape=image_shape)
        self._patch_size = check_patch_size(self.patch_size, self.order, self.image_shape_)
        self.sequence_shape_ = sequence_shape(self.image_shape_, self.order, self._patch_size)
        self._input_dtype = images.dtype
        return self

    def _divisor(self, dtype) -> float | None:
        if self.scale is None:
            return None
        if self.scale == "auto":
            return 255.0 if dtype == np.uint8 else None
        return float(self.scale)

    def transform(self, X):
        """Turn images into float32 sequences ``(n, T, F)``.

        Parameters
        ----------
        X : array-like
            Images of the shape seen in ``fit``.

        Returns
        -------
        sequences : ndarray of shape (n, T, F), dtype float32
        """
        check_is_fitted(self)
        images = check_images(self, X, reset=False, image_shape=check_image_shape(self.image_shape))
        sequences = images_to_sequences(images, self.order, self._patch_size)
        sequences = np.asarray(sequences, dtype=np.float32)
        divisor = self._divisor(images.dtype)
        if divisor is not None:
            sequences = sequences / np.float32(divisor)
        return np.ascontiguousarray(sequences, dtype=np.float32)

    def inverse_transform(self, X):
        """Turn sequences back into images, in the layout and dtype that ``fit`` saw.

        Parameters
        ----------
        X : array-like of shape (n, T, F)

        Returns
        -------
        images : ndarray
            ``(n, H * W * C)`` when ``fit`` saw flat rows, otherwise ``(n, H, W)`` or
            ``(n, H, W, C)`` like the input of ``fit``.
        """
        check_is_fitted(self)
        sequences = np.asarray(X)
        if sequences.ndim != 3 or sequences.shape[1:] != self.sequence_shape_:
            raise ValueError(
                f"inverse_transform expects sequences of shape (n, {self.sequence_shape_[0]}, "
                f"{self.sequence_shape_[1]}), got an array of shape {sequences.shape}."
            )
        images = sequences_to_images(sequences, self.image_shape_, self.order, self._patch_size)
        divisor = self._divisor(self._input_dtype)
        if divisor is not None:
            images = images * divisor
        if np.issubdtype(self._input_dtype, np.integer):
            info = np.iinfo(self._input_dtype)
            images = np.clip(np.rint(images), info.min, info.max)
        images = images.astype(self._input_dtype)
        return images.reshape((len(images),) + self._input_layout)

    def get_feature_names_out(self, input_features=None):
        """Names of the time steps (axis 1 of the output), e.g. ``row0, row1, ...``.

        For a 2-D input read as a univariate sequence, each input feature is a time step and
        keeps its name.
        """
        check_is_fitted(self)
        from sklearn.utils.validation import _check_feature_names_in

        if self._input_layout == (self.n_features_in_,) and self.image_shape is None:
            return _check_feature_names_in(self, input_features)
        if input_features is not None:
            _check_feature_names_in(self, input_features)
        step = _time_step_name(self.order)
        return np.asarray([f"{step}{t}" for t in range(self.sequence_shape_[0])], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
