import pickle

import numpy as np
import pytest
from sklearn.model_selection import cross_val_score

from skrnn import RNNImageRegressor


def ink_centre(X):
    """(row, column) centre of mass of the ink of each image."""
    rows, cols = np.indices(X.shape[1:])
    total = X.sum(axis=(1, 2))
    return np.stack([(X * rows).sum(axis=(1, 2)) / total, (X * cols).sum(axis=(1, 2)) / total], 1)


def test_learns_a_single_target(digits, tiny):
    X, _ = digits
    ink = X.sum(axis=(1, 2))
    reg = RNNImageRegressor(**{**tiny, "max_epochs": 8}).fit(X[:300], ink[:300])
    assert reg.predict(X[300:]).shape == (100,)
    assert reg.score(X[300:], ink[300:]) > 0.6


def test_multi_output_predictions_keep_the_shape_of_y(digits, tiny):
    X, _ = digits
    centre = ink_centre(X)
    reg = RNNImageRegressor(**{**tiny, "max_epochs": 8}).fit(X[:300], centre[:300])
    assert reg.n_outputs_ == 2
    assert reg.predict(X[300:]).shape == (100, 2)
    assert reg.score(X[300:], centre[300:]) > 0.5


def test_target_scale_does_not_matter(digits, tiny):
    X, _ = digits
    ink = X.sum(axis=(1, 2))
    small = RNNImageRegressor(**tiny).fit(X, ink).predict(X[:10])
    large = RNNImageRegressor(**tiny).fit(X, ink * 1e6 + 5e7).predict(X[:10])
    np.testing.assert_allclose((large - 5e7) / 1e6, small, rtol=1e-3, atol=1e-2)


def test_huber_loss_trains(digits, tiny):
    X, _ = digits
    ink = X.sum(axis=(1, 2))
    reg = RNNImageRegressor(loss="huber", **{**tiny, "max_epochs": 6}).fit(X, ink)
    assert reg.score(X, ink) > 0.5


def test_early_stopping_records_validation_r2(digits, tiny):
    X, _ = digits
    reg = RNNImageRegressor(early_stopping=True, **tiny).fit(X, X.sum(axis=(1, 2)))
    assert all("valid_r2" in epoch for epoch in reg.history_)


def test_cross_val_score_and_pickle(digits, tiny):
    X, _ = digits
    ink = X.sum(axis=(1, 2))
    assert cross_val_score(RNNImageRegressor(**tiny), X, ink, cv=2).shape == (2,)
    reg = RNNImageRegressor(**tiny).fit(X, ink)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), reg.predict(X))


@pytest.mark.parametrize(
    "y, match",
    [
        (np.full(20, np.nan), "NaN"),
        (np.full(20, np.inf), "infinity"),
        (np.zeros(19), "X has 20, y has 19"),
        (np.zeros((20, 2, 2)), "y must have shape"),
        (np.array(["a"] * 20), "[Ss]tring|could not convert|numeric"),
    ],
)
def test_bad_targets_are_clear_errors(digits, y, match):
    X, _ = digits
    with pytest.raises(ValueError, match=match):
        RNNImageRegressor().fit(X[:20], y)


def test_score_with_the_wrong_number_of_outputs(digits, tiny):
    X, _ = digits
    reg = RNNImageRegressor(**tiny).fit(X[:50], ink_centre(X[:50]))
    with pytest.raises(ValueError, match="y has 1 output.*fitted with 2"):
        reg.partial_fit(X[:10], np.zeros(10))
