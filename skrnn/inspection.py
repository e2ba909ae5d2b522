"""Which parts of an image drove a prediction: importance maps of fitted estimators.

:func:`importance_map` gives, for each image, a map of shape ``(H, W)``: how much each pixel
region moved the estimator's output for a class (classifier, segmenter) or a target
(regressor). Two attribution methods of `Captum <https://captum.ai>`_ are offered:

``"occlusion"``
    Square windows tiling the image (``window="auto"``: 8 x 8 of them, 2 x 2 pixels each on
    16 x 16 images, 4 x 4 on 28 x 28) are replaced by the baseline, one window at a time
    (Captum's ``FeatureAblation``), and the change of the output is the importance of every
    pixel of that window. ``window="units"`` occludes the estimator's own reading units
    instead (a row, a column, a pixel or a patch, as its ``order`` reads the image; a patch of
    a segmenter's sweeps), found by running the estimator's own conversion
    (:func:`skrnn.sequence.sequences_to_images`, :func:`skrnn.sequence.grid_to_images`) on
    the units' indices: the map then shows what the network reads as one step, but a unit as
    long as a row spreads one region's effect over the whole row.
``"integrated_gradients"``
    Gradients of the output integrated along the straight path from the baseline image to
    the image (Captum's ``IntegratedGradients``), summed over each pixel's channels; the
    values of a map add up to the output's change from the baseline to the image.

The baseline is what "absent" means. ``"mean"`` (the default) is the training images' mean
value per channel, which every pixel of the training set is close to on average. Pass images
(typically a few dozen training images) to average the maps over them as baselines
(occlusion then fills a window with each baseline image's own pixels, and integrated
gradients become "expected gradients"): the right choice where a flat image is far from
anything the model has seen, such as textures or noise. A number fills with that value
(0 for black, where black means absent).

A map can only show what the model does: where a model relies on pixels outside the region
its label depends on (it overfitted noise), the maps say so. Check a map against a model
with random weights and one trained on shuffled labels (Adebayo et al., 2018): maps that
look alike carry no information about the model.

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
from ._validation import check_int_pair
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
    window="auto",
    baseline="mean",
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
        ``"occlusion"`` replaces windows of the image one at a time by the baseline;
        ``"integrated_gradients"`` integrates gradients from the baseline image.
    pixels : array-like of bool of shape (H, W) or (n, H, W), default=None
        Segmenter only: the pixels whose prediction is explained; all pixels by default.
    n_steps : int, default=32
        Steps of the path integral of ``"integrated_gradients"``.
    window : "auto", "units", int or (int, int), default="auto"
        Occlusion's windows: ``"auto"`` squares of ``ceil(max(H, W) / 8)`` pixels,
        ``"units"`` the estimator's reading units (:func:`reading_units`), an int or
        ``(height, width)`` rectangles of that size, tiling the image from its top-left
        corner.
    baseline : "mean", float or array-like of images, default="mean"
        What replaces the image: the training mean per channel, one value, or images of the
        estimator's shape ``(H, W[, C])`` or ``(k, H, W[, C])``, over which the maps are
        averaged.

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
    bases = _baselines(estimator, baseline, images, embeds)
    windows = _windows(estimator, window, height, width)
    weights = _output_weights(estimator, kind, X, images, target, pixels)
    module = estimator.net_.module_
    module.eval()  # as in predict: dropout off (skorch sets the mode on every training step)
    device = next(module.parameters()).device
    forward = _scalar_output(module, kind)
    dtype = estimator._input_dtype()
    units = torch.as_tensor(windows, device=device)
    mask = units[None, :, :, None].expand(1, height, width, channels)
    maps = np.zeros((n, height, width))
    with torch_threads(estimator.n_threads), torch.backends.cudnn.flags(enabled=False):
        # cuDNN's recurrent kernels compute gradients only in training mode.
        for start in range(0, n, _IMAGES_PER_BATCH):
            stop = min(start + _IMAGES_PER_BATCH, n)
            batch = torch.as_tensor(np.asarray(images[start:stop]), dtype=dtype).to(device)
            args = (weights[start:stop].to(device),)
            for baseline_image in bases:
                base = torch.as_tensor(baseline_image, dtype=dtype, device=device)
                base = base.expand_as(batch).contiguous()
                if method == "occlusion":
                    with torch.no_grad():
                        found = FeatureAblation(forward).attribute(
                            batch, baselines=base, additional_forward_args=args, feature_mask=mask
                        )
                    found = found.float().mean(dim=-1)  # a window's effect, for its channels
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
                maps[start:stop] += found.detach().cpu().numpy() / len(bases)
    return maps


def _windows(estimator, window, height: int, width: int) -> np.ndarray:
    """Occlusion's windows: the index of each pixel's window ``(H, W)``."""
    if isinstance(window, str) and window == "units":
        return reading_units(estimator, height, width)
    if isinstance(window, str) and window == "auto":
        side = max(1, -(-max(height, width) // 8))
        size = (side, side)
    elif isinstance(window, str):
        raise ValueError(
            "window must be 'auto', 'units', a positive int or (height, width), got "
            f"{window!r:.60}."
        )
    else:
        size = check_int_pair(window, "window")
    rows = np.arange(height)[:, None] // size[0]
    columns = np.arange(width)[None, :] // size[1]
    return (rows * -(-width // size[1]) + columns).astype(np.int64)


def _baselines(estimator, baseline, images: np.ndarray, embeds: bool) -> list:
    """The baseline images ``(1, H, W, C)`` that the maps are averaged over."""
    _, height, width, channels = images.shape
    shape = (1, height, width, channels)
    if isinstance(baseline, str):
        if baseline != "mean":
            raise ValueError(f"baseline must be 'mean', a number or images, got {baseline!r:.60}.")
        if embeds:  # occlude with id 0
            return [np.zeros(shape, dtype=np.int64)]
        mean = np.asarray(estimator._input_mean, dtype=np.float32)
        return [np.broadcast_to(mean, shape).copy()]
    if np.ndim(baseline) == 0:
        value = float(baseline)
        if not np.isfinite(value):
            raise ValueError(f"baseline must be finite, got {baseline!r}.")
        return [np.full(shape, value, dtype=np.float32)]
    given = np.asarray(baseline)
    one_colour_image = given.ndim == 3 and channels > 1 and given.shape == (height, width, channels)
    if given.ndim == 2 or one_colour_image:
        given = given[None]
    try:
        found = estimator._check_X(given, reset=False)
    except ValueError as exc:
        raise ValueError(
            f"baseline images must be images like X, of shape (H, W[, C]) or (k, H, W[, C]) "
            f"with H, W, C = {height}, {width}, {channels}: {exc}"
        ) from None
    if found.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"baseline images have shape {found.shape[1:]}, but the images to explain have "
            f"{images.shape[1:]}."
        )
    return [np.array(found[i : i + 1]) for i in range(len(found))]
