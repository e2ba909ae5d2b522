"""What every skrnn estimator shares: parameters, validation, the skorch net, training, inference.

Each estimator adds only its torch module (``_module_params``), its loss (``_criterion_params``)
and how its targets are shaped (``_encode_targets``), following the sklearn contract: ``__init__``
only stores parameters and every check happens in ``fit``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from skorch.callbacks import Callback, EarlyStopping, GradientNormClipping, ProgressBar
from skorch.dataset import ValidSplit

from ._data import ArrayDataset, BatchLoader, as_batch_source, read_rows
from ._losses import WeightedLoss
from ._net import (
    LRSchedule,
    RollbackUnfinishedEpoch,
    SkrnnNet,
    StopOnNonFiniteLoss,
)
from ._registry import register_estimator
from ._utils import (
    fused_optimizer_supported,
    resolve_device,
    seed_from,
    seeded,
    torch_threads,
)
from ._validation import check_image_shape, check_images
from .cells import get_cell
from .exceptions import NonFiniteLossError
from .sequence import ORDERS, check_patch_size

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
# The float32 input one inference batch may hold: 4 MiB is 1024 images of 32x32 pixels.
INFERENCE_INPUT_BYTES = 1 << 22
# Named optimizers that have a fused single-kernel implementation in torch.
FUSED_OPTIMIZERS = ("adam", "adamw")

SHARED_PARAMETERS_DOC = """cell : str or callable, default="gru"
        The recurrent cell: a name from :func:`skrnn.cells.list_cells` (``"rnn"``, ``"lstm"``,
        ``"gru"`` or a plugin) or a cell factory.
    hidden_size : int or tuple of int, default=128
        Units per recurrent layer. A tuple such as ``(64, 32)`` stacks layers of those sizes.
    num_layers : int, default=1
        Number of stacked recurrent layers of ``hidden_size`` units (int ``hidden_size`` only).
    bidirectional : bool, default=True
        Read each sequence in both directions and concatenate the two.
    dropout : float, default=0.5 for the classifier, 0.0 otherwise
        Dropout between recurrent layers and in the dense head (including before the output
        layer).
    max_epochs : int, default=30
        Passes over the training data.
    batch_size : int, default=32
        Samples per gradient step.
    lr : float, default=3e-3
        Learning rate.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"} or torch optimizer class, default="adam"
    weight_decay : float, default=0.0
        L2 penalty passed to the optimizer.
    lr_schedule : {"onecycle", "cosine", "constant"}, default="onecycle"
        How the learning rate moves during training: a one-cycle warm-up and annealing over
        ``max_epochs`` (reaching ``lr`` at its peak), cosine annealing per epoch, or constant.
    max_grad_norm : float or None, default=5.0
        Clip the gradient norm to this value each step (None turns clipping off).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for classifiers),
        stop when the validation loss has not improved for ``n_iter_no_change`` epochs, and
        restore the weights of the best epoch.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping=True``.
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
    device : str, default="auto"
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    n_threads : int or None, default=None
        Torch CPU threads during ``fit`` and ``predict``. None keeps torch's setting, which
        follows ``OMP_NUM_THREADS`` and the per-worker limits of joblib and sklearn's
        ``n_jobs``, so parallel searches do not oversubscribe the cores; it is capped at the
        cores the process may use, a container's CPU quota included.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation split. With an int,
        refits on the CPU are bit-identical.
    verbose : int, default=0
        0 prints nothing; 1 shows a progress bar and a per-epoch table of losses and the
        validation score.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit`` instead of starting anew.
    callbacks : list of skorch callbacks or (name, callback) pairs, default=None
        Extra skorch callbacks, for power users."""


def fill_shared_doc(cls):
    """Put the shared parameter descriptions into a class docstring's ``{shared}`` slot."""
    cls.__doc__ = cls.__doc__.replace("{shared}", SHARED_PARAMETERS_DOC)
    return cls


def _check_hidden_size(hidden_size, num_layers):
    if isinstance(hidden_size, (tuple, list)):
        if not hidden_size or not all(
            isinstance(h, numbers.Integral) and not isinstance(h, bool) and h >= 1
            for h in hidden_size
        ):
            raise ValueError(
                f"hidden_size must be a positive int or a non-empty tuple of positive ints, "
                f"got {hidden_size!r}."
            )
        if num_layers != 1:
            raise ValueError(
                f"hidden_size={tuple(hidden_size)!r} already gives one layer per entry; leave "
                f"num_layers at 1 (got {num_layers})."
            )
        return tuple(int(h) for h in hidden_size)
    return int(hidden_size)


class BaseRNNEstimator(BaseEstimator):
    """The base of every skrnn estimator. Not for direct use."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_estimator(cls)  # so that model files can name it

    _parameter_constraints: dict = {
        "cell": [str, callable],
        "hidden_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "num_layers": [Interval(numbers.Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "readout": [StrOptions({"last", "mean", "max"})],
        "head": [tuple, list, None],
        "image_shape": [tuple, list, None],
        "order": [StrOptions(set(ORDERS))],
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list, None],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"onecycle", "cosine", "constant"})],
        "max_grad_norm": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "callbacks": [list, None],
        "embedding_dim": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_tokens": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    # Set by subclasses.
    _loss: str = "cross_entropy"
    _stratify: bool = False
    _valid_score: tuple | None = None
    _fixed_image_size = True

    # ----------------------------------------------------------------- hooks for subclasses
    def _encode_targets(self, y, images, *, fitting: bool) -> np.ndarray:
        """Validate ``y`` and return what the loss compares module outputs with."""
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _criterion_params(self) -> dict:
        return {}

    def _module_class(self):
        from ._modules import SequenceModel

        return SequenceModel

    def _module_params(self) -> dict:
        """Keyword arguments of the torch module; fitted attributes are available."""
        return {
            "image_shape": self.image_shape_,
            "order": self.order,
            "patch_size": self._patch_size,
            "n_outputs": self._n_outputs(),
            "cell": self.cell,
            "hidden_size": self._hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "readout": self.readout,
            "head": tuple(self.head or ()),
            "input_mean": self._input_mean,
            "input_std": self._input_std,
            "n_tokens": self.n_tokens_ if self._embeds() else None,
            "embedding_dim": getattr(self, "embedding_dim", None),
        }

    # ----------------------------------------------------------------- token inputs
    def _embeds(self) -> bool:
        """Whether inputs are integer ids (tokens or pixel levels) embedded as vectors."""
        return getattr(self, "embedding_dim", None) is not None

    def _check_tokens(self, images, *, reset: bool) -> None:
        """Check integer ids for the embedding; on ``reset`` learn ``n_tokens_``."""
        if not np.issubdtype(images.dtype, np.integer):
            raise ValueError(
                f"embedding_dim is set, so X must hold integer token ids, but it has dtype "
                f"{images.dtype}. Pass integer ids in [0, n_tokens), or leave embedding_dim=None "
                "for real-valued inputs."
            )
        low, high = int(images.min()), int(images.max())
        if low < 0:
            raise ValueError(f"Token ids must be >= 0, but X contains {low}.")
        if reset:
            self.n_tokens_ = int(self.n_tokens) if self.n_tokens is not None else high + 1
        if high >= self.n_tokens_:
            raise ValueError(
                f"X contains token id {high}, but this model knows ids 0 to {self.n_tokens_ - 1} "
                f"(n_tokens={self.n_tokens_})."
            )

    # ----------------------------------------------------------------- validation
    def _check_params(self):
        self._validate_params()
        get_cell(self.cell)
        self._hidden_size = _check_hidden_size(self.hidden_size, self.num_layers)
        head = getattr(self, "head", None)
        if head is not None and not all(isinstance(w, numbers.Integral) and w >= 1 for w in head):
            raise ValueError(f"head must be a tuple of positive ints, got {head!r}.")
        if isinstance(self.optimizer, type) and not issubclass(
            self.optimizer, torch.optim.Optimizer
        ):
            raise TypeError(
                f"optimizer must be a name ({', '.join(sorted(OPTIMIZERS))}) or a subclass of "
                f"torch.optim.Optimizer, got the class {self.optimizer.__name__}."
            )
        for callback in self.callbacks or []:
            named = isinstance(callback, tuple) and len(callback) == 2
            if not isinstance(callback[1] if named else callback, Callback):
                raise TypeError(
                    "callbacks must be a list of skorch callbacks or (name, callback) pairs, "
                    f"got an entry {callback!r}."
                )
        self._device = resolve_device(self.device)

    def _check_X(self, X, *, reset: bool):
        images = check_images(
            self,
            X,
            reset=reset,
            image_shape=check_image_shape(getattr(self, "image_shape", None)),
            fixed_size=self._fixed_image_size,
        )
        if reset:
            self._patch_size = check_patch_size(
                getattr(self, "patch_size", None), getattr(self, "order", "rows"), self.image_shape_
            )
        return images

    def _is_fitted(self) -> bool:
        return hasattr(self, "net_")

    # ----------------------------------------------------------------- training
    def _input_statistics(self, images: np.ndarray):
        """Per-channel mean and standard deviation, computed in slices to spare memory."""
        channels = images.shape[-1]
        total = np.zeros(channels)
        total_sq = np.zeros(channels)
        count = 0
        step = max(1, (1 << 20) // max(1, images[0].size))
        for start in range(0, len(images), step):
            chunk = read_rows(images, slice(start, start + step), np.float64)
            chunk = chunk.reshape(-1, channels)
            total += chunk.sum(axis=0)
            total_sq += np.square(chunk).sum(axis=0)
            count += len(chunk)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        std[std < 1e-8] = 1.0
        return mean.tolist(), std.tolist()

    def _training_setup(self, n_train: int, seed: int, *, partial: bool) -> dict:
        """The net settings of one training call: validation split, schedule, early stopping.

        Partial fits train on every sample at a constant learning rate; full fits follow
        ``early_stopping`` and ``lr_schedule``, with a fresh schedule on every call so warm
        starts work too.
        """
        split = None
        if self.early_stopping and not partial:
            split = ValidSplit(
                self.validation_fraction, stratified=self._stratify, random_state=seed
            )
        schedule = None
        if self.lr_schedule != "constant" and not partial:
            n_fit = n_train - (int(np.ceil(self.validation_fraction * n_train)) if split else 0)
            steps = self.max_epochs * int(np.ceil(max(n_fit, 1) / self.batch_size))
            schedule = LRSchedule(self.lr_schedule, steps, self.lr)
        stopping = None
        if split is not None:
            stopping = EarlyStopping(patience=self.n_iter_no_change, load_best=True)
        # The weight check runs before the rollback marks an epoch as finished.
        callbacks = [
            ("nonfinite_loss", StopOnNonFiniteLoss()),
            ("rollback", RollbackUnfinishedEpoch()),
        ]
        if schedule is not None:
            callbacks.append(("lr_schedule", schedule))
        if stopping is not None:
            callbacks.append(("early_stopping", stopping))
        if self.max_grad_norm is not None:
            callbacks.append(("clip", GradientNormClipping(self.max_grad_norm)))
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks += list(self.callbacks or [])
        return {
            "train_split": split,
            "valid_score": self._valid_score if split is not None else None,
            "callbacks": callbacks,
        }

    def _optimizer_params(self) -> dict:
        """Keyword arguments of the optimizer: the weight decay, and torch's fused Adam kernel
        (one kernel per step for all parameters) wherever this torch build has it."""
        params = {"weight_decay": self.weight_decay}
        if self.optimizer in FUSED_OPTIMIZERS and fused_optimizer_supported(self._device):
            params["fused"] = True
        return params

    def _build_net(self, setup: dict):
        optimizer = OPTIMIZERS.get(self.optimizer, self.optimizer)
        return SkrnnNet(
            module=self._module_class(),
            criterion=WeightedLoss,
            valid_score=setup["valid_score"],
            optimizer=optimizer,
            lr=self.lr,
            **{f"optimizer__{k}": v for k, v in self._optimizer_params().items()},
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=BatchLoader,
            iterator_train__shuffle=True,
            iterator_valid=BatchLoader,
            train_split=setup["train_split"],
            callbacks=setup["callbacks"],
            predict_nonlinearity=None,
            warm_start=True,
            verbose=int(self.verbose),
            device=str(self._device),
            **{f"module__{k}": v for k, v in self._module_params().items()},
            **{f"criterion__{k}": v for k, v in self._criterion_params().items()},
        )

    def _fit(self, X, y, sample_weight=None, *, partial: bool = False):
        """Validate, build or reuse the net, and train it; the body of ``fit``/``partial_fit``."""
        self._check_params()
        continuing = self._is_fitted() and (partial or self.warm_start)
        images = self._check_X(X, reset=not continuing)
        if len(images) < 2 and not partial:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples to fit, "
                f"got n_samples={len(images)}."
            )
        if self._embeds():
            self._check_tokens(images, reset=not continuing)
        targets = self._encode_targets(y, images, fitting=not continuing)
        weights = self._sample_weights(targets, sample_weight, images)
        seed = seed_from(self.random_state)
        if not continuing and not self._embeds():
            self._input_mean, self._input_std = self._input_statistics(images)
        elif not continuing:
            self._input_mean, self._input_std = [0.0], [1.0]
        dataset = self._make_dataset(images, targets, weights)
        with torch_threads(self.n_threads), seeded(seed, self._device):
            setup = self._training_setup(len(images), seed, partial=partial)
            if continuing:
                # The default callbacks depend on valid_score, so it goes first.
                self.net_.set_params(
                    valid_score=setup["valid_score"], train_split=setup["train_split"]
                )
                self.net_.set_params(callbacks=setup["callbacks"])
                # skorch's set_params rebuilds callbacks_ from the old list; use the new one.
                self.net_.initialize_callbacks()
            else:
                self.net_ = self._build_net(setup)
                self.net_.initialize()
            epochs = 1 if partial else self.max_epochs
            rollback = dict(self.net_.callbacks_)["rollback"]
            try:
                self.net_.partial_fit(dataset, targets if self._stratify else None, epochs=epochs)
            except KeyboardInterrupt:  # outside skorch's own handling (e.g. in on_train_begin)
                rollback.roll_back(self.net_)
                rollback.interrupted_ = True
            except NonFiniteLossError as exc:
                # Never leave NaN weights behind: go back to the last epoch that finished.
                rollback.roll_back(self.net_)
                if continuing or len(self.net_.history):
                    self._record_history()
                    kept = f"The model keeps the weights of epoch {self.n_iter_}."
                    if not len(self.net_.history):
                        kept = "The model keeps the weights it had before this call."
                else:
                    for name in ("net_", "history_", "n_iter_"):
                        self.__dict__.pop(name, None)
                    kept = "No epoch finished, so the estimator is left unfitted."
                raise NonFiniteLossError(f"{exc} {kept}") from None
            if rollback.interrupted_:
                # skorch stops quietly on Ctrl-C; the unfinished epoch has been undone.
                warnings.warn(
                    f"fit was interrupted; the model keeps the weights of the last completed "
                    f"epoch ({len(self.net_.history)} epoch(s) in history_).",
                    RuntimeWarning,
                    stacklevel=3,
                )
        self._record_history()
        return self

    def _make_dataset(self, images, targets, weights):
        """The training data set the net reads: the images, their targets and sample weights.

        An estimator whose module reads something other than the images (for example integer
        codes built in ``_encode_targets``) overrides this.
        """
        dtype = self._input_dtype()
        return ArrayDataset(as_batch_source(images, dtype), targets, weights, dtype=dtype)

    def _sample_weights(self, targets, sample_weight, images):
        if sample_weight is None:
            return None
        weights = _check_sample_weight(sample_weight, images[:, 0, 0, 0], dtype=np.float32)
        if (weights < 0).any():  # a negative weight would make the loss unbounded below
            raise ValueError(
                f"Negative values in sample_weight (smallest {weights.min():g}); sample "
                "weights must be non-negative."
            )
        return weights

    def _record_history(self):
        history = [
            {key: value for key, value in epoch.items() if key != "batches"}
            for epoch in self.net_.history
        ]
        self.history_ = history
        self.n_iter_ = len(history)

    # ----------------------------------------------------------------- inference
    def _forward(self, X) -> np.ndarray:
        """Raw module outputs for ``X``, in large batches under ``torch.inference_mode``."""
        check_is_fitted(self, "net_")
        images = self._check_X(X, reset=False)
        if self._embeds():
            self._check_tokens(images, reset=False)
        return self._forward_images(images)

    def _inference_batch_size(self, values_per_image: int | None = None) -> int:
        """Images per inference batch, never fewer than a training batch.

        On a GPU, up to 1024 images keep the device busy. On the CPU, 256: larger batches
        push a recurrent layer's per-sequence working memory (the gate pre-activations of
        every step) out of the caches, and 28x28 images predicted 1024 at a time ran 20-40 %
        slower than 256 at a time. Either way a batch holds at most about
        ``INFERENCE_INPUT_BYTES`` of float32 input, so large images come in small batches.
        """
        if values_per_image is None:
            values_per_image = self.n_features_in_
        per_image = 4 * max(1, int(values_per_image))
        on_gpu = getattr(self, "_device", torch.device("cpu")).type == "cuda"
        most = max(self.batch_size, 1024 if on_gpu else 256)
        return int(np.clip(INFERENCE_INPUT_BYTES // per_image, self.batch_size, most))

    def _forward_images(self, images) -> np.ndarray:
        module = self.net_.module_
        device = self.net_.device
        was_training = module.training
        module.eval()
        outputs = None
        batch_size = self._inference_batch_size(int(np.prod(images.shape[1:])))
        try:
            with torch_threads(self.n_threads), torch.inference_mode():
                for start in range(0, len(images), batch_size):
                    chunk = read_rows(images, slice(start, start + batch_size))
                    batch = torch.as_tensor(chunk, dtype=self._input_dtype()).to(device)
                    result = module(batch).float().cpu().numpy()
                    if outputs is None:
                        # One array for every output, filled batch by batch: no list of
                        # per-batch pieces to concatenate, and no small long-lived blocks
                        # left between the batches' large temporary ones, which would keep
                        # the allocator from returning memory (RSS would grow with the data).
                        outputs = np.empty((len(images),) + result.shape[1:], np.float32)
                    outputs[start : start + len(result)] = result
        finally:
            module.train(was_training)
        return outputs

    def _input_dtype(self):
        return torch.long if self._embeds() else torch.float32

    # ----------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Save this fitted estimator to one safe file (weights in safetensors, rest in JSON).

        Nothing is pickled, so :func:`skrnn.load` runs no code from the file: use it to share
        models or to open files from sources you do not trust. Pickle and joblib keep working
        for sklearn workflows. Callbacks are not saved.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            Where to write; an existing file is replaced once the new one is complete.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the estimator has not been fitted.
        ValueError
            If ``cell`` is a factory that is not registered under a name.

        Examples
        --------
        >>> import io
        >>> import skrnn
        >>> from skrnn.datasets import load_digits_images
        >>> X, y = load_digits_images(return_X_y=True)
        >>> clf = skrnn.RNNImageClassifier(hidden_size=8, max_epochs=1, random_state=0)
        >>> clf = clf.fit(X[:100], y[:100])
        >>> buffer = io.BytesIO()
        >>> clf.save(buffer)
        >>> _ = buffer.seek(0)
        >>> skrnn.load(buffer).predict(X[:3]).shape
        (3,)
        """
        from ._persistence import save_model

        save_model(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
