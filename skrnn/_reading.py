"""Reading whole images as one sequence: what the classifier and the regressor share.

Their parameters ``order``, ``patch_size``, ``readout``, ``head``, ``bidirectional``,
``image_shape``, ``embedding_dim`` and ``n_tokens`` are checked here, the images (or flat rows,
sequences and token ids) are validated here, and the torch module that reads them,
:class:`skrnn._modules.SequenceModel`, gets its arguments here.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._data import channel_statistics
from ._modules import SequenceModel
from ._utils import probe_images
from ._validation import check_head, check_image_shape, check_images, check_input_statistics
from .sequence import ORDERS, check_patch_size


class SequenceReadingMixin:
    """Images read as sequences by a recurrent encoder, a readout and a dense head.

    The estimator that uses it defines ``_n_outputs()``, the width of the output layer.
    """

    _reading_parameter_constraints: dict = {
        "bidirectional": ["boolean"],
        "readout": [StrOptions({"last", "mean", "max"})],
        "head": [tuple, list, None],
        "image_shape": [tuple, list, None],
        "order": [StrOptions(set(ORDERS))],
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list, None],
        "embedding_dim": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_tokens": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }
    _module_class = SequenceModel

    def _check_params(self) -> None:
        super()._check_params()
        check_head(self.head)

    def _embeds(self) -> bool:
        """Whether inputs are integer ids (tokens or pixel levels) embedded as vectors."""
        return self.embedding_dim is not None

    def _input_dtype(self) -> torch.dtype:
        return torch.long if self._embeds() else torch.float32

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        images = check_images(self, X, reset=reset, image_shape=check_image_shape(self.image_shape))
        if reset:
            self._patch_size = check_patch_size(self.patch_size, self.order, self.image_shape_)
        if self._embeds():
            self._check_tokens(images, reset=reset)
        return images

    def _check_tokens(self, images, *, reset: bool) -> None:
        """Check integer ids for the embedding; on ``reset`` learn ``n_tokens_``."""
        if not np.issubdtype(images.dtype, np.integer):
            raise ValueError(
                f"embedding_dim is set, so X must hold integer token ids, but it has dtype "
                f"{images.dtype}. Pass integer ids in [0, n_tokens), or leave embedding_dim=None "
                "for real-valued inputs."
            )
        low, high = int(images.min()), int(images.max())
        if low < 0:
            raise ValueError(f"Token ids must be >= 0, but X contains {low}.")
        if reset:
            self.n_tokens_ = int(self.n_tokens) if self.n_tokens is not None else high + 1
        if high >= self.n_tokens_:
            raise ValueError(
                f"X contains token id {high}, but this model knows ids 0 to {self.n_tokens_ - 1} "
                f"(n_tokens={self.n_tokens_})."
            )

    def _check_fitted(self) -> None:
        """The patch size, vocabulary and input statistics that ``fit`` learns from images of
        ``image_shape_`` (of a saved model; see :meth:`BaseRNNEstimator._check_fitted`)."""
        super()._check_fitted()
        patch_size = check_patch_size(self.patch_size, self.order, self.image_shape_)
        if self._patch_size != patch_size:
            raise ValueError(
                f"_patch_size should be {patch_size}, from patch_size={self.patch_size!r:.40} "
                f"and order={self.order!r}, got {self._patch_size!r:.40}."
            )
        if self._embeds():
            n_tokens = self.n_tokens_
            if (
                not isinstance(n_tokens, numbers.Integral)
                or isinstance(n_tokens, bool)
                or n_tokens < 1
                or (self.n_tokens is not None and n_tokens != self.n_tokens)
            ):
                raise ValueError(
                    f"n_tokens_ should be a positive int (n_tokens if set), got {n_tokens!r:.40}."
                )
        mean, std = self._input_mean, self._input_std
        if not self._embeds():
            check_input_statistics(mean, std, self.image_shape_[2])
        elif (mean, std) != ([0.0], [1.0]):  # ids are embedded, not scaled
            raise ValueError(
                f"_input_mean and _input_std should be [0.0] and [1.0] for a model that embeds "
                f"ids, got {mean!r:.60} and {std!r:.60}."
            )

    def _probe_outputs(self, pixels: int) -> np.ndarray:
        shape = _probe_shape(self.image_shape_, self.order, self._patch_size, pixels)
        if self._embeds():
            return self._probe(np.zeros((1, *shape), dtype=np.int64))
        return self._probe(probe_images(shape))

    def _learn_inputs(self, images) -> None:
        # Ids are embedded, not scaled.
        if self._embeds():
            self._input_mean, self._input_std = [0.0], [1.0]
        else:
            self._input_mean, self._input_std = channel_statistics(images)

    def _module_params(self) -> dict:
        return {
            "image_shape": self.image_shape_,
            "order": self.order,
            "patch_size": self._patch_size,
            "n_outputs": self._n_outputs(),
            "cell": self.cell,
            "hidden_size": self._hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "readout": self.readout,
            "head": check_head(self.head),
            "input_mean": self._input_mean,
            "input_std": self._input_std,
            "n_tokens": self.n_tokens_ if self._embeds() else None,
            "embedding_dim": self.embedding_dim,
        }


def _probe_shape(image_shape, order: str, patch_size, pixels: int) -> tuple[int, int, int]:
    """A crop of images of ``image_shape`` of at most ``pixels`` pixels, or of one step of the
    sequence that ``order`` reads (a row, a column, a patch) where that is more.

    The module reads sequences of any length, so the crop keeps only what fixes the size of a
    step: the width for rows, the height for columns, whole patches.

    >>> _probe_shape((10_000, 640, 3), "rows", None, 1024)
    (1, 640, 3)
    >>> _probe_shape((10_000, 640, 3), "pixels", None, 1024)
    (1, 640, 3)
    >>> _probe_shape((10_000, 640, 3), "patches", (4, 4), 1024)
    (4, 256, 3)
    """
    height, width, channels = image_shape
    if order == "rows":
        return max(1, min(height, pixels // width)), width, channels
    if order == "columns":
        return height, max(1, min(width, pixels // height)), channels
    ph, pw = patch_size if order == "patches" else (1, 1)
    tiles = max(1, pixels // (ph * pw))
    across = min(width // pw, tiles)
    down = max(1, min(height // ph, tiles // across))
    return down * ph, across * pw, channels
