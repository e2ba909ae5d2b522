"""Training cannot go silently wrong: a non-finite loss or non-finite weights stop it with a
clear error and never leave NaN weights behind, and Ctrl-C keeps the last completed epoch."""

import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from skorch.callbacks import Callback

from skrnn import RNNImageClassifier, RNNImageRegressor
from skrnn._base import BaseRNNEstimator
from skrnn._net import StopOnNonFiniteLoss
from skrnn.exceptions import NonFiniteLossError

TINY = dict(hidden_size=4, batch_size=4, random_state=0, device="cpu")


@pytest.fixture(autouse=True, params=["loss read at once", "loss read one batch late"])
def loss_reading(request, monkeypatch):
    """Every check runs as on the CPU and as on a GPU, where each batch's loss is read one
    batch late (so that training never waits for the device)."""
    if request.param == "loss read one batch late":
        monkeypatch.setattr(BaseRNNEstimator, "_defer_loss", lambda self: True)
    return request.param


RNG = np.random.default_rng(0)
X = RNG.random((16, 6, 6)).astype(np.float32)
Y = np.arange(16) % 2


class WeightsAfterEpoch(Callback):
    """Keep a copy of the weights at the end of every epoch."""

    def initialize(self):
        self.weights = {}
        return self

    def on_epoch_end(self, net, **kwargs):
        state = net.module_.state_dict()
        self.weights[len(net.history)] = {k: v.clone() for k, v in state.items()}


class Sabotage(Callback):
    """In ``epoch``, after ``batch`` training batches, do ``action`` to the net."""

    def __init__(self, epoch, batch, action, when="on_batch_end"):
        self.epoch, self.batch, self.action, self.when = epoch, batch, action, when

    def _maybe(self, net, training):
        if training and len(net.history) == self.epoch:
            if len(net.history[-1]["batches"]) == self.batch:
                self.action(net)

    def on_batch_begin(self, net, training=False, **kwargs):
        if self.when == "on_batch_begin":
            self._maybe(net, training)

    def on_batch_end(self, net, training=False, **kwargs):
        if self.when == "on_batch_end":
            self._maybe(net, training)


def _poison(net):
    with torch.no_grad():
        next(net.module_.parameters()).fill_(float("nan"))


def _interrupt(net):
    raise KeyboardInterrupt


def _assert_weights_equal(module, weights):
    state = module.state_dict()
    assert state.keys() == weights.keys()
    for name, value in state.items():
        assert torch.equal(value, weights[name]), name


def _all_finite(module):
    return all(torch.isfinite(p).all() for p in module.parameters())


def test_a_huge_learning_rate_stops_with_a_clear_error_and_no_nan_weights():
    params = {**TINY, "batch_size": 2}  # eight steps in the first epoch: enough to diverge
    reg = RNNImageRegressor(
        **params, lr=1e6, max_grad_norm=None, lr_schedule="constant", optimizer="sgd", max_epochs=3
    )
    with pytest.raises(NonFiniteLossError, match="training loss became (nan|inf).*Lower lr"):
        reg.fit(X, np.random.default_rng(1).random(16))
    # It diverged in epoch 1, so no epoch finished: the estimator says it is not fitted.
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_a_nan_loss_in_epoch_2_restores_the_weights_of_epoch_1():
    snapshots = WeightsAfterEpoch()
    clf = RNNImageClassifier(
        **TINY,
        max_epochs=3,
        callbacks=[("snap", snapshots), ("sabotage", Sabotage(2, 2, _poison, "on_batch_begin"))],
    )
    with pytest.raises(NonFiniteLossError, match="epoch 2.*keeps the weights of epoch 1"):
        clf.fit(X, Y)
    assert clf.n_iter_ == 1 and len(clf.history_) == 1
    _assert_weights_equal(clf.net_.module_, snapshots.weights[1])
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all()


def test_weights_that_turn_nan_after_a_finite_loss_are_caught_at_the_end_of_the_epoch():
    snapshots = WeightsAfterEpoch()
    clf = RNNImageClassifier(
        **TINY,
        max_epochs=2,
        callbacks=[("snap", snapshots), ("sabotage", Sabotage(2, 4, _poison))],  # last batch
    )
    with pytest.raises(NonFiniteLossError, match="weights .* became NaN or infinite in epoch 2"):
        clf.fit(X, Y)
    assert _all_finite(clf.net_.module_)
    _assert_weights_equal(clf.net_.module_, snapshots.weights[1])


def test_a_nan_loss_in_the_first_epoch_leaves_the_estimator_unfitted():
    clf = RNNImageClassifier(
        **TINY, max_epochs=2, callbacks=[("sabotage", Sabotage(1, 1, _poison))]
    )
    with pytest.raises(NonFiniteLossError, match="left unfitted"):
        clf.fit(X, Y)
    assert not hasattr(clf, "net_")
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_a_nan_loss_during_a_warm_start_keeps_the_earlier_model():
    clf = RNNImageClassifier(**TINY, max_epochs=1, warm_start=True).fit(X, Y)
    before = {k: v.clone() for k, v in clf.net_.module_.state_dict().items()}
    clf.set_params(callbacks=[("sabotage", Sabotage(2, 1, _poison))])
    with pytest.raises(NonFiniteLossError, match="keeps the weights of epoch 1"):
        clf.fit(X, Y)
    _assert_weights_equal(clf.net_.module_, before)
    assert all(not state for state in clf.net_.optimizer_.state.values())


def test_ctrl_c_in_epoch_2_keeps_the_weights_of_epoch_1_and_warns():
    snapshots = WeightsAfterEpoch()
    clf = RNNImageClassifier(
        **TINY,
        max_epochs=3,
        callbacks=[("snap", snapshots), ("sabotage", Sabotage(2, 2, _interrupt))],
    )
    with pytest.warns(RuntimeWarning, match="interrupted.*last completed epoch"):
        clf.fit(X, Y)
    assert clf.n_iter_ == 1
    _assert_weights_equal(clf.net_.module_, snapshots.weights[1])
    assert clf.predict(X).shape == (16,)


def test_an_uninterrupted_fit_does_not_warn_and_keeps_no_weight_copy():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = RNNImageClassifier(**TINY, max_epochs=2).fit(X, Y)
    rollback = dict(clf.net_.callbacks_)["rollback"]
    assert rollback.weights_ is None
    assert "weights_" not in pickle.loads(pickle.dumps(rollback)).__dict__


def test_a_nan_loss_in_the_last_batch_stops_before_validation_runs_on_nan_weights():
    # the last batch's loss is read at the end of the epoch where losses are read late (on a
    # GPU); validation (here the regressor's R^2) must not run on the weights it poisoned
    snapshots = WeightsAfterEpoch()
    reg = RNNImageRegressor(
        **TINY,
        max_epochs=3,
        early_stopping=True,
        callbacks=[("snap", snapshots), ("sabotage", Sabotage(2, 4, _poison, "on_batch_begin"))],
    )
    with pytest.raises(NonFiniteLossError, match="epoch 2.*keeps the weights of epoch 1"):
        reg.fit(X, np.random.default_rng(2).random(16))
    assert _all_finite(reg.net_.module_)
    _assert_weights_equal(reg.net_.module_, snapshots.weights[1])


def test_the_weight_check_names_the_non_finite_parameter_and_skips_empty_ones():
    module = torch.nn.Module()
    module.empty = torch.nn.Parameter(torch.zeros(0))  # a cell may hold one
    module.fine = torch.nn.Parameter(torch.ones(3))
    check = StopOnNonFiniteLoss()
    net = SimpleNamespace(module_=module, history=[{}])
    check._check_weights(net)  # all finite: no error, and no error for the empty one
    with torch.no_grad():
        module.fine[1] = float("inf")
    with pytest.raises(NonFiniteLossError, match=r"\(fine\)"):
        check._check_weights(net)
