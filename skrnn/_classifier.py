"""``RNNImageClassifier``: a recurrent network that labels images."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._base import BaseRNNEstimator, fill_shared_doc
from ._net import accuracy_from_logits
from ._validation import check_target_length


@fill_shared_doc
class RNNImageClassifier(ClassifierMixin, BaseRNNEstimator):
    """Classify images with a recurrent network that reads them as sequences.

    Each image is read as a sequence of rows (or columns, pixels, patches), a recurrent cell
    reads that sequence, and a linear layer on its summary gives the class scores. Labels can be
    of any type (ints, strings), binary or multiclass.

    Parameters
    ----------
    {shared}
    readout : {"last", "mean", "max"}, default="last"
        How the per-step outputs become one vector: the final state of each direction, or the
        mean or maximum over time.
    head : tuple of int, default=None
        Widths of hidden Linear+ReLU layers between the readout and the output layer.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` when ``X`` is given as flat rows ``(n, H * W * C)``.
    order : {"rows", "columns", "pixels", "patches"}, default="rows"
        How images are read as sequences (see :class:`skrnn.ImageToSequence`). A 3-D ``X``
        ``(n, T, F)`` read by rows is used as it is, so the output of ``ImageToSequence``
        feeds straight in.
    patch_size : int or tuple of int, default=None
        ``(ph, pw)`` for ``order="patches"``.
    class_weight : dict, "balanced" or None, default=None
        Weights per class in the loss; ``"balanced"`` weighs classes inversely to their
        frequency.
    label_smoothing : float, default=0.1
        Share of each target label spread over all classes in the cross-entropy loss (as in
        :class:`torch.nn.CrossEntropyLoss`); it keeps the network from growing over-confident
        on small data sets.
    loss : {"cross_entropy", "binary_cross_entropy"}, default="cross_entropy"
        ``"binary_cross_entropy"`` gives a two-class problem one output unit with a sigmoid
        (as a Keras ``Dense(1, activation="sigmoid")``); the API stays the same, with two
        columns in ``predict_proba``.
    embedding_dim : int, default=None
        Treat ``X`` as integer ids (token sequences ``(n, T)``, or images of discrete levels)
        and embed each id as a vector of this size before the recurrent layers.
    n_tokens : int, default=None
        Number of distinct ids for the embedding; inferred as ``X.max() + 1`` when None.

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
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
        "loss": [StrOptions({"cross_entropy", "binary_cross_entropy"})],
    }
    _stratify = True
    _valid_score = ("valid_acc", accuracy_from_logits)

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
        max_epochs=30,
        batch_size=32,
        lr=3e-3,
        optimizer="adam",
        weight_decay=0.0,
        lr_schedule="onecycle",
        max_grad_norm=5.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        class_weight=None,
        label_smoothing=0.1,
        loss="cross_entropy",
        embedding_dim=None,
        n_tokens=None,
        device="auto",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
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
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.loss = loss
        self.embedding_dim = embedding_dim
        self.n_tokens = n_tokens
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks

    # ----------------------------------------------------------------- public API
    def fit(self, X, y, sample_weight=None):
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
        """
        return self._fit(X, y, sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``X``, ``y``, continuing from the current weights.

        Partial fits use every sample for training (no early stopping) and a constant
        learning rate.

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`fit`.
        classes : array-like, default=None
            Every class that will ever appear; required on the first call.

        Returns
        -------
        self : RNNImageClassifier
        """
        if not self._is_fitted():
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit, listing every "
                    "class that will appear."
                )
            self._partial_classes = np.asarray(classes)
        return self._fit(X, y, sample_weight, partial=True)

    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Returns
        -------
        proba : ndarray of shape (n, n_classes)
        """
        from scipy.special import softmax

        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        from scipy.special import log_softmax

        return log_softmax(self._logits(X), axis=1)

    def predict(self, X):
        """Predicted class labels.

        Returns
        -------
        labels : ndarray of shape (n,)
        """
        logits = self._logits(X)
        return self.classes_[logits.argmax(axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy of :meth:`predict` on ``X`` against the labels ``y``.

        Parameters
        ----------
        X : array-like
            Images, as in :meth:`fit`.
        y : array-like of shape (n,)
            True labels; every one must be among ``classes_``.
        sample_weight : array-like of shape (n,), default=None

        Returns
        -------
        score : float

        Raises
        ------
        ValueError
            If ``y`` holds labels this classifier was not fitted with (it could never predict
            them, so the score would silently count them as errors).
        """
        labels = column_or_1d(y, warn=True)
        unknown = np.setdiff1d(np.unique(labels), self.classes_) if self._is_fitted() else []
        if len(unknown):
            raise ValueError(
                f"y contains labels {unknown.tolist()} that are not among the classes "
                f"{self.classes_.tolist()} this classifier was fitted with."
            )
        return super().score(X, y, sample_weight=sample_weight)

    def _logits(self, X) -> np.ndarray:
        """Class logits ``(n, n_classes)``; a single sigmoid unit z becomes ``[0, z]``."""
        logits = self._forward(X).astype(np.float64)
        if logits.shape[1] == 1:
            logits = np.hstack([np.zeros_like(logits), logits])
        return logits

    # ----------------------------------------------------------------- hooks
    def _encode_targets(self, y, images, *, fitting):
        if y is None:
            raise ValueError(
                "RNNImageClassifier requires y to be passed, but the target y is None."
            )
        y = column_or_1d(y, warn=True)
        check_target_length(images, y)
        check_classification_targets(y)
        if fitting:
            encoder = LabelEncoder()
            if hasattr(self, "_partial_classes"):
                encoder.fit(self._partial_classes)
                del self._partial_classes
            else:
                encoder.fit(y)
            self.classes_ = encoder.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    f"RNNImageClassifier needs samples of at least two classes; y has only "
                    f"class {self.classes_.tolist()[0]!r}."
                )
            if self.loss == "binary_cross_entropy" and len(self.classes_) != 2:
                raise ValueError(
                    f"loss='binary_cross_entropy' is for two classes, but y has "
                    f"{len(self.classes_)}; use loss='cross_entropy' for more."
                )
            self._class_weight = self._compute_class_weight(encoder.transform(y))
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(
                f"y contains labels {unknown.tolist()} that are not among the classes "
                f"{self.classes_.tolist()} this classifier was fitted with."
            )
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _compute_class_weight(self, encoded):
        if self.class_weight is None:
            return None
        n_classes = len(self.classes_)
        if self.class_weight == "balanced":
            present = np.unique(encoded)
            weights = np.ones(n_classes)
            weights[present] = compute_class_weight("balanced", classes=present, y=encoded)
            return weights.tolist()
        unknown = set(self.class_weight) - set(self.classes_.tolist())
        if unknown:
            raise ValueError(
                f"class_weight names classes {sorted(unknown, key=str)} that are not in y; "
                f"the classes are {self.classes_.tolist()}."
            )
        return [float(self.class_weight.get(label, 1.0)) for label in self.classes_.tolist()]

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
