"""max_epochs="auto": enough gradient steps for a few large images, the usual epochs for many
small ones; an int given by the user is used as it is."""

import pytest

from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSegmenter
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
