"""The skorch net that every estimator holds as ``net_``, and the callbacks it uses."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import get_len, unpack_data
from skorch.utils import TeeGenerator, to_tensor

from ._precision import PRECISIONS, autocast
from .exceptions import NonFiniteLossError

# max_epochs="auto" (StopWhenConverged): the cool-down's share of the epochs trained when the
# training loss stopped improving.
COOLDOWN_SHARE = 0.2


class ValidScore(Callback):
    """Record a score on the validation batches of each epoch (e.g. ``valid_acc``).

    Parameters
    ----------
    name : str
        The history key.
    score_func : callable
        ``score_func(y_true, y_pred)`` on numpy arrays of the whole validation set, where
        ``y_pred`` is the module's raw output.
    """

    def __init__(self, name, score_func):
        self.name = name
        self.score_func = score_func

    def on_epoch_begin(self, net, **kwargs):
        self._y_true, self._y_pred = [], []

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        # Plain copies into ordinary memory: page-locked buffers for a whole validation set
        # (a segmenter's per-pixel scores) would stay locked in torch's cache.
        if not training and y_pred is not None:
            self._y_true.append(batch[1].detach().cpu())
            self._y_pred.append(y_pred.detach().cpu())

    def on_epoch_end(self, net, **kwargs):
        if self._y_pred:
            y_true = torch.cat(self._y_true).numpy()
            y_pred = torch.cat(self._y_pred).float().numpy()
            net.history.record(self.name, float(self.score_func(y_true, y_pred)))
        self._y_true, self._y_pred = [], []


class LRSchedule(Callback):
    """A one-cycle or cosine learning-rate schedule that starts afresh with every training call.

    Parameters
    ----------
    kind : {"onecycle", "cosine"}
        One-cycle warms up to ``max_lr`` and anneals (Smith, 2018); cosine anneals from the
        optimizer's learning rate towards zero.
    total_steps : int
        Optimizer steps the schedule spans (epochs times batches per epoch); steps beyond it
        keep the final learning rate.
    max_lr : float
        The peak learning rate of the one-cycle schedule.
    warmup_steps : int or None
        The one-cycle warm-up, in steps: 30 % of ``total_steps`` when None, and never more.
        A fit whose length is a budget it may stop short of (``max_epochs="auto"``) warms up
        over 30 % of the length it expects, not of the budget.

    A :class:`StopWhenConverged` may end the schedule early with :meth:`cool_down`.
    """

    def __init__(self, kind, total_steps, max_lr, warmup_steps=None):
        self.kind = kind
        self.total_steps = total_steps
        self.max_lr = max_lr
        self.warmup_steps = warmup_steps

    def on_train_begin(self, net, **kwargs):
        optimizer = net.optimizer_
        for group in optimizer.param_groups:
            group["lr"] = self.max_lr
            group.pop("initial_lr", None)
        total = max(1, int(self.total_steps))
        if self.kind == "onecycle":
            share = ONECYCLE_WARMUP
            if self.warmup_steps is not None:
                share = min(share, max(int(self.warmup_steps), 1) / total)
            self.scheduler_ = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.max_lr, total_steps=total, pct_start=share
            )
            self.final_lr_ = self.scheduler_.optimizer.param_groups[0]["min_lr"]
        else:
            self.scheduler_ = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
            self.final_lr_ = 0.0
        self.steps_ = 0
        self.total_ = total
        self.cooldown_ = None  # [steps taken in it, its length, the learning rate it starts at]

    def cool_down(self, net, steps: int) -> None:
        """From the next step on, anneal from the current learning rate to the schedule's final
        one over ``steps`` steps (a half cosine), instead of following the planned schedule."""
        lr = net.optimizer_.param_groups[0]["lr"]
        self.cooldown_ = [0, max(int(steps), 1), float(lr)]

    def on_batch_end(self, net, training, **kwargs):
        if not training:
            return
        if self.cooldown_ is not None:
            done, length, start = self.cooldown_
            done = min(done + 1, length)
            self.cooldown_[0] = done
            lr = (
                self.final_lr_
                + (start - self.final_lr_) * (1 + math.cos(math.pi * done / length)) / 2
            )
            for group in net.optimizer_.param_groups:
                group["lr"] = lr
        elif self.steps_ < self.total_ - 1:
            self.scheduler_.step()
            self.steps_ += 1

    def checkpoint_state(self) -> dict:
        """The schedule's position, as JSON data, for :mod:`skrnn._checkpoint`."""
        return {
            "scheduler": self.scheduler_.state_dict(),
            "steps": self.steps_,
            "cooldown": self.cooldown_,
        }

    def restore_checkpoint_state(self, state: dict) -> None:
        self.scheduler_.load_state_dict(state["scheduler"])
        self.steps_ = state["steps"]
        self.cooldown_ = state.get("cooldown")

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("scheduler_", None)  # holds the optimizer; rebuilt by the next training call
        return state


# The share of a one-cycle schedule spent warming up (torch's default).
ONECYCLE_WARMUP = 0.3


class StopWhenConverged(Callback):
    """End a fit of ``max_epochs="auto"`` once its training loss has stopped improving.

    An epoch improves when its training loss is lower than the best epoch's by more than
    ``tol`` times the first epoch's loss (the scale of the loss, whatever its units). After
    ``patience`` epochs in a row without improvement (the rule of scikit-learn's
    ``MLPClassifier``, with a ``tol`` relative to the loss's scale), the learning rate anneals
    to the schedule's final value over a cool-down of ``cooldown_share`` of the epochs trained
    so far (at least one epoch), and the fit stops at its end: training stopped at a high
    learning rate would keep the noise of its last steps. A cool-down that would not end
    before ``budget_epochs`` is not started, as the planned schedule anneals and ends the fit
    by then anyway; without a schedule (a constant learning rate) the fit stops at once. The
    fit ends after every callback has seen its last epoch end (:meth:`SkrnnNet.notify`).

    Parameters
    ----------
    tol : float
        The improvement that counts, relative to the first epoch's loss.
    patience : int
        Epochs without improvement before the cool-down starts.
    steps_per_epoch : int
        Gradient steps an epoch makes.
    budget_epochs : int
        The epochs the fit may train at most.
    cooldown_share : float
        The cool-down's length, as a share of the epochs trained when it starts.
    first_epoch : int
        The epochs it leaves out before it starts to compare (those of another loss, such as
        the downscaled epochs of :class:`skrnn._resizing.CoarseToFine`).
    """

    def __init__(
        self,
        tol,
        patience,
        steps_per_epoch,
        budget_epochs,
        cooldown_share=COOLDOWN_SHARE,
        first_epoch=0,
    ):
        self.tol = tol
        self.patience = patience
        self.steps_per_epoch = steps_per_epoch
        self.budget_epochs = budget_epochs
        self.cooldown_share = cooldown_share
        self.first_epoch = first_epoch

    def on_train_begin(self, net, **kwargs):
        self.epochs_ = 0  # epochs of this training call
        self.scale_ = None  # the first epoch's loss, what tol is relative to
        self.best_ = math.inf
        self.misses_ = 0
        self.stop_after_ = None  # the epoch after which the fit ends, once cooling down

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1
        if self.stop_after_ is not None:
            if self.epochs_ >= self.stop_after_:
                net.stop_after_epoch_ = True  # once every callback has seen the epoch end
            return
        if self.epochs_ <= self.first_epoch:  # e.g. downscaled epochs, whose loss differs
            return
        loss = float(net.history[-1]["train_loss"])
        if self.scale_ is None:
            self.scale_ = abs(loss)
        if not math.isfinite(self.best_) or loss < self.best_ - self.tol * self.scale_:
            self.best_, self.misses_ = loss, 0
            return
        self.misses_ += 1
        if self.misses_ < self.patience:
            return
        cooldown = max(1, math.ceil(self.cooldown_share * self.epochs_))
        if self.epochs_ + cooldown >= self.budget_epochs:
            return  # the planned schedule ends sooner
        schedule = dict(net.callbacks_).get("lr_schedule")
        if not isinstance(schedule, LRSchedule):  # a constant learning rate: nothing to anneal
            cooldown = 0
        self.stop_after_ = self.epochs_ + cooldown
        if net.verbose:
            print(
                f"The training loss has not improved for {self.patience} epochs: "
                + (f"cooling down for {cooldown} more." if cooldown else "stopping.")
            )
        if cooldown:
            schedule.cool_down(net, cooldown * self.steps_per_epoch)
        else:
            net.stop_after_epoch_ = True

    def checkpoint_state(self) -> dict:
        """Where the fit stands, as JSON data, for :mod:`skrnn._checkpoint`."""
        return {
            "epochs": self.epochs_,
            "scale": self.scale_,
            "best": self.best_ if math.isfinite(self.best_) else None,
            "misses": self.misses_,
            "stop_after": self.stop_after_,
        }

    def restore_checkpoint_state(self, state: dict) -> None:
        self.epochs_ = state["epochs"]
        self.scale_ = state["scale"]
        self.best_ = math.inf if state["best"] is None else state["best"]
        self.misses_ = state["misses"]
        self.stop_after_ = state["stop_after"]


class RollbackUnfinishedEpoch(Callback):
    """Undo an epoch that does not finish, so the weights are always those of a whole epoch.

    The module's weights are copied at the start of every epoch. When training stops inside an
    epoch (Ctrl-C, which skorch swallows, or a :class:`NonFiniteLossError`), :meth:`roll_back`
    restores that copy, clears the optimizer's state (its moments may hold NaNs) and drops the
    unfinished epoch from the history. ``interrupted_`` tells whether the last training call
    was cut short by Ctrl-C.
    """

    def on_train_begin(self, net, **kwargs):
        self.weights_ = None
        self.epoch_ = None
        self.interrupted_ = False

    def on_epoch_begin(self, net, **kwargs):
        # skorch has already opened this epoch's history row.
        self.epoch_ = len(net.history) - 1
        self.weights_ = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    def on_epoch_end(self, net, **kwargs):
        self.epoch_ = None

    def on_train_end(self, net, **kwargs):
        if self.epoch_ is not None:  # skorch caught a KeyboardInterrupt inside the epoch
            self.roll_back(net)
            self.interrupted_ = True
        self.weights_ = None

    def roll_back(self, net):
        """Restore the weights from the start of the unfinished epoch, if there is one."""
        weights = getattr(self, "weights_", None)
        if weights is not None:
            net.module_.load_state_dict(weights)
            net.optimizer_.state.clear()
        if getattr(self, "epoch_", None) is not None:
            del net.history[self.epoch_ :]
        self.weights_ = None
        self.epoch_ = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("weights_", None)  # a copy of the weights has no place in a pickle
        return state


class StopOnNonFiniteLoss(Callback):
    """Stop training when a training batch gives a NaN or infinite loss or the weights do.

    The losses are read from the history, where the net records them (on a GPU one batch
    late, see :class:`SkrnnNet`), so the check never waits for the device; the last batch's
    loss and the weights are checked at the end of every epoch, since a step with a finite
    loss can still produce non-finite weights. The estimator then restores the weights of the
    last finished epoch (see :class:`RollbackUnfinishedEpoch`).
    """

    _ADVICE = "Lower lr, scale the inputs or targets, or keep gradient clipping (max_grad_norm)."

    def on_epoch_begin(self, net, **kwargs):
        self._checked = False  # whether the weights were checked since the last training step

    def on_batch_begin(self, net, training, **kwargs):
        # Before the first validation batch: the last training batch's loss (read late on a
        # GPU) and the weights, so that validation never runs on non-finite weights.
        if not training and not getattr(self, "_checked", False):
            self._check_loss(net, net.history[-1]["batches"])
            self._check_weights(net)
            self._checked = True

    def on_batch_end(self, net, training, **kwargs):
        if training:
            self._checked = False
            self._check_loss(net, net.history[-1]["batches"][-2:])

    def _check_loss(self, net, batches):
        """Raise if the latest training loss recorded in ``batches`` is not finite."""
        for row in reversed(batches):
            if "train_loss" in row:
                if not np.isfinite(row["train_loss"]):
                    raise NonFiniteLossError(
                        f"The training loss became {row['train_loss']} in epoch "
                        f"{len(net.history)}. {self._ADVICE}"
                    )
                return

    def on_epoch_end(self, net, **kwargs):
        if not getattr(self, "_checked", False):  # else nothing has changed since validation
            self._check_loss(net, net.history[-1]["batches"])
            self._check_weights(net)

    def _check_weights(self, net):
        # An empty parameter has no largest magnitude (and nothing to check).
        named = [(n, p.detach()) for n, p in net.module_.named_parameters() if p.numel()]
        if not named:
            return
        # One reduction over every parameter and one wait for the device: the largest
        # magnitude of each is NaN or infinite exactly when one of its values is.
        largest = torch._foreach_norm([p for _, p in named], float("inf"))
        if bool(torch.isfinite(torch.stack([m.float() for m in largest])).all()):
            return
        for name, parameter in named:
            if not torch.isfinite(parameter).all():
                raise NonFiniteLossError(
                    f"The weights ({name}) became NaN or infinite in epoch {len(net.history)}. "
                    f"{self._ADVICE}"
                )


def _on_device(x, device):
    """``x`` as a tensor on ``device``; a copy from page-locked host memory to a GPU does not
    wait for it.

    A non-blocking copy from page-locked memory overlaps the GPU's work; one from ordinary
    memory is staged by CUDA before the call returns, so it is safe (it may wait for the
    device). Only CUDA copies are non-blocking: elsewhere (MPS) a non-blocking copy from
    ordinary memory is not safe.
    """
    if isinstance(x, torch.Tensor):
        to_gpu = x.device.type == "cpu" and torch.device(device).type == "cuda"
        return x.to(device, non_blocking=to_gpu)
    return to_tensor(x, device=device)


def _overrides(callback, method_name: str) -> bool:
    """Whether ``callback`` has ``method_name`` other than as the no-op of
    :class:`skorch.callbacks.Callback` (on its class, patched in, or set on the instance)."""
    base = getattr(Callback, method_name, None)
    method = getattr(callback, method_name, None)
    return base is None or getattr(method, "__func__", method) is not base


def _mode_differs(module: torch.nn.Module, training: bool) -> bool:
    """Whether ``module`` or any of its submodules is not in the ``training`` mode."""
    return module.training != training or any(
        child.training != training for child in module.modules()
    )


def _is_float_tensor(value) -> bool:
    return isinstance(value, torch.Tensor) and torch.is_floating_point(value)


def _grad_scaler(device):
    """A gradient scaler for float16 training on ``device`` (torch 2.3 moved it to torch.amp)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler(torch.device(device).type)
    return torch.cuda.amp.GradScaler()  # pragma: no cover - torch < 2.3


class SkrnnNet(NeuralNet):
    """A skorch ``NeuralNet`` whose batches may carry per-sample weights, with mixed precision.

    A batch's ``X`` is a tensor or ``{"X": tensor, "sample_weight": tensor}``; the weights go
    to the criterion (:class:`skrnn._losses.WeightedLoss`), never to the module.

    With ``precision="bfloat16"`` or ``"float16"`` the module's forward pass runs under
    autocast (the weights stay float32) and the loss is computed in float32 from the outputs;
    float16 also scales the loss (a gradient scaler, ``scaler_``), unscaling the gradients
    before the callbacks see them (so gradient clipping clips true gradients) and skipping
    the steps whose gradients overflowed.

    With ``defer_loss`` (the estimators set it on a GPU) each batch's loss is read one batch
    late (:meth:`run_single_epoch`), so training never waits for the device between batches.
    """

    def __init__(
        self,
        module,
        criterion,
        *,
        valid_score=None,
        precision="float32",
        defer_loss=False,
        **kwargs,
    ):
        self.valid_score = valid_score
        self.precision = precision
        self.defer_loss = defer_loss
        super().__init__(module, criterion, **kwargs)

    @property
    def _default_callbacks(self):
        callbacks = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
        ]
        if self.valid_score is not None:
            callbacks.append(("valid_score", ValidScore(*self.valid_score)))
        if self.verbose:  # it formats a table every epoch, printed or not
            callbacks.append(("print_log", PrintLog()))
        return callbacks

    def initialize(self):
        super().initialize()
        self.scaler_ = _grad_scaler(self.device) if self.precision == "float16" else None
        return self

    def __setstate__(self, state):
        super().__setstate__(state)
        # Unpickled onto a GPU, a recurrent layer's weights are separate tensors, which cuDNN
        # would copy into one block at every call (with a warning); put them back in one.
        if isinstance(getattr(self, "module_", None), torch.nn.Module):
            for layer in self.module_.modules():
                if isinstance(layer, torch.nn.RNNBase):
                    layer.flatten_parameters()

    def notify(self, method_name, **cb_kwargs):
        """skorch's ``notify``, skipping the callbacks that leave ``method_name`` as
        :class:`skorch.callbacks.Callback` has it (a no-op): three notifications a batch to
        some ten callbacks cost more than a small model's whole step on a GPU."""
        getattr(self, method_name)(self, **cb_kwargs)
        for _, callback in self.callbacks_:
            if _overrides(callback, method_name):
                getattr(callback, method_name)(self, **cb_kwargs)
        if method_name == "on_epoch_end" and getattr(self, "stop_after_epoch_", False):
            # A callback asked to end the fit with this epoch (StopWhenConverged): every
            # callback has seen it end (the log printed it, the checkpoint holds it), so end
            # the fit now, as skorch's own callbacks do, with a KeyboardInterrupt.
            self.stop_after_epoch_ = False
            raise KeyboardInterrupt

    def _set_training(self, training=True):
        """skorch's ``_set_training``, done only when the mode changes: switching a module's
        mode walks all of its submodules, before every batch otherwise."""
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and _mode_differs(module, training):
                module.train(training)

    def infer(self, x, **fit_params):
        if isinstance(x, Mapping):
            x = x["X"]
        module = self.module_
        # A distributed fit's training steps go through DistributedDataParallel, which
        # averages the gradients over the processes in the backward pass.
        parallel = self.__dict__.get("ddp_module_")
        if parallel is not None and module.training and torch.is_grad_enabled():
            module = parallel
        with autocast(self.device, self.precision):
            output = module(_on_device(x, self.device), **fit_params)
        if PRECISIONS[self.precision] is not None and _is_float_tensor(output):
            output = output.float()  # the loss and the scores in float32
        return output

    def get_loss(self, y_pred, y_true, X=None, training=False):
        sample_weight = X.get("sample_weight") if isinstance(X, Mapping) else None
        if sample_weight is not None:
            sample_weight = _on_device(sample_weight, self.device)
        return self.criterion_(y_pred, _on_device(y_true, self.device), sample_weight)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch loop, reading each batch's loss one batch late with ``defer_loss``.

        Reading a loss (``.item()``) waits for the GPU to finish the batch, which leaves it
        idle while the host prepares the next one. With ``defer_loss`` the loss of batch ``i``
        is read after batch ``i + 1`` has been queued, so the GPU always has work; each loss
        reaches the history one batch late (the last at the end of the epoch), which is all
        the callbacks here need. Without it this is skorch's own loop.
        """
        if iterator is None:
            return
        key = prefix + "_loss"
        batches = None
        pending = None  # (history row, loss tensor) not yet read
        count = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            batches = self.history[-1]["batches"]
            if self.defer_loss:
                if pending is not None:
                    pending[0][key] = pending[1].item()
                pending = (batches[-1], step["loss"].detach())
            else:
                self.history.record_batch(key, step["loss"].item())
            self.history.record_batch(prefix + "_batch_size", get_len(unpack_data(batch)[0]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
            count += 1
        if pending is not None:
            pending[0][key] = pending[1].item()
        self.history.record(prefix + "_batch_count", count)

    def train_step_single(self, batch, **fit_params):
        scaler = getattr(self, "scaler_", None)
        if scaler is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        scaler.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        scaler = getattr(self, "scaler_", None)
        if scaler is None:
            return super().train_step(batch, **fit_params)
        # A scaled step cannot go through the optimizer's closure: unscale, let the callbacks
        # see (and clip) the true gradients, then step unless they overflowed.
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        scaler.unscale_(self.optimizer_)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        scaler.step(self.optimizer_)
        scaler.update()
        return step


def accuracy_from_logits(y_true: np.ndarray, logits: np.ndarray) -> float:
    """Accuracy of class logits ``(n, K)`` (or one binary logit ``(n, 1)``) against labels."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        predicted = (logits[:, 0] > 0).astype(np.int64)
    else:
        predicted = logits.argmax(axis=1)
    return float((predicted == y_true).mean())
