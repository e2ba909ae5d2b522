"""Segmentation metrics on label masks, and scorers for sklearn's model-selection tools.

The metrics compare two arrays of labels of the same shape, usually masks ``(n, H, W)``, pixel
by pixel over the whole set (not image by image), and leave out every pixel whose true label
is ``ignore_label``. The scorers make them usable as ``scoring=`` in
:class:`~sklearn.model_selection.GridSearchCV` and
:func:`~sklearn.model_selection.cross_val_score`; sklearn's own scorers expect one target per
sample and do not apply to masks.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "get_scorer",
    "get_scorer_names",
    "iou_per_class",
    "mean_iou",
    "mean_iou_scorer",
    "pixel_accuracy",
    "pixel_accuracy_scorer",
]


def _check_masks(y_true, y_pred, ignore_label):
    """Flatten two label arrays of one shape and drop the ignored pixels."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}."
        )
    y_true = y_true.ravel()
    y_pred = y_pred.ravel()
    if ignore_label is not None:
        keep = y_true != ignore_label
        y_true, y_pred = y_true[keep], y_pred[keep]
    if y_true.size == 0:
        raise ValueError(
            "There are no pixels to score: y_true is empty or every pixel is ignore_label="
            f"{ignore_label!r}."
        )
    return y_true, y_pred


def _count(values, labels, sorter):
    """How many entries of ``values`` equal each of ``labels``; other values are not counted."""
    positions = np.searchsorted(labels, values, sorter=sorter)
    positions = np.minimum(positions, len(labels) - 1)
    index = sorter[positions]
    matched = labels[index] == values
    return np.bincount(index[matched], minlength=len(labels))


def iou_per_class(y_true, y_pred, *, labels=None, ignore_label=None, zero_division=np.nan):
    """Intersection over union of each class, counted over all pixels of all masks.

    For class ``k``, ``IoU = |true == k and pred == k| / |true == k or pred == k|``.

    Parameters
    ----------
    y_true : array-like of shape (n, H, W) or any shape
        True labels.
    y_pred : array-like of the same shape
        Predicted labels.
    labels : array-like, default=None
        The classes to report, in this order. By default every label found in ``y_true`` or
        ``y_pred`` (apart from ``ignore_label``), sorted.
    ignore_label : int, default=None
        Pixels whose true label is this value are left out entirely.
    zero_division : float, default=np.nan
        The value for a class that appears in neither ``y_true`` nor ``y_pred``; ``nan`` leaves
        such a class out of :func:`mean_iou`.

    Returns
    -------
    iou : ndarray of shape (n_labels,)

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn.metrics import iou_per_class
    >>> y_true = np.array([[[0, 0, 1, 1]]])
    >>> y_pred = np.array([[[0, 1, 1, 1]]])
    >>> iou_per_class(y_true, y_pred)
    array([0.5       , 0.66666667])
    """
    y_true, y_pred = _check_masks(y_true, y_pred, ignore_label)
    if labels is None:
        labels = np.union1d(np.unique(y_true), np.unique(y_pred))
        if ignore_label is not None:
            labels = labels[labels != ignore_label]
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D list of classes, got {labels!r}.")
    sorter = np.argsort(labels, kind="stable")
    true_counts = _count(y_true, labels, sorter)
    pred_counts = _count(y_pred, labels, sorter)
    intersection = _count(y_true[y_true == y_pred], labels, sorter)
    union = true_counts + pred_counts - intersection
    iou = np.full(len(labels), float(zero_division))
    present = union > 0
    iou[present] = intersection[present] / union[present]
    return iou


def mean_iou(y_true, y_pred, *, labels=None, ignore_label=None) -> float:
    """Mean intersection over union: :func:`iou_per_class` averaged over the classes.

    Classes that appear in neither ``y_true`` nor ``y_pred`` do not count. The background is
    a class like any other.

    Parameters
    ----------
    y_true : array-like of shape (n, H, W) or any shape
        True labels.
    y_pred : array-like of the same shape
        Predicted labels.
    labels : array-like, default=None
        The classes to average over; by default every label in ``y_true`` or ``y_pred``.
    ignore_label : int, default=None
        Pixels whose true label is this value are left out entirely.

    Returns
    -------
    score : float
        Between 0 and 1; 1 for a perfect segmentation; ``nan`` if none of ``labels`` occurs.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn.metrics import mean_iou
    >>> y_true = np.array([[[0, 0, 1, 1]]])
    >>> y_pred = np.array([[[0, 1, 1, 1]]])
    >>> round(mean_iou(y_true, y_pred), 4)
    0.5833
    >>> mean_iou(y_true, y_pred, labels=[1])
    0.6666666666666666
    """
    iou = iou_per_class(y_true, y_pred, labels=labels, ignore_label=ignore_label)
    if np.isnan(iou).all():  # none of the requested labels occurs anywhere
        return float("nan")
    return float(np.nanmean(iou))


def pixel_accuracy(y_true, y_pred, *, ignore_label=None) -> float:
    """Share of the pixels whose predicted label is right, ignored pixels left out.

    Parameters
    ----------
    y_true : array-like of shape (n, H, W) or any shape
        True labels.
    y_pred : array-like of the same shape
        Predicted labels.
    ignore_label : int, default=None
        Pixels whose true label is this value are left out entirely.

    Returns
    -------
    score : float

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn.metrics import pixel_accuracy
    >>> pixel_accuracy(np.array([[[0, 0, 1, 255]]]), np.array([[[0, 1, 1, 0]]]),
    ...                ignore_label=255)
    0.6666666666666666
    """
    y_true, y_pred = _check_masks(y_true, y_pred, ignore_label)
    return float(np.mean(y_true == y_pred))


def _final_estimator(estimator):
    """The last step of a pipeline (or the estimator itself), whose parameters we read."""
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


class SegmentationScorer:
    """A scorer ``scorer(estimator, X, Y)`` that compares ``estimator.predict(X)`` with masks.

    Unless ``ignore_label`` is given here, the scorer uses the ``ignore_label`` parameter of
    the estimator (or of the last step of a pipeline), so the pixels it trains without are
    also left out of its score.

    Parameters
    ----------
    score_func : callable
        ``score_func(y_true, y_pred, ignore_label=...)``, e.g. :func:`mean_iou`.
    name : str
        A short name, shown in the repr.
    ignore_label : int or "estimator", default="estimator"
        The label to leave out, or ``"estimator"`` to read it from the estimator.
    **kwargs
        Further keyword arguments of ``score_func`` (e.g. ``labels``).

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score
    >>> from skrnn.datasets import make_shapes
    >>> from skrnn.metrics import pixel_accuracy_scorer
    >>> from skrnn import RNNSegmenter
    >>> X, Y = make_shapes(n_samples=12, image_size=12, random_state=0)
    >>> seg = RNNSegmenter(hidden_size=4, max_epochs=1, random_state=0)
    >>> cross_val_score(seg, X, Y, cv=2, scoring=pixel_accuracy_scorer).shape
    (2,)
    """

    def __init__(self, score_func, name: str, *, ignore_label="estimator", **kwargs):
        self.score_func = score_func
        self.name = name
        self.ignore_label = ignore_label
        self.kwargs = kwargs

    def __call__(self, estimator, X, y_true) -> float:
        y_pred = estimator.predict(X)
        ignore_label = self.ignore_label
        if ignore_label == "estimator":
            ignore_label = getattr(_final_estimator(estimator), "ignore_label", None)
        return self.score_func(y_true, y_pred, ignore_label=ignore_label, **self.kwargs)

    def __repr__(self):
        return f"SegmentationScorer({self.name})"


mean_iou_scorer = SegmentationScorer(mean_iou, "mean_iou")
pixel_accuracy_scorer = SegmentationScorer(pixel_accuracy, "pixel_accuracy")

_SCORERS = {"mean_iou": mean_iou_scorer, "pixel_accuracy": pixel_accuracy_scorer}


def get_scorer_names() -> list[str]:
    """The names :func:`get_scorer` accepts.

    Returns
    -------
    names : list of str
        Sorted scorer names.

    Examples
    --------
    >>> from skrnn.metrics import get_scorer_names
    >>> get_scorer_names()
    ['mean_iou', 'pixel_accuracy']
    """
    return sorted(_SCORERS)


def get_scorer(name: str) -> SegmentationScorer:
    """The segmentation scorer of a name, for ``scoring=`` in sklearn's model selection.

    Parameters
    ----------
    name : {"mean_iou", "pixel_accuracy"}

    Returns
    -------
    scorer : SegmentationScorer

    Examples
    --------
    >>> from skrnn.metrics import get_scorer
    >>> get_scorer("mean_iou")
    SegmentationScorer(mean_iou)
    """
    try:
        return _SCORERS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"{name!r} is not a segmentation scorer; choose one of {get_scorer_names()}. "
            "sklearn's own scorers expect one target per sample, not masks."
        ) from None
