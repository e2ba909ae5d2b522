"""max_epochs="auto": enough gradient steps for a few large images, the usual epochs for many
small ones; an int given by the user is used as it is."""

from types import SimpleNamespace

import pytest
import torch
from skorch.callbacks import Callback

from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSegmenter
from skrnn._net import LRSchedule, StopWhenConverged
from skrnn.datasets import load_digits_images


@pytest.mark.parametrize(
    "estimator, n_fit, epochs",
    [
        (RNNImageClassifier(), 1437, 30),  # the digits: 45 steps an epoch, the base epochs
        (RNNImageClassifier(), 200, 143),  # 7 steps an epoch: 1000 steps need 143 epochs
        (RNNImageClassifier(), 3, 1000),  # one step an epoch: capped at 1000 epochs
        (RNNImageRegressor(batch_size=10), 100, 100),
        (RNNImageGenerator(), 1797, 30),
        (RNNImageGenerator(orderings=8), 1797, 120),  # 8 orderings to learn: 4 times the epochs
        (RNNImageGenerator(orderings=2), 200, 143),  # 2: as many as one
        (RNNImageGenerator(orderings=4), 3, 1000),  # still capped
        (RNNImageGenerator(orderings=8, max_epochs=7), 1797, 7),
        (RNNSegmenter(), 1000, 10),  # make_shapes: 125 steps an epoch
        (RNNSegmenter(), 367, 27),  # CamVid's photos: 46 steps an epoch, 1,200 steps
        (RNNSegmenter(), 20, 400),  # 20 large images: 3 steps an epoch
        (RNNSegmenter(max_epochs=7), 20, 7),  # an int is an int
    ],
)
def test_auto_epochs_give_enough_gradient_steps(estimator, n_fit, epochs):
    estimator.set_params(device="cpu")  # batch_size="auto" grows on a GPU
    assert estimator._epochs(n_fit) == epochs


class QuickClassifier(RNNImageClassifier):
    _base_epochs = 2
    _min_updates = 12


def test_an_auto_fit_trains_the_chosen_epochs_with_a_schedule_over_all_its_steps():
    X, y = load_digits_images(return_X_y=True)
    clf = QuickClassifier(hidden_size=4, batch_size=4, random_state=0).fit(X[:20], y[:20])
    assert clf.n_iter_ == 3  # 5 steps an epoch; 12 steps need 3 epochs
    assert dict(clf.net_.callbacks_)["lr_schedule"].total_steps == 15
    clf.set_params(max_epochs=1).fit(X[:20], y[:20])
    assert clf.n_iter_ == 1


def test_auto_epochs_count_only_the_samples_left_after_the_validation_split():
    clf = RNNImageClassifier(early_stopping=True, validation_fraction=0.5, batch_size=10)
    setup = clf._training_setup(200, 0, partial=False)
    assert setup["epochs"] == 100  # 100 samples train: 10 steps an epoch
    assert clf._training_setup(200, 0, partial=True)["epochs"] == 1


def test_max_epochs_must_be_a_positive_int_or_auto():
    X, y = load_digits_images(return_X_y=True)
    for bad in (0, "many", 2.5):
        with pytest.raises(ValueError, match="max_epochs"):
            RNNImageClassifier(max_epochs=bad).fit(X[:20], y[:20])


class _Losses(Callback):
    """Replace each epoch's training loss with the next of ``losses`` before the stopping rule
    reads it, so the rule can be driven along any curve."""

    def __init__(self, losses):
        self.losses = losses

    def on_epoch_end(self, net, **kwargs):
        net.history.record("train_loss", self.losses[len(net.history) - 1])


class _Epochs(Callback):
    """Count the epochs whose end a callback sees."""

    def on_train_begin(self, net, **kwargs):
        self.ended = 0

    def on_epoch_end(self, net, **kwargs):
        self.ended += 1


def _auto_fit(losses, extra=(), **params):
    X, y = load_digits_images(return_X_y=True)
    callbacks = [_Losses(losses), *extra]
    clf = RNNImageClassifier(
        hidden_size=4, batch_size=20, random_state=0, callbacks=callbacks, **params
    )
    return clf.fit(X[:20], y[:20])  # one step an epoch: a budget of 1,000 epochs


def test_an_auto_fit_stops_once_its_loss_is_flat_after_a_cool_down():
    # 20 improving epochs, then flat: the 10 epochs of patience end at epoch 30, and the
    # cool-down takes a fifth of the 30 epochs trained: 6 more.
    losses = [2.0 - 0.05 * i for i in range(20)] + [1.05] * 1000
    clf = _auto_fit(losses)
    assert clf.n_iter_ == 36
    schedule = dict(clf.net_.callbacks_)["lr_schedule"]
    final_lr = clf.net_.optimizer_.param_groups[0]["lr"]
    assert final_lr == pytest.approx(schedule.final_lr_)  # annealed to the schedule's end
    assert schedule.total_steps == 1000  # the budget stays the schedule's plan


def test_small_improvements_do_not_keep_an_auto_fit_going():
    # Improvements of a tenth of tol (relative to the first epoch's loss) do not count.
    losses = [2.0] + [1.0 - 1e-4 * i for i in range(1000)]
    assert _auto_fit(losses).n_iter_ == 2 + 10 + 3
    assert _auto_fit(losses, tol=1e-5).n_iter_ == 1000  # but they do under a smaller tol


def test_tol_none_and_an_int_max_epochs_train_their_whole_length():
    flat = [1.0] * 1000
    assert _auto_fit(flat, tol=None).n_iter_ == 1000
    assert _auto_fit(flat, max_epochs=40).n_iter_ == 40
    assert _auto_fit(flat, n_iter_no_change=3).n_iter_ == 4 + 1


def test_a_constant_learning_rate_stops_without_a_cool_down():
    flat = [1.0] * 1000
    assert _auto_fit(flat, n_iter_no_change=3, lr_schedule="constant").n_iter_ == 4


def test_the_last_epoch_of_an_early_stop_is_logged_and_seen_by_every_callback(capsys):
    seen = _Epochs()
    flat = [1.0] * 1000
    clf = _auto_fit(flat, n_iter_no_change=3, verbose=1, extra=[seen])
    assert clf.n_iter_ == seen.ended == 5
    out = capsys.readouterr().out
    assert "not improved for 3 epochs: cooling down for 1 more" in out
    last_row = [line.split() for line in out.splitlines() if line.strip().startswith("5 ")]
    assert last_row, out  # the table's row of the 5th and last epoch


def test_early_stopping_decides_by_the_validation_loss_alone():
    clf = RNNImageClassifier(early_stopping=True)
    callbacks = dict(clf._training_setup(200, 0, partial=False)["callbacks"])
    assert "early_stopping" in callbacks and "converged" not in callbacks


def test_an_auto_fit_warms_up_over_its_base_epochs_not_over_its_budget():
    setup = RNNImageClassifier(batch_size=20)._training_setup(20, 0, partial=False)
    schedule = dict(setup["callbacks"])["lr_schedule"]
    assert (schedule.total_steps, schedule.warmup_steps) == (1000, 9)  # 30 % of 30 epochs
    setup = RNNImageClassifier(batch_size=20, tol=None)._training_setup(20, 0, partial=False)
    assert dict(setup["callbacks"])["lr_schedule"].warmup_steps is None  # 30 % of 1000


def _epochs_until_stop(patience, budget_epochs):
    """The epochs a StopWhenConverged lets a flat loss train (None: the whole budget)."""
    stop = StopWhenConverged(1e-3, patience, steps_per_epoch=1, budget_epochs=budget_epochs)
    schedule = LRSchedule("onecycle", budget_epochs, 1e-2)
    net = SimpleNamespace(
        history=[], callbacks_=[("lr_schedule", schedule)], verbose=0, optimizer_=None
    )
    net.optimizer_ = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-2)
    schedule.on_train_begin(net)
    stop.on_train_begin(net)
    for epoch in range(1, budget_epochs + 1):
        net.history.append({"train_loss": 1.0})
        stop.on_epoch_end(net)
        if getattr(net, "stop_after_epoch_", False):  # the net ends the fit with this epoch
            return epoch
    return None


def test_a_cool_down_that_would_outlast_the_budget_is_not_started():
    assert _epochs_until_stop(patience=2, budget_epochs=10) == 4  # waits 2, cools down 1
    assert _epochs_until_stop(patience=5, budget_epochs=10) == 8  # waits 5, cools down 2
    # Patience runs out at epoch 9, and 2 epochs of cool-down would pass the budget of 10.
    assert _epochs_until_stop(patience=8, budget_epochs=10) is None


def test_a_default_fit_on_30_digits_stops_long_before_its_budget():
    X, y = load_digits_images(return_X_y=True)
    clf = RNNImageClassifier(random_state=0, n_threads=1).fit(X[:30], y[:30])
    assert 30 <= clf.n_iter_ <= 250  # its budget is 1,000 epochs of one step
    assert clf.score(X[1000:1300], y[1000:1300]) > 0.6


def test_the_segmenter_warms_up_over_its_whole_budget():
    # 20 photos: 3 steps an epoch, a budget of 400 epochs; photos train to the budget's end.
    segmenter = RNNSegmenter(device="cpu")
    segmenter.image_shape_ = (180, 240, 3)  # as fit learns it
    callbacks = dict(segmenter._training_setup(20, 0, partial=False)["callbacks"])
    schedule = callbacks["lr_schedule"]
    assert (schedule.total_steps, schedule.warmup_steps) == (1200, 360)
    # 300 of the 400 epochs at half size; the training loss counts from the 301st on.
    assert callbacks["coarse_to_fine"].coarse_epochs == callbacks["converged"].first_epoch == 300
