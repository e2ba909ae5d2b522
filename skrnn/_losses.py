"""Training losses with per-sample weights, class weights and ignored targets in one place."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

LOSSES = ("cross_entropy", "binary_cross_entropy", "mse", "huber", "ctc")


class WeightedLoss(nn.Module):
    """A loss averaged over samples with optional sample and class weights.

    Parameters
    ----------
    kind : {"cross_entropy", "binary_cross_entropy", "mse", "huber", "ctc"}
        ``cross_entropy`` takes logits ``(B, K, ...)`` and integer targets ``(B, ...)``;
        ``binary_cross_entropy`` one logit per sample ``(B, 1)`` and 0/1 targets ``(B,)``;
        ``mse`` and ``huber`` predictions and targets of the same shape; ``ctc``
        (connectionist temporal classification, Graves et al. 2006) per-step log-probabilities
        ``(B, T, K)`` with class 0 the blank, and targets ``(B, 2 + S)``, each row the steps
        of its sequence, the length of its label sequence and the labels (``1..K-1``, padded).
        The CTC loss of a sample is divided by its number of labels (at least 1), as
        :func:`torch.nn.functional.ctc_loss` does for ``reduction="mean"``.
    class_weight : sequence of float, optional
        A weight per class for the classification losses.
    ignore_index : int, optional
        Targets equal to this value count neither in the loss nor in its normaliser.
    label_smoothing : float, default=0.0
        For the classification losses: the share of each target spread evenly over all
        classes.

    The result is ``sum(w_i * loss_i) / sum(w_i)`` over every non-ignored element, where
    ``w_i`` is the product of the sample weight and the class weight of the element's target,
    so weights change the balance between samples, not the scale of the loss.
    """

    def __init__(
        self, kind="cross_entropy", class_weight=None, ignore_index=None, label_smoothing=0.0
    ):
        super().__init__()
        self.kind = kind
        self.label_smoothing = label_smoothing
        self.ignore_index = ignore_index
        weight = (
            None if class_weight is None else torch.as_tensor(class_weight, dtype=torch.float32)
        )
        self.register_buffer("class_weight", weight)

    def forward(self, y_pred, y_true, sample_weight=None):
        weight = None
        if self.kind in ("cross_entropy", "binary_cross_entropy"):
            y_true = y_true.long()
            valid = None
            if self.ignore_index is not None:
                valid = y_true != self.ignore_index
                y_true = torch.where(valid, y_true, torch.zeros_like(y_true))
            if self.kind == "cross_entropy":
                elementwise = F.cross_entropy(
                    y_pred, y_true, reduction="none", label_smoothing=self.label_smoothing
                )
            else:
                target = y_true.to(y_pred.dtype)
                target = target * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
                elementwise = F.binary_cross_entropy_with_logits(
                    y_pred.reshape(y_true.shape), target, reduction="none"
                )
            if self.class_weight is not None:
                weight = self.class_weight[y_true]
            if valid is not None:
                weight = valid.to(elementwise.dtype) if weight is None else weight * valid
        elif self.kind == "ctc":
            y_true = y_true.long()
            lengths = y_true[:, 1]
            # An impossible alignment (infinite loss) counts as zero instead of derailing
            # training; the estimator refuses targets too long for their images beforehand.
            elementwise = F.ctc_loss(
                y_pred.transpose(0, 1).float(),
                y_true[:, 2:],
                y_true[:, 0],
                lengths,
                blank=0,
                reduction="none",
                zero_infinity=True,
            ) / lengths.clamp_min(1).to(torch.float32)
        elif self.kind == "mse":
            elementwise = F.mse_loss(y_pred, y_true.to(y_pred.dtype), reduction="none")
        else:
            elementwise = F.huber_loss(y_pred, y_true.to(y_pred.dtype), reduction="none")

        if sample_weight is not None:
            sample_weight = sample_weight.to(elementwise.dtype)
            sample_weight = sample_weight.reshape((-1,) + (1,) * (elementwise.dim() - 1))
            weight = sample_weight if weight is None else weight * sample_weight
        if weight is None:
            return elementwise.mean()
        weight = weight.expand_as(elementwise)
        return (elementwise * weight).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)
