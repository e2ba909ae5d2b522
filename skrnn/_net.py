"""The skorch net that every estimator holds as ``net_``, and the callbacks it uses."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer, PassthroughScoring, PrintLog
from skorch.utils import to_tensor

from .exceptions import NonFiniteLossError


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
    """

    def __init__(self, kind, total_steps, max_lr):
        self.kind = kind
        self.total_steps = total_steps
        self.max_lr = max_lr

    def on_train_begin(self, net, **kwargs):
        optimizer = net.optimizer_
        for group in optimizer.param_groups:
            group["lr"] = self.max_lr
            group.pop("initial_lr", None)
        total = max(1, int(self.total_steps))
        if self.kind == "onecycle":
            self.scheduler_ = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.max_lr, total_steps=total
            )
        else:
            self.scheduler_ = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        self.steps_ = 0
        self.total_ = total

    def on_batch_end(self, net, training, **kwargs):
        if training and self.steps_ < self.total_ - 1:
            self.scheduler_.step()
            self.steps_ += 1

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("scheduler_", None)  # holds the optimizer; rebuilt by the next training call
        return state


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

    The weights are checked at the end of every epoch, since a step with a finite loss can
    still produce non-finite weights. The estimator then restores the weights of the last
    finished epoch (see :class:`RollbackUnfinishedEpoch`).
    """

    _ADVICE = "Lower lr, scale the inputs or targets, or keep gradient clipping (max_grad_norm)."

    def on_batch_end(self, net, training, loss=None, **kwargs):
        if training and loss is not None and not torch.isfinite(loss).all():
            epoch = len(net.history)
            raise NonFiniteLossError(
                f"The training loss became {loss.item()} in epoch {epoch}. {self._ADVICE}"
            )

    def on_epoch_end(self, net, **kwargs):
        for name, parameter in net.module_.named_parameters():
            if not torch.isfinite(parameter).all():
                raise NonFiniteLossError(
                    f"The weights ({name}) became NaN or infinite in epoch {len(net.history)}. "
                    f"{self._ADVICE}"
                )


class SkrnnNet(NeuralNet):
    """A skorch ``NeuralNet`` whose batches may carry per-sample weights.

    A batch's ``X`` is a tensor or ``{"X": tensor, "sample_weight": tensor}``; the weights go
    to the criterion (:class:`skrnn._losses.WeightedLoss`), never to the module.
    """

    def __init__(self, module, criterion, *, valid_score=None, **kwargs):
        self.valid_score = valid_score
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
        callbacks.append(("print_log", PrintLog()))
        return callbacks

    def infer(self, x, **fit_params):
        if isinstance(x, Mapping):
            x = x["X"]
        return self.module_(to_tensor(x, device=self.device), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        sample_weight = X.get("sample_weight") if isinstance(X, Mapping) else None
        if sample_weight is not None:
            sample_weight = to_tensor(sample_weight, device=self.device)
        return self.criterion_(y_pred, to_tensor(y_true, device=self.device), sample_weight)


def accuracy_from_logits(y_true: np.ndarray, logits: np.ndarray) -> float:
    """Accuracy of class logits ``(n, K)`` (or one binary logit ``(n, 1)``) against labels."""
    if logits.ndim == 2 and logits.shape[1] == 1:
        predicted = (logits[:, 0] > 0).astype(np.int64)
    else:
        predicted = logits.argmax(axis=1)
    return float((predicted == y_true).mean())
