"""Reading images as sequences: the one place where image and sequence shapes are converted.

An image batch is always held as ``(n, H, W, C)``. It is read as a sequence ``(n, T, F)`` in one
of four orders (:func:`images_to_sequences`, and back with :func:`sequences_to_images`):

========== ============================ =======================
order      time steps ``T``             features per step ``F``
========== ============================ =======================
rows       ``H`` (top to bottom)        ``W * C``
columns    ``W`` (left to right)        ``H * C``
pixels     ``H * W`` (raster order)     ``C``
patches    ``(H/ph) * (W/pw)`` (raster) ``ph * pw * C``
========== ============================ =======================

The other readings the estimators' modules use live here too:

* :func:`patch_grid` cuts images into a grid of patch vectors ``(n, H/ph, W/pw, ph * pw * C)``,
  padding them to a multiple of the patch size (the segmenter's sweeps read such grids),
  :func:`grid_to_images` puts patch vectors back together as images, and
  :func:`grid_lines` / :func:`lines_to_grid` fold every column (or row) of a grid into one
  sequence of a batch and back;
* :func:`raster_values` reads every value of an image in raster order ``(n, H * W * C)``, and
  :func:`causal_sources` tells, for each of those values, which earlier values lie in its
  causal window (the generator's pixel-by-pixel reading);
* :func:`embeddings_as_channels` turns a per-value embedding ``(n, H, W, C, E)`` into an image
  of ``C * E`` channels.

The functions work on numpy arrays and torch tensors alike, so estimators can convert each
batch inside their torch module instead of copying a whole data set.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._validation import check_image_shape, check_images, check_int_pair

__all__ = [
    "ORDERS",
    "ImageToSequence",
    "causal_sources",
    "check_patch_size",
    "embeddings_as_channels",
    "grid_lines",
    "grid_to_images",
    "images_to_sequences",
    "lines_to_grid",
    "patch_grid",
    "raster_values",
    "sequence_shape",
    "sequences_to_images",
]

ORDERS = ("rows", "columns", "pixels", "patches")


def check_patch_size(patch_size, order: str, image_shape: tuple[int, int, int]):
    """Validate ``patch_size`` for ``order`` and the image size; return ``(ph, pw)`` or ``None``.

    Parameters
    ----------
    patch_size : int, pair of int or None
        The ``patch_size`` parameter.
    order : str
        The reading order; only ``"patches"`` uses a patch size.
    image_shape : tuple of int
        ``(H, W, C)`` of the images, which the patches must tile.

    Returns
    -------
    patch_size : tuple of int or None
        ``(ph, pw)`` for ``order="patches"``, else None.

    Raises
    ------
    ValueError
        If the order needs a patch size and it is missing, malformed, or does not tile the
        images.
    """
    if order != "patches":
        return None
    if patch_size is None:
        raise ValueError("order='patches' needs patch_size=(ph, pw), e.g. patch_size=(2, 2).")
    ph, pw = check_int_pair(patch_size, "patch_size", what="(ph, pw)")
    height, width = image_shape[:2]
    if height % ph or width % pw:
        raise ValueError(
            f"patch_size=({ph}, {pw}) does not tile images of {height}x{width} pixels; "
            "the image height and width must be multiples of the patch height and width."
        )
    return ph, pw


def sequence_shape(image_shape, order: str, patch_size=None) -> tuple[int, int]:
    """``(T, F)``: the sequence length and features per step for images of ``image_shape``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W, C)``.
    order : {"rows", "columns", "pixels", "patches"}
        The reading order.
    patch_size : tuple of int, default=None
        ``(ph, pw)`` for ``order="patches"``.

    Returns
    -------
    shape : tuple of int
        ``(T, F)``.

    Examples
    --------
    >>> from skrnn.sequence import sequence_shape
    >>> sequence_shape((8, 6, 3), "columns")
    (6, 24)
    """
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
    """Read an image batch ``(n, H, W, C)`` as sequences ``(n, T, F)`` (numpy or torch).

    Parameters
    ----------
    images : ndarray or torch.Tensor of shape (n, H, W, C)
        An image batch.
    order : {"rows", "columns", "pixels", "patches"}
        The reading order (see the module description).
    patch_size : tuple of int, default=None
        ``(ph, pw)`` for ``order="patches"``; it must tile the images.

    Returns
    -------
    sequences : ndarray or torch.Tensor of shape (n, T, F)
        Of the type of ``images``; a view where the order allows one.
    """
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
    """The exact inverse of :func:`images_to_sequences`.

    Parameters
    ----------
    sequences : ndarray or torch.Tensor of shape (n, T, F)
        Sequences read in ``order``.
    image_shape : tuple of int
        ``(H, W, C)`` of the images.
    order : {"rows", "columns", "pixels", "patches"}
        The order they were read in.
    patch_size : tuple of int, default=None
        ``(ph, pw)`` for ``order="patches"``.

    Returns
    -------
    images : ndarray or torch.Tensor of shape (n, H, W, C)
    """
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


def patch_grid(images, patch_size):
    """Cut images ``(n, H, W, C)`` into a grid of patch vectors ``(n, rows, cols, ph * pw * C)``.

    Images whose height or width is not a multiple of the patch size are padded with zeros at
    the bottom and right first, so ``rows = ceil(H / ph)`` and ``cols = ceil(W / pw)``. Each
    vector holds its patch's values in the order of ``order="patches"``.

    Parameters
    ----------
    images : ndarray or torch.Tensor of shape (n, H, W, C)
        An image batch.
    patch_size : tuple of int
        ``(ph, pw)``.

    Returns
    -------
    grid : ndarray or torch.Tensor of shape (n, rows, cols, ph * pw * C)
        Of the type of ``images``.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn.sequence import patch_grid
    >>> patch_grid(np.ones((2, 5, 6, 3)), (2, 2)).shape
    (2, 3, 3, 12)
    """
    n, height, width, channels = images.shape
    ph, pw = patch_size
    pad_h, pad_w = -height % ph, -width % pw
    if pad_h or pad_w:
        if isinstance(images, torch.Tensor):
            images = torch.nn.functional.pad(images, (0, 0, 0, pad_w, 0, pad_h))
        else:
            images = np.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    rows, cols = (height + pad_h) // ph, (width + pad_w) // pw
    return images_to_sequences(images, "patches", (ph, pw)).reshape(n, rows, cols, -1)


def grid_to_images(grid, patch_size):
    """The inverse of :func:`patch_grid` (before cropping any padding): images of the grid's
    patches, ``(n, rows * ph, cols * pw, C)`` from ``(n, rows, cols, ph * pw * C)``.

    Parameters
    ----------
    grid : ndarray or torch.Tensor of shape (n, rows, cols, ph * pw * C)
        Patch vectors in the order of ``order="patches"``.
    patch_size : tuple of int
        ``(ph, pw)``.

    Returns
    -------
    images : ndarray or torch.Tensor of shape (n, rows * ph, cols * pw, C)
    """
    n, rows, cols, features = grid.shape
    ph, pw = patch_size
    channels = features // (ph * pw)
    sequences = grid.reshape(n, rows * cols, features)
    return sequences_to_images(sequences, (rows * ph, cols * pw, channels), "patches", (ph, pw))


def grid_lines(grid, along: str):
    """Every column (``along="columns"``) or row of a grid ``(n, R, C, F)`` as one sequence.

    Columns give sequences ``(n * C, R, F)`` read top to bottom; rows ``(n * R, C, F)`` read
    left to right. :func:`lines_to_grid` puts them back.

    Parameters
    ----------
    grid : ndarray or torch.Tensor of shape (n, R, C, F)
        A grid of feature vectors.
    along : {"columns", "rows"}
        Which lines become the sequences.

    Returns
    -------
    sequences : ndarray or torch.Tensor
        ``(n * C, R, F)`` or ``(n * R, C, F)``.
    """
    n, rows, cols, features = grid.shape
    if along == "columns":
        return _permute(grid, (0, 2, 1, 3)).reshape(n * cols, rows, features)
    return grid.reshape(n * rows, cols, features)


def lines_to_grid(sequences, n: int, along: str):
    """The inverse of :func:`grid_lines`, for outputs with any number of features.

    Parameters
    ----------
    sequences : ndarray or torch.Tensor
        ``(n * C, R, F)`` for columns or ``(n * R, C, F)`` for rows.
    n : int
        Number of grids in the batch.
    along : {"columns", "rows"}
        The ``along`` the sequences were made with.

    Returns
    -------
    grid : ndarray or torch.Tensor of shape (n, R, C, F)
    """
    lines, length, features = sequences.shape
    if along == "columns":
        return _permute(sequences.reshape(n, lines // n, length, features), (0, 2, 1, 3))
    return sequences.reshape(n, lines // n, length, features)


def raster_values(images):
    """Every value of images ``(n, H, W, C)`` in raster order: ``(n, H * W * C)``.

    Parameters
    ----------
    images : ndarray or torch.Tensor of shape (n, H, W, C)
        An image batch.

    Returns
    -------
    values : ndarray or torch.Tensor of shape (n, H * W * C)
        Row by row, pixel by pixel, channel by channel.
    """
    return images.reshape(images.shape[0], -1)


def causal_sources(image_shape, context_radius: int) -> np.ndarray:
    """For every value in raster order, the earlier values that form its causal window.

    The window holds the previous value in raster order, the same channel of the pixels in
    the ``context_radius`` rows above and ``context_radius`` columns to each side (and to the
    left on the same row), and the earlier channels of the same pixel.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W, C)``.
    context_radius : int
        How far the causal window reaches up and to each side.

    Returns
    -------
    sources : ndarray of shape (H * W * C, n_sources)
        ``sources[t, s]`` is a step ``< t`` of :func:`raster_values`, or ``-1`` where the
        neighbour lies outside the image (or before the first step).

    Examples
    --------
    >>> from skrnn.sequence import causal_sources
    >>> causal_sources((2, 2, 1), 1)[3].tolist()   # the last pixel sees the three before it
    [2, 0, 1, -1, 2]
    """
    height, width, channels = image_shape
    n_steps = height * width * channels
    index = np.arange(n_steps).reshape(height, width, channels)
    rows, cols, chans = np.meshgrid(
        np.arange(height), np.arange(width), np.arange(channels), indexing="ij"
    )
    sources = [np.arange(n_steps) - 1]  # the previous value in raster order
    for di in range(-context_radius, 1):
        for dj in range(-context_radius, context_radius + 1):
            if di == 0 and dj >= 0:
                break
            r, c = rows + di, cols + dj
            inside = (r >= 0) & (c >= 0) & (c < width)
            source = np.full(index.shape, -1)
            source[inside] = index[r[inside], c[inside], chans[inside]]
            sources.append(source.ravel())
    for earlier in range(channels - 1):
        source = np.where(chans > earlier, index[:, :, earlier : earlier + 1], -1)
        sources.append(source.ravel())
    sources = np.stack(sources, axis=1)
    if not (sources < np.arange(n_steps)[:, None]).all():  # pragma: no cover - a bug guard
        raise AssertionError("a causal source must precede its step")
    return sources


def embeddings_as_channels(embedded):
    """Per-value embeddings ``(n, H, W, C, E)`` as images of ``C * E`` channels.

    Parameters
    ----------
    embedded : ndarray or torch.Tensor of shape (n, H, W, C, E)
        An embedding vector for every value of an image batch.

    Returns
    -------
    images : ndarray or torch.Tensor of shape (n, H, W, C * E)
    """
    return embedded.reshape(tuple(embedded.shape[:3]) + (-1,))


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

    def fit(self, X: ArrayLike, y=None) -> ImageToSequence:
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

    def transform(self, X: ArrayLike) -> np.ndarray:
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

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
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

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Names of the time steps (axis 1 of the output), e.g. ``row0, row1, ...``.

        For a 2-D input read as a univariate sequence, each input feature is a time step and
        keeps its name.

        Parameters
        ----------
        input_features : array-like of str, default=None
            The input feature names; checked against ``feature_names_in_`` when given.

        Returns
        -------
        names : ndarray of str
            One name per time step.
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
