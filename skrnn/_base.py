"""What every skrnn estimator shares: the common parameters, the ``fit`` template, the skorch net,
one inference loop, and saving.

An estimator adds its parameters and these hooks, each of which it truly owns:

``_check_X(X, reset)``
    Validate ``X`` and return an image batch ``(n, H, W, C)``; on ``reset`` learn its shape.
``_encode_targets(y, images, fitting, classes)``
    Validate ``y`` and return it encoded for ``_make_dataset`` (class indices, scaled values,
    index masks); when ``fitting`` (a fresh fit), learn what the targets need (classes,
    scaling). ``classes`` is what a first ``partial_fit`` announced, for estimators with class
    labels; the others ignore it.
``_learn_inputs(images)``
    On a fresh fit, learn what the module needs from the inputs (statistics, levels, tokens).
``_module_params()`` / ``_criterion_params()``
    Keyword arguments of the torch module (``_module_class``) and of the loss.

and may extend ``_check_params`` (its own parameter checks), ``_make_dataset`` (a module that
reads something other than the images), ``_inference_batch_size`` (a tighter memory bound) and
``_augmenter`` (what changes each training batch, see :mod:`skrnn._augment`).
Following the sklearn contract, ``__init__`` only stores parameters and every check happens in
``fit``.
"""

from __future__ import annotations

import contextlib
import numbers
import os
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from skorch.callbacks import Callback, EarlyStopping, GradientNormClipping, ProgressBar
from skorch.dataset import ValidSplit
from skorch.history import History

from ._checkpoint import Checkpoint, data_digest, fit_identity, weights_digest
from ._data import (
    ArrayDataset,
    BatchLoader,
    as_batch_source,
    padded_rows,
    read_rows,
    to_device,
)
from ._limits import check_image_size
from ._losses import WeightedLoss
from ._net import (
    ONECYCLE_WARMUP,
    LRSchedule,
    RollbackUnfinishedEpoch,
    SkrnnNet,
    StopOnNonFiniteLoss,
    StopWhenConverged,
)
from ._persistence import save_model
from ._precision import PRECISIONS, autocast
from ._random import fit_random, seeded
from ._registry import register_estimator
from ._utils import (
    device_memory_bytes,
    format_bytes,
    fused_optimizer_supported,
    gpu_batch_size,
    grown_base_epochs,
    is_out_of_memory,
    release_cached_memory,
    resolve_device,
    seed_from,
    torch_threads,
)
from ._validation import (
    booleans_for_numbers,
    check_hidden_size,
    finite_values_checked_elsewhere,
    non_finite_error,
)
from .cells import _BUILTINS, get_cell
from .distributed import (
    Shard,
    SyncAcrossRanks,
    checkpoint_from_main,
    data_parallel,
    local_device,
    process_group,
    same_data_everywhere,
)
from .distributed import rank as distributed_rank
from .exceptions import DistributedError, NonFiniteLossError, OutOfMemoryError

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
# Named optimizers that have a fused single-kernel implementation in torch.
FUSED_OPTIMIZERS = ("adam", "adamw")
# The float32 input one inference batch may hold: 4 MiB is 1024 images of 32x32 pixels.
INFERENCE_INPUT_BYTES = 1 << 22
# The most images an inference batch holds, by device (see _inference_batch_size).
CPU_INFERENCE_BATCH, CUDA_INFERENCE_BATCH = 128, 1024
# The most epochs max_epochs="auto" chooses, for data sets of a handful of images.
MAX_AUTO_EPOCHS = 1000

# Attributes that are rebuilt from the others rather than saved in a model file.
_REBUILT_ATTRIBUTES = frozenset({"net_", "_device", "_group", "_metadata_request"})


class _InferenceResults:
    """The outputs of an inference loop, gathered batch by batch into one array.

    On a GPU a batch's result is copied to the host without waiting, and written out once the
    next batch has been queued: the device always has work, and the host never waits for a
    batch it does not need yet.
    """

    def __init__(self, n: int, dtype, device: torch.device):
        self.n = n
        self.dtype = dtype
        self.on_gpu = device.type == "cuda"
        self.outputs = None
        self.pending = None  # (start, stop, host tensor, event) of a copy under way

    def add(self, start: int, stop: int, result: torch.Tensor) -> None:
        if not self.on_gpu:
            self._store(start, stop, result.cpu().numpy())
            return
        host = result.to("cpu", non_blocking=True)  # into page-locked memory
        copied = torch.cuda.Event()
        # On the stream of the result's GPU, which need not be the current device's (a worker
        # of a parallel search on cuda:1).
        copied.record(torch.cuda.current_stream(result.device))
        self._flush()
        self.pending = (start, stop, host, copied)

    def _flush(self) -> None:
        if self.pending is not None:
            start, stop, host, copied = self.pending
            copied.synchronize()
            self._store(start, stop, host.numpy())
            self.pending = None

    def _store(self, start: int, stop: int, result: np.ndarray) -> None:
        if self.outputs is None:
            self.outputs = np.empty((self.n,) + result.shape[1:], self.dtype)
        self.outputs[start:stop] = result

    def finish(self):
        self._flush()
        return self.outputs


def _same(a, b) -> bool:
    """Whether two parameter values are equal, arrays and nested sequences included."""
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        try:
            return np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
        except (TypeError, ValueError):
            return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return a is b


class BaseRNNEstimator(BaseEstimator):
    """The base of every skrnn estimator. Not for direct use."""

    _parameter_constraints: dict = {
        "cell": [str, callable],
        "hidden_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple, list],
        "num_layers": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"onecycle", "cosine", "constant"})],
        "max_grad_norm": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left"), None],
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "callbacks": [list, None],
        "checkpoint": [str, os.PathLike, None],
        "distributed": [StrOptions({"auto"}), "boolean"],
    }

    # Set by the estimators.
    _module_class: type[torch.nn.Module]
    _stratify: bool = False  # hold out a stratified validation split (classifiers)
    _valid_score: tuple | None = None  # (history key, score(y_true, outputs)) for early stopping
    # max_epochs="auto": at least _base_epochs, and enough for _min_updates gradient steps.
    _base_epochs: int = 30
    _min_updates: int = 1000
    # batch_size="auto": this on the CPU, more on a GPU (see _training_batch_size).
    _cpu_batch_size: int = 32
    # Model files written before a parameter existed hold models built without it: such a
    # parameter takes the value that describes them. Before tol, "auto" trained its budget.
    _value_before_parameter_existed: dict = {"tol": None}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_estimator(cls)  # so that model files can name it

    # ----------------------------------------------------------------- hooks
    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        """Validate ``X`` and return it as images ``(n, H, W, C)``; on ``reset`` learn its shape."""
        raise NotImplementedError

    def _encode_targets(self, y, images, *, fitting: bool, classes=None):
        """Validate ``y``; return it encoded for :meth:`_make_dataset`.

        ``fitting`` is True on a fresh fit, when what the targets need is learnt; ``classes``
        holds the classes a first ``partial_fit`` announced, for estimators with class labels.
        """
        raise NotImplementedError

    def _learn_inputs(self, images) -> None:
        """On a fresh fit, learn from the images what the module needs (e.g. statistics)."""
        raise NotImplementedError

    def _learn_targets(self, targets, weights) -> None:
        """On a fresh fit, learn from the encoded targets and the per-sample weights (None
        for equal weights) what the loss needs (e.g. class weights); nothing by default."""

    def _module_params(self) -> dict:
        """Keyword arguments of ``_module_class``; the fitted attributes are available."""
        raise NotImplementedError

    def _criterion_params(self) -> dict:
        """Keyword arguments of the loss, :class:`skrnn._losses.WeightedLoss`."""
        raise NotImplementedError

    # ----------------------------------------------------------------- validation
    def _check_params(self) -> None:
        """Check the parameters (estimators extend this with their own)."""
        self._validate_params()
        booleans = booleans_for_numbers(type(self), self.get_params(deep=False))
        if booleans:
            name = booleans[0]
            raise ValueError(
                f"{name}={getattr(self, name)} is not valid: {name} takes numbers, not booleans."
            )
        get_cell(self.cell)
        self._hidden_size = check_hidden_size(*self._layer_sizes())
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
        if self.precision == "float16" and self._device.type != "cuda":
            raise ValueError(
                f"precision='float16' trains on CUDA devices only (with loss scaling), but this "
                f"estimator runs on {self._device}. Use precision='bfloat16' or 'float32' there."
            )

    def _layer_sizes(self) -> tuple:
        """``(hidden_size, num_layers)`` to check; an estimator whose sizes are resolved
        later (from the data) returns what it can check now."""
        return self.hidden_size, self.num_layers

    def _is_fitted(self) -> bool:
        return hasattr(self, "net_")

    def _sample_weights(self, sample_weight, images) -> np.ndarray | None:
        if sample_weight is None:
            return None
        if not np.isscalar(sample_weight):
            sample_weight = np.asarray(sample_weight)
            if sample_weight.ndim == 1 and len(sample_weight) != len(images):
                raise ValueError(
                    f"sample_weight has {len(sample_weight)} values, but X has {len(images)} "
                    "samples; pass one weight per sample."
                )
        weights = _check_sample_weight(sample_weight, images[:, 0, 0, 0], dtype=np.float32)
        if (weights < 0).any():  # a negative weight would make the loss unbounded below
            raise ValueError(
                f"Negative values in sample_weight (smallest {weights.min():g}); sample "
                "weights must be non-negative."
            )
        if not weights.any():  # nothing would be learnt, silently
            raise ValueError(
                "Sample weights must contain at least one non-zero number: every sample has "
                "weight 0, so nothing could be learnt."
            )
        return weights

    # ----------------------------------------------------------------- training
    def _make_dataset(self, images, targets, weights) -> ArrayDataset:
        """The training data the net reads: the images, their targets and sample weights."""
        dtype = self._input_dtype()
        return ArrayDataset(as_batch_source(images, dtype), targets, weights, dtype=dtype)

    def _input_dtype(self) -> torch.dtype:
        """The dtype of the module's input tensors."""
        return torch.float32

    def _augmenter(self):
        """What changes each training batch (``augment(X, y) -> (X, y)``), or None.

        Estimators with an ``augment`` parameter get it from
        :class:`skrnn._augment.AugmentMixin`.
        """
        return None

    def _training_batch_size(self, device=None) -> int:
        """Samples per gradient step: ``batch_size``, or for ``"auto"`` the estimator's CPU
        batch, except on a GPU with ``max_epochs="auto"``: there that batch is doubled while it
        stays at most 8 times as large and holds at most about a million input values
        (:func:`skrnn._utils.gpu_batch_size`; a GPU trains small batches at the speed of its
        kernel launches, not of its arithmetic: 256 images of 28x28 take about as long as 32),
        and the automatic epochs keep the gradient steps enough. A given ``max_epochs`` keeps
        the CPU batch, so that N epochs train alike on every device.

        In a distributed fit the batch is the global one, split between the processes; for
        ``"auto"`` each process takes the batch it would take alone (a step's cost hardly
        depends on a small batch's size, so a share of one process's batch would save little
        time), and the automatic epochs grow with that global batch as on a GPU.
        """
        if self.batch_size != "auto":
            return int(self.batch_size)
        size = self._cpu_batch_size
        if device is None:
            device = getattr(self, "_device", None) or resolve_device(self.device)
        if torch.device(device).type == "cuda" and self.max_epochs == "auto":
            size = gpu_batch_size(size, int(np.prod(getattr(self, "image_shape_", (1,)))))
        group = getattr(self, "_group", None)
        return size * (1 if group is None else group.size)

    def _epochs(self, n_fit: int) -> int:
        """The epochs of a full fit on ``n_fit`` training samples: ``max_epochs`` or, for
        ``"auto"``, at least ``_base_epochs`` and enough for ``_min_updates`` gradient steps
        (at most ``MAX_AUTO_EPOCHS``), so a few large images train as long as many small ones.
        For ``"auto"`` this is a budget: :class:`skrnn._net.StopWhenConverged` ends the fit
        sooner once the training loss stops improving.
        """
        if self.max_epochs != "auto":
            return int(self.max_epochs)
        steps_per_epoch = int(np.ceil(max(n_fit, 1) / self._training_batch_size()))
        wanted = int(np.ceil(self._min_updates / steps_per_epoch))
        return int(np.clip(wanted, self._base_auto_epochs(), MAX_AUTO_EPOCHS))

    def _base_auto_epochs(self) -> int:
        """The fewest epochs of ``max_epochs="auto"``: ``_base_epochs``, grown by ``sqrt(g)``
        where ``batch_size="auto"`` took ``g`` times the CPU's batch (on a GPU): ``g`` times
        fewer, less noisy steps an epoch learn less (on 20,000 MNIST-sized digits, batches of
        256 for 30 epochs reached 0.965 test accuracy where batches of 32 reached 0.979, and 90
        epochs of 256 reached 0.979)."""
        if self.batch_size != "auto":
            return self._base_epochs
        batch_size = self._training_batch_size()
        return grown_base_epochs(self._base_epochs, batch_size, self._cpu_batch_size)

    def _expected_auto_epochs(self) -> int:
        """The epochs a fit of ``max_epochs="auto"`` expects to need, over which its learning
        rate warms up: the base epochs (on small data the budget is far longer, but the
        training loss usually stops the fit much sooner)."""
        return self._base_auto_epochs()

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
        callbacks = [  # the weight check runs before the rollback marks an epoch as finished
            ("nonfinite_loss", StopOnNonFiniteLoss()),
            ("rollback", RollbackUnfinishedEpoch()),
        ]
        group, shard = getattr(self, "_group", None), None
        if group is not None:  # before every callback that reads the epoch's training loss
            shard = Shard(group.rank, group.size, seed)
            callbacks.append(("distributed", SyncAcrossRanks(group, shard)))
        n_fit = n_train - (int(np.ceil(self.validation_fraction * n_train)) if split else 0)
        epochs = 1 if partial else self._epochs(n_fit)
        steps_per_epoch = int(np.ceil(max(n_fit, 1) / self._training_batch_size()))
        # max_epochs="auto" is a budget: without a validation split to stop on, the training
        # loss ends the fit once it stops improving (a validation split decides by itself).
        converging = (
            self.max_epochs == "auto" and split is None and not partial and self.tol is not None
        )
        if self.lr_schedule != "constant" and not partial:
            # A budget the fit may stop short of warms up over the length it expects.
            warmup = None
            if converging:
                warmup = int(
                    ONECYCLE_WARMUP * min(epochs, self._expected_auto_epochs()) * steps_per_epoch
                )
            schedule = LRSchedule(self.lr_schedule, epochs * steps_per_epoch, self.lr, warmup)
            callbacks.append(("lr_schedule", schedule))
        if split is not None:
            stopping = EarlyStopping(patience=self.n_iter_no_change, load_best=True)
            callbacks.append(("early_stopping", stopping))
        if self.max_grad_norm is not None:
            callbacks.append(("clip", GradientNormClipping(self.max_grad_norm)))
        if self.verbose:
            callbacks.append(("progress_bar", ProgressBar()))
        callbacks += list(self.callbacks or [])
        if converging:  # after the user's callbacks, which then see the last epoch end too
            stop = StopWhenConverged(self.tol, self.n_iter_no_change, steps_per_epoch, epochs)
            callbacks.append(("converged", stop))
        return {
            "train_split": split,
            "valid_score": self._valid_score if split is not None else None,
            "callbacks": callbacks,
            "epochs": epochs,
            "shard": shard,
        }

    def _optimizer_params(self) -> dict:
        """Keyword arguments of the optimizer: the weight decay, and torch's fused Adam kernel
        (one kernel per step for all parameters) wherever this torch build has it."""
        params = {"weight_decay": self.weight_decay}
        if self.optimizer in FUSED_OPTIMIZERS and fused_optimizer_supported(self._device):
            params["fused"] = True
        return params

    def _defer_loss(self) -> bool:
        """Whether the net reads each batch's loss one batch late: on a GPU, so that training
        never waits for the device, unless a progress bar shows every batch's loss."""
        return self._device.type == "cuda" and not self.verbose

    def _data_device(self):
        """Where the training data move once per fit, if they fit there: the GPU (None on the
        CPU, where the batches are already in place)."""
        return self._device if self._device.type == "cuda" else None

    def _loader_params(self, shard=None) -> dict:
        """The batch loaders' settings that follow the parameters and the device: the training
        batches' augmentation, this process's share of them in a distributed fit, page-locked
        memory and the device the data move to."""
        on_gpu, data_device = self._device.type == "cuda", self._data_device()
        params = {"iterator_train__augment": self._augmenter(), "iterator_train__shard": shard}
        for loader in ("iterator_train", "iterator_valid"):
            params[f"{loader}__pin_memory"] = on_gpu
            params[f"{loader}__device"] = data_device
        return params

    def _initialize_net(self, setup: dict) -> SkrnnNet:
        """Build and initialise the skorch net from the parameters and the fitted state.

        The one place a net is made: ``fit`` calls it after learning from the data, and
        :func:`skrnn.load` after restoring the saved fitted attributes.
        """
        net = SkrnnNet(
            module=self._module_class,
            criterion=WeightedLoss,
            valid_score=setup["valid_score"],
            precision=self.precision,
            optimizer=OPTIMIZERS.get(self.optimizer, self.optimizer),
            lr=self.lr,
            **{f"optimizer__{k}": v for k, v in self._optimizer_params().items()},
            max_epochs=setup["epochs"],
            batch_size=self._training_batch_size(),
            defer_loss=self._defer_loss(),
            iterator_train=BatchLoader,
            iterator_train__shuffle=True,
            iterator_valid=BatchLoader,
            **self._loader_params(setup.get("shard")),
            train_split=setup["train_split"],
            callbacks=setup["callbacks"],
            predict_nonlinearity=None,
            warm_start=True,
            verbose=int(self.verbose),
            device=str(self._device),
            **{f"module__{k}": v for k, v in self._module_params().items()},
            **{f"criterion__{k}": v for k, v in self._criterion_params().items()},
        )
        return net.initialize()

    def _build_net(self, setup: dict) -> SkrnnNet:
        """:meth:`_initialize_net` for a fresh fit, which fails clearly on a model too large
        for the memory. A build that fails leaves the estimator unfitted: its fitted state
        already describes the new data, which the old net would not match.

        Weights larger than the memory they are built in are refused before anything is
        allocated: where the system overcommits memory, such an allocation succeeds and the
        process is killed later, when the weights are written.
        """
        weights = self._weight_bytes()
        memory, where = self._memory_for_weights()
        if weights is not None and memory is not None and weights > memory:
            self._forget_fit()
            raise OutOfMemoryError(
                f"Building the model would run out of memory on {self._device}: its weights "
                f"need {format_bytes(weights)}, more than the {format_bytes(memory)} of "
                f"{where} (hidden_size={self.hidden_size!r}, num_layers={self.num_layers}). "
                "Make the model smaller. The estimator is left unfitted."
            )
        try:
            return self._initialize_net(setup)
        except Exception as exc:
            # The fitted state already describes the new data: drop the old net with it.
            self._forget_fit()
            if not is_out_of_memory(exc):
                raise
            release_cached_memory(self._device)
            raise OutOfMemoryError(
                f"Building the model ran out of memory on {self._device}: its weights need more "
                f"memory than there is (hidden_size={self.hidden_size!r}, "
                f"num_layers={self.num_layers}). Make the model smaller. The estimator is left "
                "unfitted."
            ) from exc

    def _forget_fit(self) -> None:
        for name in ("net_", "history_", "n_iter_"):
            self.__dict__.pop(name, None)

    def _memory_for_weights(self) -> tuple[int | None, str]:
        """The memory the weights must fit in, and whose it is: the module is built in the
        host's memory and then moved to the device, so the smaller of the two."""
        host = device_memory_bytes(torch.device("cpu"))
        device = None if self._device.type == "cpu" else device_memory_bytes(self._device)
        if device is not None and (host is None or device < host):
            return device, f"the {self._device.type.upper()} device"
        return host, "the host's memory"

    def _weight_bytes(self) -> int | None:
        """The bytes of the module's weights, from a build on the meta device (shapes, no
        memory); None for cells of the user's own (a factory or a plugin), whose code is
        run once a fit, by the real build only."""
        if not (isinstance(self.cell, str) and self.cell in _BUILTINS):
            return None
        try:
            with torch.device("meta"):
                module = self._module_class(**self._module_params())
        except Exception:  # a part that cannot be built on the meta device
            return None
        return sum(p.nbytes for p in module.parameters())

    def _fit(self, X, y, sample_weight=None, *, partial: bool = False, classes=None):
        """The body of ``fit`` and ``partial_fit``: validate, build or reuse the net, train."""
        self._check_params()
        group = process_group(self.distributed, self._device)
        if group is not None:
            self._device = local_device(self._device)  # each process its own GPU
        fresh = not (self._is_fitted() and (partial or self.warm_start))
        if not fresh:
            fresh = self._network_params_changed(partial)
        images = self._check_X(X, reset=fresh)
        if len(images) < 2 and not partial:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 samples to fit, "
                f"got n_samples={len(images)}."
            )
        # Weights first: a refit that fails on them leaves the fitted state as it was.
        weights = self._sample_weights(sample_weight, images)
        targets = self._encode_targets(y, images, fitting=fresh, classes=classes)
        if fresh:
            self._learn_inputs(images)
            self._learn_targets(targets, weights)
        elif not partial:
            self._continue_targets(targets, weights)
        dataset = self._make_dataset(images, targets, weights)
        seed = seed_from(self.random_state)
        if group is not None:  # one seed for all (random_state=None draws one per process)
            seed = group.int_from_main(seed, "before training")
            same_data_everywhere(group, self, images, targets)
        self._group = group
        try:
            self._fit_with_seed(images, targets, weights, dataset, seed, fresh, partial)
        finally:
            del self._group
        self._record_history()
        return self

    def _fit_with_seed(self, images, targets, weights, dataset, seed, fresh, partial) -> None:
        """The training of :meth:`_fit`, under the fit's seed: build or continue the net,
        resume from a checkpoint, train."""
        group = self._group
        # Every draw of the fit comes from its own generators, so fits in threads overlap and
        # give what they give alone; only building the network seeds torch's (a short lock).
        with torch_threads(self.n_threads), fit_random(seed) as random:
            setup = self._training_setup(len(images), seed, partial=partial)
            checkpoint = None
            if self.checkpoint is not None and not partial:
                main = group is None or group.main
                identity = None  # only the first process reads and writes the checkpoint
                if main:
                    start = None if fresh else weights_digest(self.net_.module_)
                    identity = fit_identity(self, data_digest(images, targets, weights), start)
                checkpoint = Checkpoint(self.checkpoint, identity, writes=main)
                # A checkpoint of another fit is refused before anything changes.
                saved = (
                    checkpoint.read() if group is None else checkpoint_from_main(group, checkpoint)
                )
                setup["callbacks"].append(("checkpoint", checkpoint))
            if fresh:
                with seeded(seed, self._device):
                    self.net_ = self._build_net(setup)
            else:
                self._continue_optimizer()
                # Parameters of the loss (class weights, smoothing) take effect at once.
                criterion = {f"criterion__{k}": v for k, v in self._criterion_params().items()}
                if any(not _same(getattr(self.net_, k, None), v) for k, v in criterion.items()):
                    self.net_.set_params(**criterion)
                # The default callbacks depend on valid_score, so it goes first.
                self.net_.set_params(
                    valid_score=setup["valid_score"],
                    precision=self.precision,
                    defer_loss=self._defer_loss(),
                    train_split=setup["train_split"],
                    verbose=int(self.verbose),
                )
                # skorch reads the batch size and the loader's arguments from the net's
                # attributes; its set_params would refuse them on an initialised net.
                self.net_.batch_size = self._training_batch_size()
                for name, value in self._loader_params(setup["shard"]).items():
                    setattr(self.net_, name, value)
                self.net_.set_params(callbacks=setup["callbacks"])
                # skorch's set_params rebuilds callbacks_ from the old list; use the new one.
                self.net_.initialize_callbacks()
            with random.training(self.net_.module_, self._device):
                if checkpoint is None:
                    self._train(dataset, targets, epochs=setup["epochs"], fresh=fresh)
                else:
                    done = checkpoint.resume(self.net_, saved)
                    finished = self._train(
                        dataset, targets, epochs=max(setup["epochs"] - done, 0), fresh=fresh
                    )
                    if finished:
                        checkpoint.remove()

    def _continue_optimizer(self) -> None:
        """A warm start's optimizer: another ``optimizer`` starts a new one; another ``lr`` or
        ``weight_decay`` changes the one that has trained (keeping its moment estimates). A
        learning-rate schedule then sets the rate of every step from ``lr``."""
        wanted = OPTIMIZERS.get(self.optimizer, self.optimizer)
        params = self._optimizer_params()
        if self.net_.optimizer is not wanted:
            for name in [n for n in vars(self.net_) if n.startswith("optimizer__")]:
                delattr(self.net_, name)  # the last optimizer's arguments (e.g. fused)
            self.net_.optimizer, self.net_.lr = wanted, self.lr
            for name, value in params.items():
                setattr(self.net_, f"optimizer__{name}", value)
            self.net_.initialize_optimizer()
            return
        self.net_.lr = self.lr
        for group in self.net_.optimizer_.param_groups:
            group["lr"] = self.lr
            group["initial_lr"] = self.lr  # (schedules restart from it)
            if "weight_decay" in group:
                group["weight_decay"] = params["weight_decay"]
        for name, value in params.items():
            setattr(self.net_, f"optimizer__{name}", value)

    def _continue_targets(self, targets, weights) -> None:
        """What a warm start learns again from its targets (class weights); the rest of the
        fitted state (classes, target scaling) stays the network's."""

    def _network_params_changed(self, partial: bool) -> bool:
        """Whether a warm start must build a new network: the parameters the fitted network
        was built from (sizes, cell, layers, convolutions, head, ...) differ from the current
        ones. ``warm_start`` then trains a new network, with a warning, so that
        ``get_params()`` describes the fitted model; ``partial_fit``, which only ever
        continues, refuses. Parameters of training (learning rate, epochs, batch size, class
        weights) are not the network's, and take effect on the network as it is."""
        built = {
            name[len("module__") :]: value
            for name, value in vars(self.net_).items()
            if name.startswith("module__")
        }
        try:
            wanted = self._module_params()
        except (AttributeError, KeyError, TypeError, ValueError):
            return False  # the fit's own checks say what is wrong
        changed = {
            name: (built.get(name), wanted.get(name))
            for name in sorted(set(built) | set(wanted))
            if not _same(built.get(name), wanted.get(name))
        }
        if type(self.net_.module_) is not self._module_class:
            kind = (type(self.net_.module_).__name__, self._module_class.__name__)
            changed["network"] = kind  # e.g. the generator's pixel reader for a Row LSTM
        if not changed:
            return False
        described = ", ".join(
            f"{name} {old!r} -> {new!r}" for name, (old, new) in sorted(changed.items())
        )
        if partial:
            raise ValueError(
                f"partial_fit continues training the fitted network, but its parameters "
                f"changed since it was built ({described}). Set them back, or call fit to "
                "train a new network."
            )
        warnings.warn(
            f"warm_start=True cannot continue the fitted network: the parameters it was built "
            f"from changed ({described}). Training a new network from scratch, so that the "
            "estimator has the parameters it reports.",
            UserWarning,
            stacklevel=4,
        )
        return True

    def _train(self, dataset, targets, *, epochs: int, fresh: bool) -> bool:
        """Run the net's training loop; roll back an epoch that does not finish.

        Returns whether training ran to its end (False after a Ctrl-C).
        """
        rollback = dict(self.net_.callbacks_)["rollback"]
        group = getattr(self, "_group", None)
        parallel = contextlib.nullcontext()
        if group is not None:
            parallel = data_parallel(self.net_, group, lambda: rollback.interrupted_)
        try:
            with parallel:
                self.net_.partial_fit(dataset, targets if self._stratify else None, epochs=epochs)
        except KeyboardInterrupt:  # outside skorch's own handling (e.g. in on_train_begin)
            rollback.roll_back(self.net_)
            rollback.interrupted_ = True
        except NonFiniteLossError as exc:
            # Never leave NaN weights behind: go back to the last epoch that finished.
            raise NonFiniteLossError(f"{exc} {self._keep_finished_epochs(fresh)}") from None
        except DistributedError as exc:
            raise DistributedError(f"{exc} {self._keep_finished_epochs(fresh)}") from exc
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            release_cached_memory(self._device)
            kept = self._keep_finished_epochs(fresh)
            raise OutOfMemoryError(
                f"fit ran out of memory on {self._device} with batch_size={self.batch_size!r} "
                f"({self._batch_description()}). Lower batch_size (or make the model smaller: "
                f"hidden_size, num_layers), or fit on a device with more memory. {kept}"
            ) from exc
        if rollback.interrupted_:
            # skorch stops quietly on Ctrl-C; the unfinished epoch has been undone.
            warnings.warn(
                f"fit was interrupted; the model keeps the weights of the last completed "
                f"epoch ({len(self.net_.history)} epoch(s) in history_).",
                RuntimeWarning,
                stacklevel=4,
            )
            return False
        return True

    def _keep_finished_epochs(self, fresh: bool) -> str:
        """After a failed epoch: restore the weights of the last one that finished, and say
        what the model keeps (an estimator whose first epoch failed is left unfitted)."""
        dict(self.net_.callbacks_)["rollback"].roll_back(self.net_)
        if not fresh or len(self.net_.history):
            self._record_history()
            if not len(self.net_.history):
                return "The model keeps the weights it had before this call."
            return f"The model keeps the weights of epoch {self.n_iter_}."
        for name in ("net_", "history_", "n_iter_"):
            self.__dict__.pop(name, None)
        return "No epoch finished, so the estimator is left unfitted."

    def _batch_description(self) -> str:
        """What one training batch holds, for error messages."""
        shape = getattr(self, "image_shape_", None)
        if shape is None:
            return f"{self._training_batch_size()} samples a batch"
        sides = "x".join(str(side) for side in shape)
        return f"{self._training_batch_size()} images of {sides} a batch"

    def _record_history(self) -> None:
        history = [
            {key: value for key, value in epoch.items() if key != "batches"}
            for epoch in self.net_.history
        ]
        self.history_ = history
        self.n_iter_ = len(history)

    # ----------------------------------------------------------------- inference
    def _inference_batch_size(self, values_per_image: int) -> int:
        """Images per inference batch, never fewer than a training batch.

        On a GPU, up to 1024 images keep the device busy. On the CPU, 128: larger batches
        push a recurrent layer's per-sequence working memory (the gate pre-activations of
        every step) out of the caches (28x28 images predicted 1024 at a time ran 20-40 %
        slower than 256 at a time), and every call pays for a whole batch, as its last batch
        is padded to this size (:meth:`_run_inference`): 128 predicted the digits within 3 %
        of 256's speed and 28x28 images faster, at half the cost of a call for one image.
        Either way a batch holds at most about ``INFERENCE_INPUT_BYTES`` of float32 input, so
        large images come in small batches.
        """
        per_image = 4 * max(1, int(values_per_image))
        least = self._training_batch_size(self.net_.device)
        most = self._largest_inference_batch()
        return int(np.clip(INFERENCE_INPUT_BYTES // per_image, least, most))

    def _largest_inference_batch(self) -> int:
        """The most images an inference batch holds on the fitted net's device."""
        on_gpu = torch.device(self.net_.device).type == "cuda"
        most = CUDA_INFERENCE_BATCH if on_gpu else CPU_INFERENCE_BATCH
        return max(self._training_batch_size(self.net_.device), most)

    def _run_inference(
        self, n: int, batch_size: int, make_batch, compute, dtype=np.float32, fixed_size=False
    ):
        """The one inference loop: ``compute(module, make_batch(start, stop))`` batch by batch.

        With ``fixed_size`` every batch is padded with zeros to ``batch_size`` rows, and only
        the real rows' results are kept: a row's outputs then do not depend on how many others
        share its call. Matrix kernels (MKL, oneDNN, cuBLAS) choose their blocking, and so the
        order of their sums, by the number of rows; on the CPUs measured, a 28x28 image gave
        outputs that differ in the last bits for 28 of 50 batch sizes between 1 and 300, but
        the same wherever it stood in a batch of a given size. So ``predict(X)`` equals the
        predictions of ``X``'s rows one at a time, or in chunks, bit for bit; predicting one
        image costs as much as a batch.

        Runs under ``torch.inference_mode`` with the module in evaluation mode (skorch sets
        the mode on every training step, so nothing is switched back afterwards and
        concurrent predictions never see each other's mode). The results fill one array of
        ``dtype``, batch by batch: no list of per-batch pieces to concatenate, and no small
        long-lived blocks left between the batches' large temporary ones, which would keep
        the allocator from returning memory (RSS would grow with the data).
        """
        module = self.net_.module_
        module.eval()
        start, first_failed = 0, None
        precision = self._inference_precision()
        results = _InferenceResults(n, dtype, torch.device(self.net_.device))
        with (
            torch_threads(self.n_threads),
            torch.inference_mode(),
            autocast(self.net_.device, precision),
        ):
            while start < n:
                stop = min(start + batch_size, n)
                try:
                    batch = make_batch(start, stop)
                    if fixed_size:
                        batch = padded_rows(batch, batch_size)
                    result = compute(module, batch)[: stop - start]
                except Exception as exc:
                    if not is_out_of_memory(exc):
                        raise
                    # a padded batch held batch_size images, whatever the real rows
                    failed = batch_size if fixed_size else stop - start
                    first_failed = first_failed or failed
                    batch_size = self._smaller_inference_batch(failed, exc)
                    continue
                results.add(start, stop, result)
                start = stop
            outputs = results.finish()
        if first_failed is not None:
            warnings.warn(
                f"Prediction ran out of memory on {self.net_.device} with {first_failed} images "
                f"a batch; it went on with {batch_size}.",
                RuntimeWarning,
                stacklevel=3,
            )
        return outputs

    def _inference_precision(self) -> str:
        """``precision`` for predictions, except float16 off CUDA (a model trained on a GPU
        and loaded on the CPU), which predicts in float32."""
        precision = getattr(self, "precision", "float32")
        if precision == "float16" and torch.device(self.net_.device).type != "cuda":
            return "float32"
        return precision

    def _smaller_inference_batch(self, failed: int, error: BaseException) -> int:
        """Half the inference batch that ran out of memory, or raise at one image: prediction
        never fails for want of a smaller batch."""
        release_cached_memory(self.net_.device)
        if failed <= 1:
            raise OutOfMemoryError(
                f"Prediction ran out of memory on {self.net_.device} even one image at a time. "
                "Predict on a device with more memory (set_params(device='cpu')) or on smaller "
                "images."
            ) from error
        return failed // 2

    def _forward(self, X) -> np.ndarray:
        """Raw module outputs for the images ``X``, as float32.

        On a GPU the images are checked for NaN and infinity batch by batch, there, rather than
        in a pass over ``X`` on the host before anything is copied.
        """
        check_is_fitted(self, "net_")
        device, dtype = self.net_.device, self._input_dtype()
        on_gpu = torch.device(device).type == "cuda"
        with finite_values_checked_elsewhere(on_gpu):
            images = self._check_X(X, reset=False)
        finite = []  # per batch, on the GPU: whether its values were all finite

        def make_batch(start, stop):
            rows = read_rows(images, slice(start, stop))
            batch = to_device(rows, dtype, device)
            if on_gpu and rows.dtype.kind == "f":
                finite.append(torch.isfinite(batch).all())
            return batch

        batch_size = self._inference_batch_size(int(np.prod(images.shape[1:])))
        outputs = self._run_inference(
            len(images),
            batch_size,
            make_batch,
            lambda module, batch: module(batch).float(),
            fixed_size=True,
        )
        if finite and not bool(torch.stack(finite).all()):
            raise non_finite_error(self)
        return outputs

    def _probe_outputs(self, pixels: int) -> np.ndarray:
        """The module's outputs for a blank image and one of noise in [0, 1) (token 0 alone
        for token ids), cropped from the training images' shape to at most ``pixels`` pixels
        (or one step of what the module reads, if that is more): :func:`skrnn.load` refuses
        a file whose weights give NaN or infinity on them, as no trained model does, and the
        crop bounds the work whatever image shape the file declares."""
        raise NotImplementedError

    def _probe(self, inputs, compute=None, dtype=np.float32) -> np.ndarray:
        """``compute(module, batch)`` (by default the module's float outputs) on the few
        probe ``inputs`` of :meth:`_probe_outputs`, through the inference loop."""
        batch = torch.as_tensor(inputs)
        return self._run_inference(
            len(batch),
            len(batch),
            lambda start, stop: batch[start:stop].to(self.net_.device),
            compute or (lambda module, images: module(images).float()),
            dtype,
        )

    # ----------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Save this fitted estimator to one safe file (weights in safetensors, rest in JSON).

        Nothing is pickled, so :func:`skrnn.load` runs no code from the file: use it to share
        models or to open files from sources you do not trust. Pickle and joblib keep working
        for sklearn workflows. Callbacks are not saved.

        Parameters
        ----------
        path : str, os.PathLike or binary file object
            Where to write; an existing file is replaced once the new one is complete. A new
            file gets the permissions of any new file (``0o666`` less the umask). In a
            distributed fit's processes (see :mod:`skrnn.distributed`) only the first one
            (rank 0) writes: every process holds the same model.

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
        check_is_fitted(self, "net_")
        if self.distributed is not False and distributed_rank() != 0:
            return
        save_model(self, path)

    def _fitted_attributes(self) -> dict:
        """The fitted state a model file stores: every attribute but the parameters and what
        :meth:`_restore_fitted` rebuilds (the net and the resolved device)."""
        params = self.get_params(deep=False)
        return {
            name: value
            for name, value in vars(self).items()
            if name not in params
            and name not in _REBUILT_ATTRIBUTES
            and not (callable(value) and not isinstance(value, type))  # e.g. patched methods
        }

    def _restore_fitted(self, fitted: dict, *, check=None) -> None:
        """Set the saved fitted attributes, check them as :meth:`_check_fitted` does, and
        rebuild the net around them, untrained.

        ``check(self)``, if given, runs once the attributes are checked and before the net is
        built: :func:`skrnn.load` checks there, on a module built without memory, that the
        file's weights fit the model, and afterwards copies them into ``net_.module_``.

        Raises
        ------
        ValueError
            If an attribute is not one a fit sets, or is not what a fit makes.
        """
        params = self.get_params(deep=False)
        for name, value in fitted.items():
            if (
                not isinstance(name, str)
                or not name.isidentifier()
                or name.startswith("__")
                or name in params
                or name in _REBUILT_ATTRIBUTES
                or hasattr(type(self), name)  # methods and properties
            ):
                raise ValueError(
                    f"{name!r:.80} is not a fitted attribute of {type(self).__name__}."
                )
            setattr(self, name, value)
        self._check_params()
        self._check_fitted()
        if check is not None:
            check(self)
        with seeded(0, self._device):  # module init draws random numbers; keep the caller's
            setup = self._training_setup(self._training_batch_size(), 0, partial=False)
            self.net_ = self._initialize_net(setup)
        self.net_.history_ = History([{**epoch, "batches": []} for epoch in self.history_])

    def _check_fitted(self) -> None:
        """Check the fitted attributes a saved model brings, as ``fit`` would have made them
        from these parameters; estimators extend this with their own attributes.

        Raises
        ------
        ValueError
            Naming the attribute and what was expected.
        """

        def positive_ints(value, length=None) -> bool:
            return (
                isinstance(value, tuple)
                and (length is None or len(value) == length)
                and all(
                    isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1
                    for s in value
                )
            )

        def size(shape) -> int:
            total = 1
            for s in shape:
                total *= int(s)
            return total

        shape, layout, n_features = self.image_shape_, self._input_layout, self.n_features_in_
        if not positive_ints(shape, 3):
            raise ValueError(
                f"image_shape_ should be (H, W, C) of positive ints, got {shape!r:.80}."
            )
        check_image_size(shape)
        if not positive_ints((n_features,), 1) or n_features != size(shape):
            raise ValueError(
                f"n_features_in_ should be H * W * C = {size(shape)} for image_shape_={shape}, "
                f"got {n_features!r:.40}."
            )
        from ._validation import check_image_shape

        image_shape = getattr(self, "image_shape", None)  # the parameter, where there is one
        if image_shape is not None and check_image_shape(image_shape) != shape:
            raise ValueError(
                f"image_shape_ should be {check_image_shape(image_shape)}, as image_shape="
                f"{image_shape!r:.40} says, got {shape}."
            )
        if layout == (n_features,):  # flat rows: image_shape gives their images, or columns
            valid = image_shape is not None or shape == (n_features, 1, 1)
        else:
            valid = layout == shape or (layout == shape[:2] and shape[2] == 1)
        if not positive_ints(layout) or not valid:
            raise ValueError(
                f"_input_layout should be the shape of one training sample, but "
                f"{layout!r:.80} does not make images of shape {shape}."
            )
        history = self.history_
        if not isinstance(history, list) or not all(
            isinstance(epoch, dict) and all(isinstance(key, str) for key in epoch)
            for epoch in history
        ):
            raise ValueError("history_ should be a list of dicts keyed by str, one per epoch.")
        if self.n_iter_ != len(history) or isinstance(self.n_iter_, bool):
            raise ValueError(
                f"n_iter_ should be the {len(history)} epochs of history_, got "
                f"{self.n_iter_!r:.40}."
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags
