"""``RNNImageRegressor``: a recurrent network that predicts continuous values from images."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_array

from ._augment import AugmentMixin
from ._base import BaseRNNEstimator
from ._docs import fill_parameter_docs
from ._lazy import dask_aware
from ._reading import SequenceReadingMixin
from ._validation import check_target_length


def r2_from_outputs(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """R² of standardised targets, averaged over outputs (the validation score)."""
    from sklearn.metrics import r2_score

    return float(r2_score(y_true, y_pred.reshape(y_true.shape)))


@fill_parameter_docs(
    loss=(
        '{"mse", "huber"}',
        """Mean squared error, or the Huber loss (less sensitive to outlying targets), on the
standardised targets.""",
    ),
)
class RNNImageRegressor(RegressorMixin, AugmentMixin, SequenceReadingMixin, BaseRNNEstimator):
    """Predict continuous targets from images with a recurrent network.

    Same inputs and network as :class:`RNNImageClassifier`, with a linear output per target.
    Targets may be one value per image ``(n,)`` or several ``(n, k)``; they are standardised
    for training and mapped back, so their scale does not matter.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    n_outputs_ : int
        Number of targets per sample.
    n_features_in_ : int
        Values per input sample.
    image_shape_ : tuple of int
        ``(H, W, C)`` of the training images.
    net_ : skorch.NeuralNet
        The trained skorch net.
    history_ : list of dict
        Per-epoch training record (``valid_r2`` with early stopping).
    n_iter_ : int
        Epochs trained.

    Examples
    --------
    >>> import numpy as np
    >>> from skrnn import RNNImageRegressor
    >>> from skrnn.datasets import load_digits_images
    >>> X, _ = load_digits_images(return_X_y=True)
    >>> ink = X.sum(axis=(1, 2))                      # total ink of each digit
    >>> reg = RNNImageRegressor(hidden_size=16, max_epochs=3, random_state=0).fit(X, ink)
    >>> reg.predict(X[:4]).shape
    (4,)
    """

    _parameter_constraints: dict = {
        **BaseRNNEstimator._parameter_constraints,
        "augment": AugmentMixin._augment_constraint,
        **SequenceReadingMixin._reading_parameter_constraints,
        "loss": [StrOptions({"mse", "huber"})],
    }
    _valid_score = ("valid_r2", r2_from_outputs)
    # Small shifts and zooms; no flips or intensity changes, which may change the targets.
    _standard_augmentation = {"shift": 0.1, "scale": 0.1}

    def __init__(
        self,
        cell="gru",
        hidden_size=128,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
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
        loss="mse",
        embedding_dim=None,
        n_tokens=None,
        augment=False,
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

    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> RNNImageRegressor:
        """Train the network on images ``X`` with targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C), (n, H * W * C) or (n, T, F)
            Images (any numeric dtype; uint8 and memory maps are read batch by batch), flat
            rows with ``image_shape``, or sequences.
        y : array-like of shape (n,) or (n, n_outputs)
            Continuous targets, one or several per image.
        sample_weight : array-like of shape (n,), default=None
            Per-sample weights in the loss.

        Returns
        -------
        self : RNNImageRegressor
            The fitted regressor.
        """
        return self._fit(X, y, sample_weight)

    def partial_fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> RNNImageRegressor:
        """Train for one epoch on ``X``, ``y``, continuing from the current weights.

        The first call fixes the target standardisation from its ``y``. Partial fits use
        every sample for training (no early stopping) and a constant learning rate.

        Parameters
        ----------
        X : array-like
            Images, as in :meth:`fit`.
        y : array-like of shape (n,) or (n, n_outputs)
            Targets, with as many outputs as on the first call.
        sample_weight : array-like of shape (n,), default=None
            Per-sample weights in the loss.

        Returns
        -------
        self : RNNImageRegressor
            The regressor, trained for one more epoch.
        """
        return self._fit(X, y, sample_weight, partial=True)

    @dask_aware(lambda self, X: (() if self._y_1d else (self.n_outputs_,), np.float64))
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted targets.

        Parameters
        ----------
        X : array-like
            Images, as in :meth:`fit`.

        Returns
        -------
        y : ndarray of shape (n,) or (n, n_outputs)
            Predictions on the scale of the training targets, shaped like ``y`` in ``fit``.
        """
        outputs = self._forward(X).astype(np.float64) * self._y_scale + self._y_mean
        return outputs[:, 0] if self._y_1d else outputs

    def _encode_targets(self, y, images, *, fitting, classes=None):
        if y is None:
            raise ValueError("RNNImageRegressor requires y to be passed, but the target y is None.")
        y_shape = np.shape(np.asarray(y))  # np.asarray: array-likes need not support np.ndim
        if len(y_shape) not in (1, 2):
            raise ValueError(f"y must have shape (n,) or (n, n_outputs), got shape {y_shape}.")
        y = check_array(
            y, ensure_2d=False, dtype="numeric", input_name="y", ensure_min_samples=1
        ).astype(np.float64)
        check_target_length(images, y)
        targets = y.reshape(len(y), -1)
        if fitting:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = targets.shape[1]
            self._y_mean = targets.mean(axis=0)
            scale = targets.std(axis=0)
            self._y_scale = np.where(scale > 1e-12, scale, 1.0)
        elif targets.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {targets.shape[1]} output(s), but this regressor was fitted with "
                f"{self.n_outputs_}."
            )
        return ((targets - self._y_mean) / self._y_scale).astype(np.float32)

    def _check_fitted(self) -> None:
        super()._check_fitted()
        n_outputs = self.n_outputs_
        if (
            not isinstance(n_outputs, numbers.Integral)
            or isinstance(n_outputs, bool)
            or (n_outputs < 1 or (self._y_1d is True and n_outputs != 1))
        ):
            raise ValueError(
                f"n_outputs_ should be a positive int (1 for one target per image), got "
                f"{n_outputs!r:.40}."
            )
        if not isinstance(self._y_1d, bool):
            raise ValueError(f"_y_1d should be True or False, got {self._y_1d!r:.40}.")
        for name in ("_y_mean", "_y_scale"):
            value = getattr(self, name)
            if (
                not isinstance(value, np.ndarray)
                or value.dtype != np.float64
                or value.shape != (n_outputs,)
                or not np.isfinite(value).all()
                or (name == "_y_scale" and not (value > 0).all())
            ):
                raise ValueError(
                    f"{name} should be {n_outputs} finite float64 value(s) (positive for the "
                    f"scale), one per output, got {value!r:.100}."
                )

    def _n_outputs(self):
        return self.n_outputs_

    def _criterion_params(self):
        return {"kind": self.loss}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags
