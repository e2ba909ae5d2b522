"""``RNNSegmenter``: per-pixel labels from recurrent sweeps over the image (ReNet / ReSeg)."""

from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.sparse as sp
import torch
from numpy.typing import ArrayLike
from sklearn.utils._param_validation import Interval, StrOptions

from ._augment import AugmentMixin
from ._base import MAX_AUTO_EPOCHS, BaseRNNEstimator
from ._data import channel_statistics
from ._docs import fill_parameter_docs
from ._labels import LabelledTargetsMixin
from ._lazy import dask_aware
from ._renet import ReSegModel
from ._resizing import COARSE_FACTOR, CoarseToFine, Downscaled, coarse_epochs
from ._utils import probe_images
from ._validation import (
    check_head,
    check_images,
    check_input_statistics,
    check_int_pair,
    format_shape,
)
from .metrics import mean_iou

# progressive_resizing="auto": photos at least this many pixels high and wide train this share of
# their epochs at half size.
AUTO_RESIZING_SIDE = 64
AUTO_COARSE_SHARE = 0.75
# The encoded label of ignored pixels in the training targets (encoded classes are >= 0).
_IGNORED = -1

# Pixels per inference batch: bounds the memory of predict on large images.
_INFERENCE_PIXELS = 1 << 22
# On the CPU fewer: a batch's activations then stay in the caches, and one 180x240 photo at a
# time predicts about 1.5 times as fast as eight.
_CPU_INFERENCE_PIXELS = 1 << 16

# patch_size="auto" keeps the sweep grid at most this many patches along each side.
_AUTO_GRID_SIDE = 64


def auto_patch_size(height: int, width: int) -> tuple[int, int]:
    """The square patch of ``patch_size="auto"`` for images of ``height x width``: the
    smallest power of two, at least 2, that makes the sweep grid at most ``_AUTO_GRID_SIDE``
    patches along each side (2 up to 128 pixels, 4 up to 256, 8 up to 512, ...).

    Examples
    --------
    >>> auto_patch_size(32, 32), auto_patch_size(180, 240), auto_patch_size(1024, 768)
    ((2, 2), (4, 4), (16, 16))
    """
    side = 2
    while max(height, width) > side * _AUTO_GRID_SIDE:
        side *= 2
    return (side, side)


def _mean_iou_from_logits(y_true: np.ndarray, logits: np.ndarray) -> float:
    """Mean IoU of logits ``(n, K, H, W)`` against encoded masks, for early stopping."""
    return mean_iou(y_true, logits.argmax(axis=1), ignore_label=_IGNORED)


def _require_masks(y):
    if y is None:
        raise ValueError(
            "RNNSegmenter requires y to be passed, but the target y is None; pass the label "
            "masks of the images, of shape (n, H, W)."
        )
    return y


@fill_parameter_docs(
    hidden_size=(
        "int or tuple of int",
        """Units of the cell of each sweep. A tuple such as ``(32, 16)`` gives one ReNet layer
per entry.""",
    ),
    num_layers=(
        "int",
        """Number of ReNet layers, each sweeping the columns and then the rows (int
``hidden_size`` only).""",
    ),
    bidirectional=(
        "bool",
        """Sweep every column down and up and every row right and left, and concatenate the
directions. With False, only down and right: each pixel then sees only the part of the image
above and to the left of it.""",
    ),
    dropout=("float", "Dropout between ReNet layers and before the upsampling."),
    patch_size=(
        '"auto", int or tuple of int',
        """``(ph, pw)``: the sweeps read non-overlapping patches of this size, which makes them
``ph * pw`` times cheaper; the transposed convolution restores the full resolution. Images
whose size is not a multiple of the patch size are padded and cropped back. ``"auto"`` picks
square patches from the training images' size: the smallest power of two, at least 2, that
keeps the grid at most 64 patches along each side (2 for images up to 128 pixels, 4 up to
256, 8 up to 512, ...), so the cost of the sweeps stays bounded on large photos. The chosen
size is ``patch_size_``.""",
    ),
    head=(
        "tuple of int",
        """Widths of hidden layers of the per-pixel classifier, which reads each pixel's
upsampled features together with the pixel's own values.""",
    ),
    conv=(
        "tuple of int",
        """Widths of 3x3 convolution layers (with ReLU) that compute local features of every
pixel before the sweeps (texture, edges, colour contrasts). The sweeps and the per-pixel
classifier read the last layer's features beside the pixel's own values. ``()`` sweeps over
the pixel values alone.""",
    ),
    early_stopping=(
        "bool",
        """Hold out ``validation_fraction`` of the training images, stop when the validation
loss has not improved for ``n_iter_no_change`` epochs, and restore the weights of the best
epoch. The history then also records the validation mean IoU, ``valid_iou``.""",
    ),
    progressive_resizing=(
        '"auto", bool or float',
        """Train the first epochs of a fit on images scaled down to half their height and
width (masks with them), then the rest at full size: a step at half size costs about a sixth
as much, and the network learns most of what it will from them. A float is the share of the
epochs at half size; True is 0.75; ``"auto"`` is 0.75 for images at least 64 pixels high and
wide (without ``early_stopping``, whose fits have no length known beforehand) and False
otherwise; with ``early_stopping`` and a share, early stopping judges every epoch on
full-size validation images, the half-size epochs too. On CamVid's 367 road photos
(180x240), 20 of 27 epochs at half size reached a validation mean IoU of 0.557 in 473 s on two
cores, where 27 at full size reached 0.512 in 1,202 s and 11 at full size (the same time)
0.403. With
``max_epochs="auto"`` the training loss decides when to stop only from the first full-size
epoch on. Predictions always run at full size.""",
    ),
    ignore_label=(
        "int or None",
        """A label marking unlabelled pixels: they count neither in the loss nor in
:meth:`score`. Use it for void or "don't care" regions (e.g. ``255`` or ``-1``).""",
    ),
    class_weight=(
        'dict, "balanced", "balanced_sqrt" or None',
        """Weights per class in the loss, keyed by label; ``"balanced"`` weighs each class
inversely to its share of the (non-ignored) training pixels, and ``"balanced_sqrt"`` (the
default) inversely to the square root of that share: small classes (poles, signs, cells) get
more weight without the large ones losing their boundaries. None weighs every pixel alike.""",
    ),
    label_smoothing=(
        "float",
        "Share of each pixel's target spread over all classes in the cross-entropy loss.",
    ),
)
class RNNSegmenter(AugmentMixin, LabelledTargetsMixin, BaseRNNEstimator):
    """Label every pixel of an image with a recurrent network that sweeps it in 2-D.

    Each layer reads the image (or its non-overlapping patches) with recurrent cells down and
    up every column, then left and right along every row of the result, and concatenates the
    directions, so one layer already gives every position a view of the whole image (ReNet,
    Visin et al. 2015). The last layer's grid is upsampled back to full resolution by a
    transposed convolution and a per-pixel classifier gives each pixel's class scores
    (ReSeg, Visin et al. 2016). Images of other sizes than those seen in ``fit`` may be
    segmented.

    Before the sweeps, two 3x3 convolutions compute local features of every pixel, which the
    sweeps read in patches, beside the pixel values, and the per-pixel classifier reads again
    beside the upsampled grid.
    The defaults (two 3x3 convolutions of 16 and 32 channels, patches of 2x2 pixels on small
    images and 4x4 on photos, two layers of bidirectional GRU sweeps of 32 units, a loss that
    weighs classes by the inverse square root of their frequency, at least 1,200 gradient
    steps of 8 images) are chosen on real photos: see ``benchmarks/camvid.py`` and
    ``benchmarks/segmentation.py`` for their figures.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels found in the training masks (``ignore_label`` excluded), sorted.
    n_features_in_ : int
        Values per training image (``H * W * C``).
    image_shape_ : tuple of int
        ``(H, W, C)`` of the training images.
    patch_size_ : tuple of int
        ``(ph, pw)``, the patch size of the sweeps (``patch_size`` resolved).
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module
        (``skrnn._renet.ReSegModel``).
    history_ : list of dict
        Per-epoch training record (``train_loss`` and, with early stopping, ``valid_loss``
        and ``valid_iou``).
    n_iter_ : int
        Epochs trained.

    See Also
    --------
    skrnn.metrics.mean_iou : The score of this estimator.
    skrnn.datasets.make_shapes : A synthetic segmentation data set.

    Examples
    --------
    >>> from skrnn.datasets import make_shapes
    >>> from skrnn import RNNSegmenter
    >>> X, Y = make_shapes(n_samples=20, image_size=16, random_state=0)
    >>> seg = RNNSegmenter(hidden_size=8, max_epochs=2, random_state=0).fit(X, Y)
    >>> seg.predict(X[:3]).shape
    (3, 16, 16)
    >>> seg.predict_proba(X[:3]).shape
    (3, 16, 16, 4)
    >>> 0.0 <= seg.score(X, Y) <= 1.0
    True
    """

    _parameter_constraints: dict = {
        **BaseRNNEstimator._parameter_constraints,
        "augment": AugmentMixin._augment_constraint,
        "bidirectional": ["boolean"],
        "patch_size": [
            StrOptions({"auto"}),
            Interval(numbers.Integral, 1, None, closed="left"),
            tuple,
            list,
            None,
        ],
        "head": [tuple, list, None],
        "conv": [tuple, list, None],
        "ignore_label": [numbers.Integral, None],
        "class_weight": LabelledTargetsMixin._class_weight_constraint,
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
        "progressive_resizing": [
            StrOptions({"auto"}),
            "boolean",
            Interval(numbers.Real, 0, 1, closed="left"),
        ],
    }
    _valid_score = ("valid_iou", _mean_iou_from_logits)
    _module_class = ReSegModel
    # What model files saved before ``conv`` existed hold.
    _value_before_parameter_existed = {
        **BaseRNNEstimator._value_before_parameter_existed,
        "conv": (),
        "progressive_resizing": False,
    }
    _base_epochs = 10
    _min_updates = 1200
    _cpu_batch_size = 8
    _sample_noun = "Images"
    # What photographs and micrographs allow: mirrored scenes, framing, zoom and exposure.
    _standard_augmentation = {"hflip": True, "shift": 0.1, "scale": 0.15, "intensity": 0.1}

    def __init__(
        self,
        cell="gru",
        hidden_size=32,
        num_layers=2,
        bidirectional=True,
        dropout=0.0,
        patch_size="auto",
        head=(32,),
        conv=(16, 32),
        max_epochs="auto",
        batch_size="auto",
        lr=1e-2,
        optimizer="adam",
        weight_decay=0.0,
        lr_schedule="onecycle",
        max_grad_norm=5.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-3,
        ignore_label=None,
        class_weight="balanced_sqrt",
        label_smoothing=0.0,
        augment=False,
        progressive_resizing="auto",
        device="auto",
        precision="float32",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
        checkpoint=None,
        distributed="auto",
    ):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.patch_size = patch_size
        self.head = head
        self.conv = conv
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.ignore_label = ignore_label
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.augment = augment
        self.progressive_resizing = progressive_resizing
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.distributed = distributed

    @property
    def patch_size_(self) -> tuple[int, int]:
        return self._patch_size

    # ----------------------------------------------------------------- public API
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> RNNSegmenter:
        """Train the network on images ``X`` with label masks ``y``.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, H, W, C)
            Images of any numeric dtype (uint8 and memory maps are read batch by batch).
        y : array-like of shape (n, H, W)
            Integer label masks: one non-negative class label per pixel, or ``ignore_label``
            for unlabelled pixels.
        sample_weight : array-like of shape (n,), default=None
            Per-image weights in the loss.

        Returns
        -------
        self : RNNSegmenter
            The fitted segmenter.
        """
        return self._fit(X, _require_masks(y), sample_weight)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> RNNSegmenter:
        """Train for one epoch on ``X``, ``y``, continuing from the current weights.

        Partial fits use every image for training (no early stopping) and a constant
        learning rate.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, H, W, C)
            Images, as in :meth:`fit`.
        y : array-like of shape (n, H, W)
            Label masks, as in :meth:`fit`.
        classes : array-like, default=None
            Every label that will ever appear in the masks; required on the first call.
        sample_weight : array-like of shape (n,), default=None
            Per-image weights in the loss.

        Returns
        -------
        self : RNNSegmenter
            The segmenter, trained for one more epoch.
        """
        classes = self._partial_fit_classes(classes)
        return self._fit(X, _require_masks(y), sample_weight, partial=True, classes=classes)

    @dask_aware(lambda self, X: (tuple(X.shape[1:3]) + (len(self.classes_),), np.float32))
    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities of every pixel, in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, H, W, C)
            Images with the channels of the training images; their height and width may
            differ from the training images.

        Returns
        -------
        proba : ndarray of shape (n, H, W, n_classes), float32
            The probability of each class at each pixel.
        """
        logits = np.moveaxis(self._forward(X), 1, -1)
        logits -= logits.max(axis=-1, keepdims=True)
        proba = np.exp(logits, out=logits)
        proba /= proba.sum(axis=-1, keepdims=True)
        return proba

    def _probe_outputs(self, pixels: int) -> np.ndarray:
        # The segmenter reads images of any size: a square crop reads every layer.
        height, width, channels = self.image_shape_
        side = max(1, math.isqrt(pixels))
        return self._probe(probe_images((min(height, side), min(width, side), channels)))

    @dask_aware(lambda self, X: (tuple(X.shape[1:3]), self.classes_.dtype))
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Label masks: the most probable class of every pixel.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, H, W, C)
            Images with the channels of the training images; their height and width may
            differ from the training images.

        Returns
        -------
        masks : ndarray of shape (n, H, W)
            Labels from ``classes_``, in the dtype of the training masks.
        """
        logits = self._forward(X)
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Mean intersection over union of the predicted masks, over the classes.

        Pixels labelled ``ignore_label`` in ``y`` are left out (see
        :func:`skrnn.metrics.mean_iou`).

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, H, W, C)
            Images.
        y : array-like of shape (n, H, W)
            True label masks.
        sample_weight : None
            Not supported; accepted for compatibility with sklearn's tools.

        Returns
        -------
        score : float
            The mean IoU over the classes present in ``y`` or in the predictions.
        """
        if sample_weight is not None:
            raise ValueError("RNNSegmenter.score does not support sample_weight.")
        predicted = self.predict(X)
        masks = np.asarray(_require_masks(y))
        if masks.shape != predicted.shape:
            raise ValueError(
                f"y must hold one label mask per image, of shape "
                f"{format_shape(predicted.shape)} like X; got an array of shape "
                f"{format_shape(masks.shape)}."
            )
        labelled = masks if self.ignore_label is None else masks[masks != self.ignore_label]
        self._check_known_labels(labelled)
        return mean_iou(masks, predicted, ignore_label=self.ignore_label)

    # ----------------------------------------------------------------- hooks
    def _check_params(self) -> None:
        super()._check_params()
        check_head(self.head)
        check_head(self.conv, "conv")

    def _coarse_share(self) -> float:
        """The share of a fit's epochs trained at half size (``progressive_resizing``).

        ``"auto"`` leaves early stopping's fits at full size: their length is not known
        beforehand, and early stopping could end them before the first full-size epoch.

        Raises
        ------
        ValueError
            If resizing is asked for images less than 2 pixels high or wide.
        """
        setting, side = self.progressive_resizing, min(self.image_shape_[:2])
        if setting == "auto":
            large = side >= AUTO_RESIZING_SIDE and not self.early_stopping
            return AUTO_COARSE_SHARE if large else 0.0
        share = AUTO_COARSE_SHARE if setting is True else float(setting)  # False is 0.0
        if share > 0 and side < COARSE_FACTOR:
            raise ValueError(
                f"progressive_resizing={setting!r} trains on images scaled down by "
                f"{COARSE_FACTOR}, but these images are {side} pixel(s) high or wide; use "
                "progressive_resizing=False."
            )
        return share

    def _expected_auto_epochs(self) -> int:
        """The whole budget: a thousand steps on large photos are all a segmenter gets, and
        they train to the budget's end, so the warm-up spans 30 % of it as before the budget
        could stop early (on CamVid's 367 photos, a warm-up over 30 % of the 10 base epochs
        instead of the 27 of the budget gave a validation mean IoU of 0.507 against 0.557)."""
        return MAX_AUTO_EPOCHS

    def _augmenter(self):
        augment = super()._augmenter()
        if self._coarse_share() > 0:
            return Downscaled(augment)
        return augment

    def _training_setup(self, n_train: int, seed: int, *, partial: bool) -> dict:
        setup = super()._training_setup(n_train, seed, partial=partial)
        coarse = 0 if partial else coarse_epochs(self._coarse_share(), setup["epochs"])
        if coarse:
            callbacks = setup["callbacks"]
            for entry in callbacks:
                if isinstance(entry, tuple) and entry[0] == "converged":
                    entry[1].first_epoch = coarse  # the loss of full-size images only
            # Before the user's callbacks, which then see each epoch at its size.
            callbacks.insert(2, ("coarse_to_fine", CoarseToFine(coarse)))
        return setup

    def _check_X(self, X, *, reset):
        shape = getattr(X, "shape", None)
        if shape is None and isinstance(X, (list, tuple)):
            shape = np.shape(X)
        # A dense 2-D array is one image or flat rows, never a batch of images: say so before
        # the shared checks compare its width with the fitted one. Sparse, empty or complex
        # input gets sklearn's own messages from the shared checks.
        if (
            shape is not None
            and len(shape) == 2
            and 0 not in shape
            and not sp.issparse(X)
            and not np.iscomplexobj(X)
        ):
            raise ValueError(
                f"X has shape {format_shape(shape)}, but RNNSegmenter expects a batch of "
                "images (n, H, W) or (n, H, W, C). Reshape flat rows to images first, or use "
                "X[np.newaxis] for a single image."
            )
        images = check_images(self, X, reset=reset, fixed_size=False)
        if reset:
            if self.patch_size is None:
                self._patch_size = (1, 1)
            elif isinstance(self.patch_size, str):  # "auto"
                self._patch_size = auto_patch_size(*images.shape[1:3])
            else:
                self._patch_size = check_int_pair(self.patch_size, "patch_size", what="(ph, pw)")
        return images

    def _check_masks(self, y, images) -> np.ndarray:
        masks = np.asarray(y)
        expected = tuple(images.shape[:3])
        if masks.shape != expected:
            hint = ""
            if masks.ndim == 4 and masks.shape[:3] == expected and masks.shape[3] == 1:
                hint = " Drop the last axis: y[..., 0]."
            raise ValueError(
                f"y must hold one label mask per image, of shape (n, H, W) = "
                f"{format_shape(expected)} to match X; got an array of shape "
                f"{format_shape(masks.shape)}.{hint}"
            )
        if masks.dtype == bool:
            return masks.astype(np.int64)
        if not np.issubdtype(masks.dtype, np.number) or np.iscomplexobj(masks):
            raise ValueError(
                f"y must hold integer class labels, got an array of dtype {masks.dtype}."
            )
        if not np.issubdtype(masks.dtype, np.integer):
            integral = np.isfinite(masks) & (np.mod(masks, 1) == 0)
            if not integral.all():
                example = masks[~integral].flat[0]
                raise ValueError(
                    f"y must hold integer class labels, but it holds non-integer values such "
                    f"as {example!r}."
                )
            masks = masks.astype(np.int64)
        negative = masks < 0
        if self.ignore_label is not None:
            negative &= masks != self.ignore_label
        if negative.any():
            found = np.unique(masks[negative]).tolist()
            raise ValueError(
                f"y holds negative labels {found[:5]}; class labels must be non-negative "
                f"integers. Mark unlabelled pixels with ignore_label (currently "
                f"{self.ignore_label!r}), e.g. ignore_label={found[0]}."
            )
        return masks

    def _encode_targets(self, y, images, *, fitting, classes=None):
        masks = self._check_masks(y, images)
        labelled = masks != self.ignore_label if self.ignore_label is not None else None
        labels = np.unique(masks if labelled is None else masks[labelled])
        if fitting:
            self._learn_classes(labels, classes)
            ignored = f" besides ignore_label={self.ignore_label!r}"
            self._require_two_classes(
                noun="label", context=ignored if self.ignore_label is not None else ""
            )
        self._check_known_labels(labels)
        dtype = np.int16 if len(self.classes_) < np.iinfo(np.int16).max else np.int32
        encoded = np.searchsorted(self.classes_, masks).astype(dtype)
        if labelled is not None:
            encoded[~labelled] = _IGNORED
        return encoded

    def _check_fitted(self) -> None:
        super()._check_fitted()
        if self.classes_.dtype.kind not in "iu" or self.ignore_label in self.classes_:
            raise ValueError(
                f"classes_ should hold the integer labels of the masks (without ignore_label="
                f"{self.ignore_label!r}), got {self.classes_!r:.100}."
            )
        height, width, channels = self.image_shape_
        if self.patch_size is None:
            patch_size = (1, 1)
        elif isinstance(self.patch_size, str):  # "auto"
            patch_size = auto_patch_size(height, width)
        else:
            patch_size = check_int_pair(self.patch_size, "patch_size", what="(ph, pw)")
        if self._patch_size != patch_size:
            raise ValueError(
                f"_patch_size should be {patch_size}, from patch_size={self.patch_size!r:.40} "
                f"and image_shape_={self.image_shape_}, got {self._patch_size!r:.40}."
            )
        check_input_statistics(self._input_mean, self._input_std, channels)

    def _learn_inputs(self, images) -> None:
        self._input_mean, self._input_std = channel_statistics(images)

    def _module_params(self):
        return {
            "n_channels": self.image_shape_[2],
            "n_outputs": len(self.classes_),
            "cell": self.cell,
            "hidden_size": self._hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "patch_size": self._patch_size,
            "head": check_head(self.head),
            "conv": check_head(self.conv, "conv"),
            "input_mean": self._input_mean,
            "input_std": self._input_std,
        }

    def _criterion_params(self):
        return {
            "kind": "cross_entropy",
            "class_weight": self._class_weight,
            "ignore_index": _IGNORED,
            "label_smoothing": self.label_smoothing,
        }

    def _inference_batch_size(self, values_per_image):
        # Also bound the pixels per batch, below a training batch if need be: images at
        # predict time may be much larger than the training images.
        pixels = max(1, int(values_per_image) // self.image_shape_[2])
        on_cpu = torch.device(self.net_.device).type == "cpu"
        most = max(1, (_CPU_INFERENCE_PIXELS if on_cpu else _INFERENCE_PIXELS) // pixels)
        return min(super()._inference_batch_size(values_per_image), most)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags
