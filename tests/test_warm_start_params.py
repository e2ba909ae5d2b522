"""warm_start and partial_fit with changed parameters: a parameter the network is built from
trains a new network (with a warning) or is refused, so that get_params() always describes the
fitted model; parameters of training take effect on the network as it is."""

import warnings

import numpy as np
import pytest

from skrnn import (
    RNNImageClassifier,
    RNNImageGenerator,
    RNNImageRegressor,
    RNNSegmenter,
    RNNSequenceRecognizer,
)
from skrnn.datasets import load_digits_images, make_digit_strings, make_shapes

DIGITS, LABELS = load_digits_images(return_X_y=True)
SHAPES, MASKS = make_shapes(n_samples=12, image_size=8, random_state=0)
LINES, TEXTS = make_digit_strings(24, min_length=1, max_length=2, random_state=0)
SMALL = dict(hidden_size=4, max_epochs=1, random_state=0, n_threads=1, warm_start=True)

CASES = {
    "classifier": (RNNImageClassifier, DIGITS[:40], LABELS[:40]),
    "regressor": (RNNImageRegressor, DIGITS[:40], DIGITS[:40].mean(axis=(1, 2))),
    "segmenter": (RNNSegmenter, SHAPES, MASKS),
    "generator": (RNNImageGenerator, (DIGITS[:30] > 8).astype(np.uint8), None),
    "recognizer": (RNNSequenceRecognizer, LINES, TEXTS),
}


def _fit(kind, **params):
    cls, X, y = CASES[kind]
    return cls(**{**SMALL, **params}).fit(X, y)


def _refit(estimator, kind):
    _, X, y = CASES[kind]
    return estimator.fit(X, y)


def _units(estimator) -> int:
    return int(estimator.net_.module__hidden_size)


@pytest.mark.parametrize("kind", list(CASES))
def test_a_changed_network_size_trains_a_new_network_with_a_warning(kind):
    estimator = _fit(kind)
    before = estimator.net_.module_
    estimator.set_params(hidden_size=6)
    with pytest.warns(UserWarning, match=r"hidden_size 4 -> 6.*new network from scratch"):
        _refit(estimator, kind)
    assert estimator.net_.module_ is not before
    assert _units(estimator) == 6 == estimator.get_params()["hidden_size"]
    assert len(estimator.history_) == 1  # trained from scratch


@pytest.mark.parametrize("kind", list(CASES))
def test_changed_training_parameters_continue_the_network(kind):
    estimator = _fit(kind)
    module = estimator.net_.module_
    estimator.set_params(lr=1e-4, max_epochs=2, batch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _refit(estimator, kind)
    assert estimator.net_.module_ is module
    assert len(estimator.history_) == 3  # one epoch, then two more on the same network
    assert estimator.net_.batch_size == 8


def test_partial_fit_refuses_a_changed_network():
    clf = RNNImageClassifier(**{**SMALL, "warm_start": False})
    clf.partial_fit(DIGITS[:40], LABELS[:40], classes=np.arange(10))
    clf.set_params(num_layers=2)
    with pytest.raises(ValueError, match=r"partial_fit continues.*num_layers 1 -> 2"):
        clf.partial_fit(DIGITS[:40], LABELS[:40])
    assert clf.set_params(num_layers=1).partial_fit(DIGITS[:40], LABELS[:40]).n_iter_ == 2


def test_class_weights_changed_under_warm_start_reach_the_loss():
    clf = _fit("classifier")
    assert clf.net_.criterion__class_weight is None
    clf.set_params(class_weight="balanced")
    _refit(clf, "classifier")
    weights = clf.net_.criterion_.class_weight
    assert weights is not None and len(weights) == 10


@pytest.mark.parametrize(
    "params",
    [{"cell": "lstm"}, {"bidirectional": False}, {"num_layers": 2}, {"dropout": 0.1}],
    ids=lambda p: next(iter(p)),
)
def test_every_network_parameter_counts(params):
    clf = _fit("classifier")
    with pytest.warns(UserWarning, match=f"{next(iter(params))} .* -> "):
        clf.set_params(**params).fit(DIGITS[:40], LABELS[:40])
    assert len(clf.history_) == 1


def test_a_new_learning_rate_and_optimizer_reach_the_warm_started_network():
    clf = _fit("classifier", lr_schedule="constant", lr=1e-3)
    adam = clf.net_.optimizer_
    clf.set_params(lr=0.05, weight_decay=0.01)
    _refit(clf, "classifier")
    assert clf.net_.optimizer_ is adam  # the same optimizer, its moments kept
    assert {g["lr"] for g in adam.param_groups} == {0.05}
    assert {g["weight_decay"] for g in adam.param_groups} == {0.01}
    clf.set_params(optimizer="sgd")
    _refit(clf, "classifier")
    assert type(clf.net_.optimizer_).__name__ == "SGD"
    assert {g["lr"] for g in clf.net_.optimizer_.param_groups} == {0.05}
    assert len(clf.history_) == 3
