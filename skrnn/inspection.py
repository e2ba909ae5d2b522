"""Which parts of an image drove a prediction: importance maps of fitted estimators.

:func:`importance_map` gives, for each image, a map of shape ``(H, W)``: how much each pixel
region moved the estimator's output for a class (classifier, segmenter) or a target
(regressor). Two attribution methods of `Captum <https://captum.ai>`_ are offered:

``"occlusion"``
    Each of the estimator's own reading units (a row, a column, a pixel or a patch of a
    classifier or regressor, as its ``order`` reads the image; a patch of a segmenter's sweeps)
    is replaced by the training mean, one unit at a time (Captum's ``FeatureAblation``), and
    the change of the output is the importance of every pixel of that unit. The units are
    found by running the estimator's own conversion (:func:`skrnn.sequence.sequences_to_images`,
    :func:`skrnn.sequence.grid_to_images`) on the units' indices, so the map shows exactly what
    the network reads as one step.
``"integrated_gradients"``
    Gradients of the output integrated along the straight path from the training-mean image
    to the image (Captum's ``IntegratedGradients``), summed over each pixel's channels; the
    values of a map add up to the output's change from the mean image to the image.

Attributions are computed on the images as the estimator receives them, before its
standardisation (which is inside the network), so they are already in pixels. Captum is an
optional dependency: ``pip install 'skrnn[inspect]'``.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted

from ._export import estimator_kind
from ._utils import torch_threads
from .sequence import grid_to_images, sequence_shape, sequences_to_images

__all__ = ["METHODS", "importance_map", "reading_units"]

METHODS = ("occlusion", "integrated_gradients")

# Images attributed at a time: bounds the memory of integrated gradients' n_steps copies.
_IMAGES_PER_BATCH = 16


def reading_units(estimator, height: int | None = None, width: int | None = None) -> np.ndarray:
    """The estimator's reading unit of every pixel: which step of its sequence reads it.

    A classifier or regressor reads an image as a sequence of rows, columns, pixels or
    patches (its ``order``); a segmenter's sweeps read a grid of patches (``patch_size_``).
    The map is made by the estimator's own conversion from sequence steps (or grid cells) to
    pixels, applied to the steps' indices.

    Parameters
    ----------
    estimator : fitted RNNImageClassifier, RNNImageRegressor or RNNSegmenter
        The estimator.
    height, width : int, default=None
        The image size, for a segmenter (which reads images of any size); by default that of
        its training images.

    Returns
    -------
    units : ndarray of shape (H, W), int64
        The index of each pixel's reading unit, from 0 in reading order.

    Examples
    --------
    >>> from skrnn import RNNImageClassifier
    >>> from skrnn.datasets import load_digits_images
    >>> from skrnn.inspection import reading_units
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = RNNImageClassifier(order="columns", hidden_size=4, max_epochs=1).fit(X[:50], y[:50])
    >>> reading_units(clf)[0]
    array([0, 1, 2, 3, 4, 5, 6, 7])
    """
    check_is_fitted(estimator, "net_")
    kind = estimator_kind(estimator, "importance_map")
    image_height, image_width, _ = estimator.image_shape_
    if kind == "segmenter":
        height = image_height if height is None else int(height)
        width = image_width if width is None else int(width)
        ph, pw = estimator._patch_size
        rows, cols = -(-height // ph), -(-width // pw)
        steps = np.arange(rows * cols).reshape(1, rows, cols, 1)
        grid = np.broadcast_to(steps, (1, rows, cols, ph * pw))
        return grid_to_images(grid, (ph, pw))[0, :height, :width, 0].astype(np.int64)
    shape = (image_height, image_width, 1)
    steps, features = sequence_shape(shape, estimator.order, estimator._patch_size)
    sequence = np.broadcast_to(np.arange(steps).reshape(1, steps, 1), (1, steps, features))
    images = sequences_to_images(sequence, shape, estimator.order, estimator._patch_size)
    return np.ascontiguousarray(images[0, :, :, 0]).astype(np.int64)


def _class_indices(estimator, labels, n: int) -> np.ndarray:
    """Indices into ``classes_`` of one label or one label per image."""
    classes = estimator.classes_
    labels = np.asarray(labels, dtype=object if classes.dtype.kind == "O" else None)
    labels = np.broadcast_to(labels, (n,)) if labels.ndim == 0 else labels
    if labels.shape != (n,):
        raise ValueError(
            f"target must be one class label or one per image ({n}), got an array of shape "
            f"{labels.shape}."
        )
    index = np.searchsorted(classes, labels).clip(0, len(classes) - 1)
    unknown = classes[index] != labels
    if np.any(unknown):
        raise ValueError(
            f"target {labels[unknown][0]!r} is not a class of this estimator; classes_ holds "
            f"{classes.tolist()!r:.200}."
        )
    return index


def _output_weights(estimator, kind: str, X, images, target, pixels) -> torch.Tensor:
    """How the attributed scalar is read off the outputs: one weight per output value.

    Classifier: a one-hot row of the target class (log-probabilities). Regressor: a one-hot
    row of the target output. Segmenter: the target class at each chosen pixel, averaged over
    the chosen pixels (log-probabilities).
    """
    n = len(images)
    if kind == "regressor":
        if target is None:
            if estimator.n_outputs_ != 1:
                raise ValueError(
                    f"This regressor has {estimator.n_outputs_} outputs; pass target=<index "
                    "of the output> to choose the one to explain."
                )
            target = 0
        if not isinstance(target, (int, np.integer)) or not 0 <= target < estimator.n_outputs_:
            raise ValueError(
                f"target must be the index of an output, from 0 to {estimator.n_outputs_ - 1}, "
                f"got {target!r:.40}."
            )
        weights = np.zeros((n, estimator.n_outputs_))
        weights[:, int(target)] = estimator._y_scale[int(target)]  # in the targets' units
        return torch.as_tensor(weights, dtype=torch.float32)
    n_classes = len(estimator.classes_)
    if kind == "classifier":
        if target is None:
            index = np.searchsorted(estimator.classes_, estimator.predict(X))
        else:
            index = _class_indices(estimator, target, n)
        weights = np.zeros((n, n_classes), dtype=np.float32)
        weights[np.arange(n), index] = 1.0
        return torch.as_tensor(weights)
    height, width = images.shape[1:3]
    chosen = np.ones((n, height, width), bool) if pixels is None else np.asarray(pixels, bool)
    chosen = np.broadcast_to(chosen, (n, height, width)) if chosen.ndim == 2 else chosen
    if chosen.shape != (n, height, width):
        raise ValueError(
            f"pixels must be a boolean mask of shape (H, W) = ({height}, {width}) or (n, H, W), "
            f"got shape {np.shape(pixels)}."
        )
    if not chosen.reshape(n, -1).any(axis=1).all():
        raise ValueError("pixels must choose at least one pixel of every image.")
    if target is None:  # each pixel's predicted class
        index = np.searchsorted(estimator.classes_, estimator.predict(X))
    else:
        index = np.broadcast_to(_class_indices(estimator, target, 1)[0], chosen.shape)
    weights = np.moveaxis(np.eye(n_classes, dtype=np.float32)[index], -1, 1)
    weights *= chosen[:, None]
    weights /= chosen.reshape(n, -1).sum(axis=1).reshape(n, 1, 1, 1)
    return torch.as_tensor(weights)


def _scalar_output(module, kind: str):
    """``f(images, weights)``: the attributed scalar of each image, for Captum."""

    def forward(images, weights):
        outputs = module(images).float()
        if kind == "regressor":
            scores = outputs
        else:
            if outputs.shape[1] == 1:  # one sigmoid unit z: the two classes' logits are [0, z]
                outputs = torch.cat([torch.zeros_like(outputs), outputs], dim=1)
            scores = torch.log_softmax(outputs, dim=1)
        return (scores * weights).flatten(1).sum(dim=1)

    return forward


def importance_map(
    estimator,
    X: ArrayLike,
    target=None,
    *,
    method: str = "occlusion",
    pixels: ArrayLike | None = None,
    n_steps: int = 32,
) -> np.ndarray:
    """How much each pixel region of each image drove the estimator's output.

    What is explained: the log-probability of a class (classifier), the value of one target
    on its own scale (regressor), or the mean log-probability of a class over chosen pixels
    (segmenter).

    Parameters
    ----------
    estimator : fitted RNNImageClassifier, RNNImageRegressor or RNNSegmenter
        The estimator to explain.
    X : array-like
        Images, as the estimator's ``predict`` takes them.
    target : label, array-like of labels, int or None, default=None
        Classifier: the class to explain (one label, or one per image); None explains each
        image's predicted class. Regressor: the index of the output (None for one output).
        Segmenter: the class to explain at the chosen pixels; None explains each pixel's
        predicted class.
    method : {"occlusion", "integrated_gradients"}, default="occlusion"
        ``"occlusion"`` replaces the estimator's reading units (rows, columns, pixels or
        patches; see :func:`reading_units`) one at a time by the training mean;
        ``"integrated_gradients"`` integrates gradients from the training-mean image.
    pixels : array-like of bool of shape (H, W) or (n, H, W), default=None
        Segmenter only: the pixels whose prediction is explained; all pixels by default.
    n_steps : int, default=32
        Steps of the path integral of ``"integrated_gradients"``.

    Returns
    -------
    maps : ndarray of shape (n, H, W), float64
        Signed importances: positive where the image raised the explained output compared
        with the training mean. For occlusion every pixel of a unit holds that unit's effect;
        for integrated gradients a map sums to the output's change from the mean image.

    Raises
    ------
    ImportError
        If Captum is not installed.
    ValueError
        If ``method`` or ``target`` is not valid for this estimator, or integrated gradients
        are asked of a model that embeds integer ids.

    Examples
    --------
    >>> from skrnn import RNNImageClassifier
    >>> from skrnn.datasets import load_digits_images
    >>> from skrnn.inspection import importance_map
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = RNNImageClassifier(hidden_size=8, max_epochs=1, random_state=0).fit(X[:100], y[:100])
    >>> importance_map(clf, X[:3], method="occlusion").shape
    (3, 8, 8)
    """
    try:
        from captum.attr import FeatureAblation, IntegratedGradients
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("importance_map needs Captum: pip install 'skrnn[inspect]'.") from exc
    check_is_fitted(estimator, "net_")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
    if not (isinstance(n_steps, (int, np.integer)) and n_steps >= 2):
        raise ValueError(f"n_steps must be an int of at least 2, got {n_steps!r:.40}.")
    kind = estimator_kind(estimator, "importance_map")
    if pixels is not None and kind != "segmenter":
        raise ValueError("pixels chooses a segmenter's pixels; leave it None for this estimator.")
    images = estimator._check_X(X, reset=False)
    embeds = estimator._input_dtype() == torch.long
    if embeds and method == "integrated_gradients":
        raise ValueError(
            "Integrated gradients need real-valued inputs, but this estimator embeds integer "
            "ids (embedding_dim is set); use method='occlusion'."
        )
    n, height, width, channels = images.shape
    weights = _output_weights(estimator, kind, X, images, target, pixels)
    module = estimator.net_.module_
    module.eval()  # as in predict: dropout off (skorch sets the mode on every training step)
    device = next(module.parameters()).device
    forward = _scalar_output(module, kind)
    dtype = estimator._input_dtype()
    if embeds:  # occlude with id 0
        baseline = torch.zeros((1, height, width, channels), dtype=dtype, device=device)
    else:
        mean = torch.as_tensor(estimator._input_mean, dtype=torch.float32, device=device)
        baseline = mean.expand(1, height, width, channels)
    units = torch.as_tensor(reading_units(estimator, height, width), device=device)
    mask = units[None, :, :, None].expand(1, height, width, channels)
    maps = np.empty((n, height, width))
    with torch_threads(estimator.n_threads), torch.backends.cudnn.flags(enabled=False):
        # cuDNN's recurrent kernels compute gradients only in training mode.
        for start in range(0, n, _IMAGES_PER_BATCH):
            stop = min(start + _IMAGES_PER_BATCH, n)
            batch = torch.as_tensor(np.asarray(images[start:stop]), dtype=dtype).to(device)
            args = (weights[start:stop].to(device),)
            base = baseline.expand_as(batch).contiguous()
            if method == "occlusion":
                with torch.no_grad():
                    found = FeatureAblation(forward).attribute(
                        batch, baselines=base, additional_forward_args=args, feature_mask=mask
                    )
                found = found.float().mean(dim=-1)  # a unit's effect, shared by its channels
            else:
                found = (
                    IntegratedGradients(forward)
                    .attribute(
                        batch,
                        baselines=base,
                        additional_forward_args=args,
                        n_steps=int(n_steps),
                        internal_batch_size=(stop - start) * int(n_steps),
                    )
                    .sum(dim=-1)
                )
            maps[start:stop] = found.detach().cpu().numpy()
    return maps
