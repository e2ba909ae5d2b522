"""``RNNImageClassifier``: a recurrent network that labels images."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._augment import AugmentMixin
from ._base import BaseRNNEstimator
from ._docs import fill_parameter_docs
from ._labels import LabelledTargetsMixin
from ._lazy import dask_aware
from ._net import accuracy_from_logits
from ._reading import SequenceReadingMixin
from ._validation import check_target_length


@fill_parameter_docs(
    dropout=(
        "float",
        """Dropout between recurrent layers and in the dense head (including before the output
layer); a classifier of a few thousand images overfits without it.""",
    ),
    loss=(
        '{"cross_entropy", "binary_cross_entropy"}',
        """``"binary_cross_entropy"`` gives a two-class problem one output unit with a sigmoid
(as a Keras ``Dense(1, activation="sigmoid")``); the API stays the same, with two columns in
``predict_proba``.""",
    ),
)
class RNNImageClassifier(
    ClassifierMixin, AugmentMixin, SequenceReadingMixin, LabelledTargetsMixin, BaseRNNEstimator
):
    """Classify images with a recurrent network that reads them as sequences.

    Each image is read as a sequence of rows (or columns, pixels, patches), a recurrent cell
    reads that sequence, and a linear layer on its summary gives the class scores. Labels can be
    of any type (ints, strings), binary or multiclass.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Values per input sample (``H * W * C``).
    image_shape_ : tuple of int
        ``(H, W, C)`` of the training images.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module.
    history_ : list of dict
        Per-epoch training record (``train_loss`` and, with early stopping, ``valid_loss``
        and ``valid_acc``).
    n_iter_ : int
        Epochs trained.
    n_tokens_ : int
        Size of the embedding's vocabulary, when ``embedding_dim`` is set.

    Examples
    --------
    >>> from skrnn import RNNImageClassifier
    >>> from skrnn.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = RNNImageClassifier(hidden_size=32, max_epochs=3, random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> clf.predict_proba(X[:3]).shape
    (3, 10)
    """

    _parameter_constraints: dict = {
        **BaseRNNEstimator._parameter_constraints,
        "augment": AugmentMixin._augment_constraint,
        **SequenceReadingMixin._reading_parameter_constraints,
        "class_weight": LabelledTargetsMixin._class_weight_constraint,
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
        "loss": [StrOptions({"cross_entropy", "binary_cross_entropy"})],
    }
    _stratify = True
    _valid_score = ("valid_acc", accuracy_from_logits)
    # Small shifts and zooms; no flips, which change what digits and letters mean.
    _standard_augmentation = {"shift": 0.1, "scale": 0.1}

    def __init__(
        self,
        cell="gru",
        hidden_size=128,
        num_layers=1,
        bidirectional=True,
        dropout=0.5,
        readout="last",
        head=None,
        image_shape=None,
        order="rows",
        patch_size=None,
        max_epochs="auto",
        batch_size="auto",
        lr=3e-3,
        optimizer="adam",
        weight_decay=0.0,
        lr_schedule="onecycle",
        max_grad_norm=5.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-3,
        class_weight=None,
        label_smoothing=0.1,
        loss="cross_entropy",
        embedding_dim=None,
        n_tokens=None,
        augment="auto",
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
        self.readout = readout
        self.head = head
        self.image_shape = image_shape
        self.order = order
        self.patch_size = patch_size
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
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.loss = loss
        self.embedding_dim = embedding_dim
        self.n_tokens = n_tokens
        self.augment = augment
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.distributed = distributed

    # ----------------------------------------------------------------- public API
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> RNNImageClassifier:
        """Train the network on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, H * W * C) or (n, T, F)
            Images (any numeric dtype; uint8 and memory maps are read batch by batch), flat
            rows with ``image_shape``, or sequences.
        y : array-like of shape (n,)
            Class labels of any type.
        sample_weight : array-like of shape (n,), default=None
            Per-sample weights in the loss.

        Returns
        -------
        self : RNNImageClassifier
            The fitted classifier.
        """
        return self._fit(X, y, sample_weight)

    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> RNNImageClassifier:
        """Train for one epoch on ``X``, ``y``, continuing from the current weights.

        Partial fits use every sample for training (no early stopping) and a constant
        learning rate.

        Parameters
        ----------
        X : array-like
            Images, as in :meth:`fit`.
        y : array-like of shape (n,)
            Class labels, each among ``classes``.
        classes : array-like, default=None
            Every class that will ever appear; required on the first call.
        sample_weight : array-like of shape (n,), default=None
            Per-sample weights in the loss.

        Returns
        -------
        self : RNNImageClassifier
            The classifier, trained for one more epoch.
        """
        classes = self._partial_fit_classes(classes)
        return self._fit(X, y, sample_weight, partial=True, classes=classes)

    @dask_aware(lambda self, X: ((len(self.classes_),), np.float32))
    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like
            Images, as in :meth:`fit`.

        Returns
        -------
        proba : ndarray of shape (n, n_classes)
            The probability of each class for each image.
        """
        from scipy.special import softmax

        return softmax(self._logits(X), axis=1)

    @dask_aware(lambda self, X: ((len(self.classes_),), np.float32))
    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`, computed without underflow.

        Parameters
        ----------
        X : array-like
            Images, as in :meth:`fit`.

        Returns
        -------
        log_proba : ndarray of shape (n, n_classes)
            The log-probability of each class for each image.
        """
        from scipy.special import log_softmax

        return log_softmax(self._logits(X), axis=1)

    @dask_aware(lambda self, X: ((), self.classes_.dtype))
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted class labels.

        Parameters
        ----------
        X : array-like
            Images, as in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n,)
            The most probable class of each image, from ``classes_``.
        """
        logits = self._logits(X)
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Accuracy of :meth:`predict` on ``X`` against the labels ``y``.

        Parameters
        ----------
        X : array-like
            Images, as in :meth:`fit`.
        y : array-like of shape (n,)
            True labels; every one must be among ``classes_``.
        sample_weight : array-like of shape (n,), default=None
            Per-sample weights of the accuracy.

        Returns
        -------
        score : float
            The (weighted) share of images labelled correctly.

        Raises
        ------
        ValueError
            If ``y`` holds labels this classifier was not fitted with (it could never predict
            them, so the score would silently count them as errors).
        """
        if self._is_fitted():
            self._check_known_labels(column_or_1d(y, warn=True))
        return super().score(X, y, sample_weight=sample_weight)

    def _logits(self, X) -> np.ndarray:
        """Class logits ``(n, n_classes)``; a single sigmoid unit z becomes ``[0, z]``."""
        logits = self._forward(X).astype(np.float64)
        if logits.shape[1] == 1:
            logits = np.hstack([np.zeros_like(logits), logits])
        return logits

    # ----------------------------------------------------------------- hooks
    def _encode_targets(self, y, images, *, fitting, classes=None):
        if y is None:
            raise ValueError(
                "RNNImageClassifier requires y to be passed, but the target y is None."
            )
        y = column_or_1d(y, warn=True)
        check_target_length(images, y)
        with warnings.catch_warnings():
            # NaN or infinite labels: sklearn's check casts them to int on the way to its own
            # clear error, and numpy warns about that cast first.
            warnings.filterwarnings("ignore", "invalid value encountered in cast", RuntimeWarning)
            check_classification_targets(y)
        if fitting:
            self._learn_classes(y, classes)
            self._require_two_classes()
            if self.loss == "binary_cross_entropy" and len(self.classes_) != 2:
                raise ValueError(
                    f"loss='binary_cross_entropy' is for two classes, but y has "
                    f"{len(self.classes_)}; use loss='cross_entropy' for more."
                )
        return self._encode_labels(y).astype(np.int64)

    def _check_fitted(self) -> None:
        super()._check_fitted()
        if self.loss == "binary_cross_entropy" and len(self.classes_) != 2:
            raise ValueError(
                f"loss='binary_cross_entropy' is for two classes, but classes_ holds "
                f"{len(self.classes_)}."
            )

    def _n_outputs(self):
        return 1 if self.loss == "binary_cross_entropy" else len(self.classes_)

    def _criterion_params(self):
        return {
            "kind": self.loss,
            "class_weight": self._class_weight,
            "label_smoothing": self.label_smoothing,
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags
