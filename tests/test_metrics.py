"""Segmentation metrics and scorers (skrnn.metrics)."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.metrics import accuracy_score, jaccard_score
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skrnn.metrics import (
    get_scorer,
    get_scorer_names,
    iou_per_class,
    mean_iou,
    mean_iou_scorer,
    pixel_accuracy,
    pixel_accuracy_scorer,
)


def random_masks(seed=0, shape=(6, 9, 7), n_classes=4):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, size=shape)
    y_pred = np.where(rng.random(shape) < 0.6, y_true, rng.integers(0, n_classes, size=shape))
    return y_true, y_pred


class ThresholdSegmenter(BaseEstimator):
    """Labels a pixel 1 when it is brighter than ``threshold``: a stand-in segmenter."""

    def __init__(self, threshold=0.5, ignore_label=None):
        self.threshold = threshold
        self.ignore_label = ignore_label

    def fit(self, X, y):
        self.is_fitted_ = True
        return self

    def predict(self, X):
        return (np.asarray(X) > self.threshold).astype(np.int64)


def test_iou_per_class_by_hand():
    y_true = np.array([[[0, 0, 1, 1], [2, 2, 2, 0]]])
    y_pred = np.array([[[0, 1, 1, 1], [2, 2, 0, 0]]])
    # class 0: true {0,1,7} pred {0,6,7} -> 2/4; class 1: 2/3; class 2: 2/3
    np.testing.assert_allclose(iou_per_class(y_true, y_pred), [0.5, 2 / 3, 2 / 3])
    assert mean_iou(y_true, y_pred) == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_jaccard_on_flattened_masks(seed):
    y_true, y_pred = random_masks(seed)
    np.testing.assert_allclose(
        iou_per_class(y_true, y_pred), jaccard_score(y_true.ravel(), y_pred.ravel(), average=None)
    )
    assert mean_iou(y_true, y_pred) == pytest.approx(
        jaccard_score(y_true.ravel(), y_pred.ravel(), average="macro")
    )
    assert pixel_accuracy(y_true, y_pred) == pytest.approx(
        accuracy_score(y_true.ravel(), y_pred.ravel())
    )


def test_perfect_and_disjoint_predictions():
    y_true, _ = random_masks()
    assert mean_iou(y_true, y_true) == 1.0
    assert pixel_accuracy(y_true, y_true) == 1.0
    assert mean_iou(y_true, y_true + 10) == 0.0


def test_ignored_pixels_do_not_count():
    y_true, y_pred = random_masks()
    y_true = y_true.copy()
    y_true[:, :3] = 255
    other_pred = y_pred.copy()
    other_pred[:, :3] = 3 - other_pred[:, :3]  # change predictions only where ignored
    for metric in (mean_iou, pixel_accuracy, iou_per_class):
        np.testing.assert_allclose(
            metric(y_true, y_pred, ignore_label=255), metric(y_true, other_pred, ignore_label=255)
        )
    labelled = y_true != 255
    assert mean_iou(y_true, y_pred, ignore_label=255) == pytest.approx(
        mean_iou(y_true[labelled], y_pred[labelled])
    )
    assert 255 not in set(np.unique(y_true[labelled]))


def test_labels_choose_and_order_the_classes():
    y_true, y_pred = random_masks()
    full = iou_per_class(y_true, y_pred)
    np.testing.assert_allclose(iou_per_class(y_true, y_pred, labels=[3, 1]), full[[3, 1]])
    assert mean_iou(y_true, y_pred, labels=[3, 1]) == pytest.approx(full[[3, 1]].mean())


def test_a_class_absent_everywhere_is_left_out_of_the_mean():
    y_true = np.array([[0, 1, 1]])
    y_pred = np.array([[0, 1, 0]])
    iou = iou_per_class(y_true, y_pred, labels=[0, 1, 2])
    assert np.isnan(iou[2])
    assert mean_iou(y_true, y_pred, labels=[0, 1, 2]) == pytest.approx(np.nanmean(iou))
    assert iou_per_class(y_true, y_pred, labels=[0, 1, 2], zero_division=0.0)[2] == 0.0
    assert np.isnan(mean_iou(y_true, y_pred, labels=[7]))


def test_a_predicted_class_absent_from_the_truth_lowers_the_score():
    y_true = np.array([[0, 0, 1, 1]])
    y_pred = np.array([[0, 0, 1, 5]])
    np.testing.assert_allclose(iou_per_class(y_true, y_pred), [1.0, 0.5, 0.0])


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, message",
    [
        (np.zeros((2, 3, 3)), np.zeros((2, 3, 4)), {}, r"same shape.*\(2, 3, 3\).*\(2, 3, 4\)"),
        (np.full((1, 2, 2), 255), np.zeros((1, 2, 2)), {"ignore_label": 255}, "no pixels"),
        (np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), {"labels": []}, "non-empty"),
    ],
)
def test_bad_input_is_a_clear_value_error(y_true, y_pred, kwargs, message):
    with pytest.raises(ValueError, match=message):
        iou_per_class(y_true, y_pred, **kwargs)


# ----------------------------------------------------------------- scorers
def brightness_task(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((12, 5, 5))
    return X, (X > 0.7).astype(np.int64)


def test_scorers_compare_predict_with_the_masks():
    X, Y = brightness_task()
    est = ThresholdSegmenter(threshold=0.4)
    assert mean_iou_scorer(est, X, Y) == pytest.approx(mean_iou(Y, est.predict(X)))
    assert pixel_accuracy_scorer(est, X, Y) == pytest.approx(pixel_accuracy(Y, est.predict(X)))


def test_scorer_uses_the_estimators_ignore_label_also_in_a_pipeline():
    X, Y = brightness_task()
    Y = Y.copy()
    Y[:, 0] = 9
    est = ThresholdSegmenter(threshold=0.4, ignore_label=9)
    expected = mean_iou(Y, est.predict(X), ignore_label=9)
    assert mean_iou_scorer(est, X, Y) == pytest.approx(expected)
    pipe = make_pipeline(FunctionTransformer(), est).fit(X, Y)
    assert mean_iou_scorer(pipe, X, Y) == pytest.approx(expected)
    assert mean_iou_scorer(ThresholdSegmenter(threshold=0.4), X, Y) != pytest.approx(expected)


def test_grid_search_picks_the_best_threshold_by_iou():
    X, Y = brightness_task()
    search = GridSearchCV(
        ThresholdSegmenter(), {"threshold": [0.2, 0.7, 0.9]}, scoring=mean_iou_scorer, cv=3
    ).fit(X, Y)
    assert search.best_params_ == {"threshold": 0.7}
    assert search.best_score_ == 1.0


def test_several_scorers_at_once():
    X, Y = brightness_task()
    scoring = {name: get_scorer(name) for name in get_scorer_names()}
    results = cross_validate(ThresholdSegmenter(threshold=0.2), X, Y, cv=2, scoring=scoring)
    assert set(results) >= {"test_mean_iou", "test_pixel_accuracy"}
    assert np.all(results["test_mean_iou"] < results["test_pixel_accuracy"])


def test_get_scorer_names_and_unknown_names():
    assert get_scorer_names() == ["mean_iou", "pixel_accuracy"]
    assert get_scorer("mean_iou") is mean_iou_scorer
    with pytest.raises(ValueError, match=r"'accuracy' is not a segmentation scorer.*mean_iou"):
        get_scorer("accuracy")
