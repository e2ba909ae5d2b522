"""Data augmentation: random flips, shifts, zooms and intensity changes of training batches.

An estimator with an ``augment`` parameter hands an :class:`Augmenter` to the loader of its
training batches, so every batch is changed afresh, the images and their label masks together,
and never at predict time or on the validation split. The draws come from the random
generator of the running fit (:mod:`skrnn._random`), which ``fit`` seeds from
``random_state``, so augmented fits are reproducible, in threads too.

The geometric changes (flips, shift, zoom) are one affine map per image, applied with
:func:`torch.nn.functional.grid_sample`: bilinear for the images, with the border values
extended outwards, and nearest-neighbour for label masks, whose pixels that come from outside
the image are ignored by the loss.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import torch
from sklearn.utils._param_validation import StrOptions
from torch.nn import functional as F

from ._data import small_to_device
from ._random import fit_generator

# The options of an ``augment`` dict, with the value that turns each off.
OPTIONS = {"hflip": False, "vflip": False, "shift": 0.0, "scale": 0.0, "intensity": 0.0}

# augment="auto" augments images at least this many pixels high and wide: a shift or zoom of a
# tenth of a smaller image moves its content by less than a pixel.
AUTO_MIN_SIDE = 16


def check_augment(augment, standard: Mapping) -> dict:
    """The augmentation options ``augment`` asks for, each of :data:`OPTIONS` set.

    Parameters
    ----------
    augment : bool or dict
        False: none. True: the estimator's ``standard`` options. A dict: the options it names
        (the others off): ``hflip`` / ``vflip`` (bool, flip half the images left-right /
        upside down), ``shift`` (float in [0, 0.5): move each image by up to this share of its
        width and height), ``scale`` (float in [0, 1): zoom in or out by up to this share) and
        ``intensity`` (float in [0, 1): change each image's contrast by up to this share and
        its brightness by up to this many standard deviations).
    standard : mapping
        The estimator's options for ``augment=True``.

    Returns
    -------
    options : dict
        Every option of :data:`OPTIONS`, all off for ``augment=False``.

    Raises
    ------
    ValueError
        If ``augment`` names an unknown option or gives an option a value out of range.
    """
    if augment is False:
        return dict(OPTIONS)
    chosen = dict(standard) if augment is True else dict(augment)
    unknown = sorted(set(chosen) - set(OPTIONS), key=str)
    if unknown:
        raise ValueError(
            f"augment has unknown options {unknown}; the options are {sorted(OPTIONS)}, e.g. "
            "augment={'shift': 0.1, 'hflip': True}."
        )
    limits = {"shift": 0.5, "scale": 1.0, "intensity": 1.0}
    for name, value in chosen.items():
        if name in limits:
            if (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not 0 <= value < limits[name]
            ):
                raise ValueError(
                    f"augment[{name!r}] must be a number in [0, {limits[name]:g}), got {value!r}."
                )
        elif not isinstance(value, bool):
            raise ValueError(f"augment[{name!r}] must be True or False, got {value!r}.")
    return {**OPTIONS, **chosen}


class Augmenter:
    """Random changes of a training batch: images ``(B, H, W, C)`` and, if any, masks ``(B, H, W)``.

    Called as ``augmenter(X, y)`` on a batch of :class:`skrnn._data.ArrayDataset`: ``X`` is a
    float tensor of images (or ``{"X": images, "sample_weight": w}``) and ``y`` the targets;
    targets of shape ``(B, H, W)`` are label masks and move with their images, others (class
    labels, regression targets) are left as they are.

    Parameters
    ----------
    hflip, vflip : bool
        Flip half of the images left-right / upside down.
    shift : float
        Move each image by up to this share of its width and height.
    scale : float
        Zoom each image in or out by up to this share.
    intensity : float
        Change each image's contrast by a factor in ``[1 - intensity, 1 + intensity]`` and
        its brightness by up to ``intensity`` standard deviations.
    mean, std : sequence of float
        Per-channel statistics of the training images, around which the intensity changes.
    fill_label : int, default=-1
        The target of mask pixels that come from outside the image: one the loss ignores.
    """

    def __init__(
        self,
        *,
        hflip: bool,
        vflip: bool,
        shift: float,
        scale: float,
        intensity: float,
        mean: Sequence[float],
        std: Sequence[float],
        fill_label: int = -1,
    ):
        self.hflip = hflip
        self.vflip = vflip
        self.shift = shift
        self.scale = scale
        self.intensity = intensity
        self.mean = list(mean)
        self.std = list(std)
        self.fill_label = fill_label

    @property
    def _geometric(self) -> bool:
        return self.hflip or self.vflip or self.shift > 0 or self.scale > 0

    def __call__(self, X, y):
        images = X["X"] if isinstance(X, Mapping) else X
        masks = y if y.dim() == 3 and y.shape == images.shape[:3] else None
        if self._geometric:
            images, masks = self._transform(images, masks)
        if self.intensity > 0:
            images = self._jitter(images)
        if masks is not None:
            y = masks
        if isinstance(X, Mapping):
            return {**X, "X": images}, y
        return images, y

    def _uniform(self, n: int, half_width: float) -> torch.Tensor:
        return (self._rand(n) * 2.0 - 1.0) * half_width

    @staticmethod
    def _rand(n: int) -> torch.Tensor:
        """``n`` uniform draws on the host, from the running fit's generator."""
        return torch.rand(n, generator=fit_generator("cpu"))

    def _transform(self, images, masks):
        """One random affine map per image: flips, shift and zoom."""
        n = images.shape[0]
        zoom = 1.0 + self._uniform(n, self.scale)
        theta = torch.zeros(n, 2, 3)
        # grid_sample reads the output pixel at x from the input at theta @ (x, y, 1).
        theta[:, 0, 0] = 1.0 / zoom
        theta[:, 1, 1] = 1.0 / zoom
        if self.hflip:
            theta[:, 0, 0] *= torch.where(self._rand(n) < 0.5, -1.0, 1.0)
        if self.vflip:
            theta[:, 1, 1] *= torch.where(self._rand(n) < 0.5, -1.0, 1.0)
        theta[:, 0, 2] = 2.0 * self._uniform(n, self.shift)  # coordinates span [-1, 1]
        theta[:, 1, 2] = 2.0 * self._uniform(n, self.shift)
        height, width = images.shape[1:3]
        # The draws stay on the host (the fit's CPU generator, the same on every device);
        # the maps go to the images' device without waiting for it.
        theta = small_to_device(theta, images.device)
        grid = F.affine_grid(theta, (n, 1, height, width), align_corners=False)
        channels_first = images.permute(0, 3, 1, 2).float()
        moved = F.grid_sample(
            channels_first, grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        images = moved.permute(0, 2, 3, 1).to(images.dtype)
        if masks is not None:
            labels = masks[:, None].float()
            inside = torch.ones_like(labels)
            labels = F.grid_sample(labels, grid, mode="nearest", align_corners=False)
            inside = F.grid_sample(inside, grid, mode="nearest", align_corners=False)
            labels = torch.where(inside > 0.5, labels, torch.full_like(labels, self.fill_label))
            masks = labels[:, 0].round().to(masks.dtype)
        return images, masks

    def _jitter(self, images):
        """A random contrast and brightness change per image, around the channel means."""
        n = images.shape[0]
        shape = (n, 1, 1, 1)
        device = images.device
        mean = small_to_device(torch.as_tensor(self.mean, dtype=images.dtype), device)
        std = small_to_device(torch.as_tensor(self.std, dtype=images.dtype), device)
        contrast = (1.0 + self._uniform(n, self.intensity)).reshape(shape).to(images.dtype)
        brightness = self._uniform(n, self.intensity).reshape(shape).to(images.dtype)
        contrast = small_to_device(contrast, device)
        brightness = small_to_device(brightness, device)
        return (images - mean) * contrast + mean + brightness * std


class AugmentMixin:
    """The ``augment`` parameter of an estimator that reads real-valued images.

    The estimator sets ``_standard_augmentation``, the options of ``augment=True``, and has
    learnt ``_input_mean`` / ``_input_std`` (the per-channel statistics) before its net is
    built.
    """

    _augment_constraint: list = ["boolean", dict, StrOptions({"auto"})]
    _standard_augmentation: dict = {}

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.augment, str):  # "auto" is resolved on the training images
            check_augment(self.augment, self._standard_augmentation)

    def _augmenter(self) -> Augmenter | None:
        augment = self.augment
        if isinstance(augment, str):  # "auto"
            augment = (
                min(self.image_shape_[:2]) >= AUTO_MIN_SIDE and self._input_dtype() == torch.float32
            )
        options = check_augment(augment, self._standard_augmentation)
        if options == OPTIONS:
            return None
        if self._input_dtype() != torch.float32:
            raise ValueError(
                "augment changes pixel values, but this model reads integer ids "
                "(embedding_dim is set); use augment=False with embedding_dim."
            )
        return Augmenter(**options, mean=self._input_mean, std=self._input_std)
