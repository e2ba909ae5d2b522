"""Progressive resizing: the first epochs of a fit train on images at half their size.

A segmenter's training step on half-size photos costs about a sixth of a full-size one (a
quarter of the pixels, and half the sequential steps of every sweep), and the network learns
most of what it will know from them: on CamVid's 367 road photos, 20 of 27 epochs at half size
and 7 at full size reach a higher validation mean IoU (0.52-0.56 in three runs) than 27
epochs at full size (0.512) in 38-39 % of the time, and far higher than 11 epochs at full size
in the same time (0.403; ``benchmarks/README.md``). The closing epochs at full size adapt
it to the size it predicts at; predictions always run at full size.

:class:`Downscaled` changes the training batches (after any augmentation), and
:class:`CoarseToFine` tells it, epoch by epoch, whether to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from skorch.callbacks import Callback
from torch.nn import functional as F

# How much smaller the images of the coarse epochs are, along each side.
COARSE_FACTOR = 2


class Downscaled:
    """A training-batch transform: the batch augmented as before, then, while ``coarse``, its
    images scaled down by ``factor`` along each side (bilinear with antialiasing) and their
    masks with them (one of the pixels nearest each new pixel's centre, so ignored pixels stay
    ignored).

    Parameters
    ----------
    augment : callable or None
        The transform before it (:class:`skrnn._augment.Augmenter`), or None.
    factor : int
        The scale-down factor of the coarse epochs.
    """

    def __init__(self, augment=None, factor: int = COARSE_FACTOR):
        self.augment = augment
        self.factor = factor
        self.coarse = False

    def __call__(self, X, y):
        if self.augment is not None:
            X, y = self.augment(X, y)
        if not self.coarse:
            return X, y
        images = X["X"] if isinstance(X, Mapping) else X
        f = self.factor
        height, width = images.shape[1] // f, images.shape[2] // f
        small = F.interpolate(
            images.permute(0, 3, 1, 2).float(),
            size=(height, width),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        small = small.permute(0, 2, 3, 1).contiguous()
        if not images.is_floating_point():  # integer images keep whole values
            small = small.round()
        small = small.to(images.dtype)
        masks = y[:, f // 2 :: f, f // 2 :: f][:, :height, :width].contiguous()
        if isinstance(X, Mapping):
            return {**X, "X": small}, masks
        return small, masks


class CoarseToFine(Callback):
    """Train the first ``coarse_epochs`` epochs of a training call on downscaled images.

    It switches the :class:`Downscaled` transform of the net's training batches
    (``iterator_train__augment``) on before each of those epochs and off afterwards.

    Parameters
    ----------
    coarse_epochs : int
        Epochs at the smaller size.
    """

    def __init__(self, coarse_epochs: int):
        self.coarse_epochs = coarse_epochs

    def on_train_begin(self, net, **kwargs):
        self.epochs_ = 0  # epochs of this training call

    def on_epoch_begin(self, net, **kwargs):
        transform = getattr(net, "iterator_train__augment", None)
        if isinstance(transform, Downscaled):
            transform.coarse = self.epochs_ < self.coarse_epochs

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1

    def on_train_end(self, net, **kwargs):
        transform = getattr(net, "iterator_train__augment", None)
        if isinstance(transform, Downscaled):
            transform.coarse = False

    def checkpoint_state(self) -> dict:
        """The epochs trained so far, as JSON data, for :mod:`skrnn._checkpoint`."""
        return {"epochs": self.epochs_}

    def restore_checkpoint_state(self, state: dict) -> None:
        self.epochs_ = state["epochs"]


def coarse_epochs(share: float, epochs: int) -> int:
    """The coarse epochs of a fit of ``epochs``: ``share`` of them, rounded to the nearest,
    and always at least one epoch at full size."""
    if share <= 0 or epochs < 2:
        return 0
    return min(int(math.floor(share * epochs + 0.5)), epochs - 1)
