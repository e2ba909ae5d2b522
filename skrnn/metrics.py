"""Segmentation and recognition metrics, and scorers for sklearn's model-selection tools.

The metrics compare two arrays of labels of the same shape, usually masks ``(n, H, W)``, pixel
by pixel over the whole set (not image by image), and leave out every pixel whose true label
is ``ignore_label``. The scorers make them usable as ``scoring=`` in
:class:`~sklearn.model_selection.GridSearchCV` and
:func:`~sklearn.model_selection.cross_val_score`; sklearn's own scorers expect one target per
sample and do not apply to masks.

The recognition metrics compare what lines read, strings or sequences of labels:
:func:`character_error_rate` counts the edits (Levenshtein distance) per reference symbol over
the whole set, :func:`sequence_accuracy` the share of sequences read exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "character_error_rate",
    "character_error_rate_scorer",
    "edit_distance",
    "get_scorer",
    "get_scorer_names",
    "iou_per_class",
    "mean_iou",
    "mean_iou_scorer",
    "pixel_accuracy",
    "pixel_accuracy_scorer",
    "sequence_accuracy",
    "sequence_accuracy_scorer",
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


def edit_distance(reference, hypothesis) -> int:
    """The Levenshtein distance: the fewest insertions, deletions and substitutions of single
    symbols that turn ``hypothesis`` into ``reference``.

    Parameters
    ----------
    reference, hypothesis : str or sequence of hashable
        Two strings, or two sequences of labels.

    Returns
    -------
    distance : int

    Examples
    --------
    >>> from skrnn.metrics import edit_distance
    >>> edit_distance("kitten", "sitting"), edit_distance((1, 2, 3), (1, 3))
    (3, 1)
    """
    reference, hypothesis = list(reference), list(hypothesis)
    # One row of the dynamic programme at a time: distances from a prefix of the reference
    # to every prefix of the hypothesis.
    row = list(range(len(hypothesis) + 1))
    for i, symbol in enumerate(reference, start=1):
        diagonal, row[0] = row[0], i
        for j, other in enumerate(hypothesis, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (symbol != other))
    return row[-1]


def _check_sequences(y_true, y_pred):
    """Two equally long lists of targets, each a string or a sequence (never a bare label)."""

    def as_list(y, name):
        if isinstance(y, str) or not hasattr(y, "__len__"):
            raise ValueError(f"{name} must be a list of strings or sequences, got {y!r:.60}.")
        if isinstance(y, np.ndarray) and y.ndim == 2:
            return [tuple(row) for row in y.tolist()]
        items = y.tolist() if isinstance(y, np.ndarray) else list(y)
        out = []
        for item in items:
            if isinstance(item, np.ndarray):
                item = item.tolist()
            out.append(item if isinstance(item, (str, list, tuple)) else (item,))
        return out

    y_true, y_pred = as_list(y_true, "y_true"), as_list(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred hold different numbers of sequences: {len(y_true)} and "
            f"{len(y_pred)}."
        )
    if not y_true:
        raise ValueError("y_true is empty: there are no sequences to score.")
    return y_true, y_pred


def character_error_rate(y_true, y_pred, *, sample_weight=None) -> float:
    """Character error rate: edits needed to correct ``y_pred`` per symbol of ``y_true``.

    The sum over all sequences of :func:`edit_distance` divided by the sum of the reference
    lengths (a corpus-level rate, so long lines weigh more than short ones, as in OCR and
    speech-recognition benchmarks). 0 is perfect; it may exceed 1 when the predictions hold
    many extra symbols.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference strings, or sequences of labels (a 2-D array gives one per row).
    y_pred : array-like of shape (n,)
        Predicted strings or sequences.
    sample_weight : array-like of shape (n,), default=None
        Weights of the sequences in both sums.

    Returns
    -------
    cer : float

    Raises
    ------
    ValueError
        If the lengths differ, or every reference is empty (the rate is then undefined).

    Examples
    --------
    >>> from skrnn.metrics import character_error_rate
    >>> character_error_rate(["hello", "world"], ["helo", "word!"])
    0.3
    """
    y_true, y_pred = _check_sequences(y_true, y_pred)
    weights = np.ones(len(y_true)) if sample_weight is None else np.asarray(sample_weight, float)
    lengths = np.array([len(t) for t in y_true], dtype=float)
    if not (weights * lengths).sum() > 0:
        raise ValueError(
            "The character error rate is undefined: every reference sequence in y_true is "
            "empty (or has weight 0)."
        )
    distances = np.array([edit_distance(t, p) for t, p in zip(y_true, y_pred, strict=True)])
    return float((weights * distances).sum() / (weights * lengths).sum())


def sequence_accuracy(y_true, y_pred, *, sample_weight=None) -> float:
    """The share of sequences read exactly: every symbol right, none missing, none extra.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Reference strings, or sequences of labels (a 2-D array gives one per row).
    y_pred : array-like of shape (n,)
        Predicted strings or sequences.
    sample_weight : array-like of shape (n,), default=None
        Weights of the sequences.

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> from skrnn.metrics import sequence_accuracy
    >>> sequence_accuracy(["12", "345", ""], ["12", "34", ""])
    0.6666666666666666
    >>> sequence_accuracy([(1, 2), (3,)], [[1, 2], (4,)])
    0.5
    """
    y_true, y_pred = _check_sequences(y_true, y_pred)
    exact = [list(t) == list(p) for t, p in zip(y_true, y_pred, strict=True)]
    return float(np.average(exact, weights=sample_weight))


class SequenceScorer:
    """A scorer ``scorer(estimator, X, y)`` comparing ``estimator.predict(X)`` with sequences.

    Greater is better, as sklearn's model selection expects: a rate of errors is negated.

    Parameters
    ----------
    score_func : callable
        ``score_func(y_true, y_pred)``, e.g. :func:`sequence_accuracy`.
    name : str
        A short name, shown in the repr.
    sign : {1, -1}, default=1
        -1 for an error rate, so that a smaller error scores higher.

    Examples
    --------
    >>> from skrnn.metrics import character_error_rate_scorer
    >>> class Reader:
    ...     def predict(self, X):
    ...         return ["12", "4"]
    >>> character_error_rate_scorer(Reader(), None, ["12", "34"])
    -0.25
    """

    def __init__(self, score_func, name: str, *, sign: int = 1):
        self.score_func = score_func
        self.name = name
        self.sign = sign

    def __call__(self, estimator, X, y_true, sample_weight=None) -> float:
        y_pred = estimator.predict(X)
        return self.sign * self.score_func(y_true, y_pred, sample_weight=sample_weight)

    def __repr__(self):
        return f"SequenceScorer({self.name})"


sequence_accuracy_scorer = SequenceScorer(sequence_accuracy, "sequence_accuracy")
character_error_rate_scorer = SequenceScorer(
    character_error_rate, "neg_character_error_rate", sign=-1
)

# The segmentation scorers by name; the recognition scorers are used as objects.
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
