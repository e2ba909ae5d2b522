"""RNNSegmenter: per-pixel labels from ReNet sweeps, as a scikit-learn estimator."""

import inspect
import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from skrnn import RNNSegmenter
from skrnn._renet import ReNetLayer, ReSegModel
from skrnn.datasets import make_shapes
from skrnn.metrics import get_scorer, mean_iou, mean_iou_scorer

TINY = dict(hidden_size=8, head=(8,), max_epochs=2, batch_size=8, n_threads=1, random_state=0)


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(n_samples=24, image_size=16, random_state=0)


@pytest.fixture(scope="module")
def fitted(shapes):
    X, Y = shapes
    return RNNSegmenter(**TINY).fit(X, Y)


# Per-image weights that differ from image to image, and the model they give.
WEIGHTS = np.linspace(0.5, 2.0, 24)


@pytest.fixture(scope="module")
def weighted(shapes):
    X, Y = shapes
    return RNNSegmenter(**TINY).fit(X, Y, sample_weight=WEIGHTS)


def bright_pixel_task(n=32, size=8, seed=0):
    """Images whose mask is simply "this pixel is bright": learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    masks = (rng.random((n, size, size)) < 0.3).astype(np.int64)
    images = masks + 0.05 * rng.standard_normal(masks.shape)
    return images, masks


# ----------------------------------------------------------------- the contract
def test_predict_returns_masks_of_fitted_labels(fitted, shapes):
    X, Y = shapes
    masks = fitted.predict(X[:5])
    assert masks.shape == (5, 16, 16)
    assert set(np.unique(masks)) <= set(fitted.classes_)
    np.testing.assert_array_equal(fitted.classes_, [0, 1, 2, 3])


def test_predict_proba_is_a_distribution_per_pixel(fitted, shapes):
    X, _ = shapes
    proba = fitted.predict_proba(X[:4])
    assert proba.shape == (4, 16, 16, 4)
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(fitted.classes_[proba.argmax(axis=-1)], fitted.predict(X[:4]))


def test_score_is_mean_iou(fitted, shapes):
    X, Y = shapes
    assert fitted.score(X, Y) == pytest.approx(mean_iou(Y, fitted.predict(X)))


def test_fitted_attributes(fitted):
    assert fitted.n_features_in_ == 16 * 16
    assert fitted.image_shape_ == (16, 16, 1)
    assert fitted.n_iter_ == 2 and len(fitted.history_) == 2
    assert isinstance(fitted.net_.module_, ReSegModel)


def test_learns_an_easy_task():
    X, Y = bright_pixel_task()
    seg = RNNSegmenter(**{**TINY, "head": (), "max_epochs": 8, "batch_size": 4}).fit(X, Y)
    assert seg.score(X, Y) > 0.9


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_every_builtin_cell_trains(cell, shapes):
    X, Y = shapes
    seg = RNNSegmenter(**{**TINY, "cell": cell, "max_epochs": 1}).fit(X[:8], Y[:8])
    assert seg.predict(X[:2]).shape == (2, 16, 16)


def test_a_cell_factory_works(shapes):
    X, Y = shapes
    calls = []

    def make_cell(input_size, hidden_size, num_layers, bidirectional, dropout):
        calls.append(input_size)
        return torch.nn.Sequential(
            torch.nn.Linear(input_size, (2 if bidirectional else 1) * hidden_size)
        )

    seg = RNNSegmenter(**{**TINY, "cell": make_cell, "num_layers": 1}).fit(X[:8], Y[:8])
    assert seg.predict(X[:2]).shape == (2, 16, 16)
    # One layer: a vertical sweep over 2x2 patches of each pixel's value and its 32 local
    # features, then a horizontal one over its output; the user's factory is called once a
    # layer (only built-in cells are sized on the meta device first).
    assert calls == [2 * 2 * (1 + 32), 16]


def test_original_label_values_and_dtype_are_kept():
    X, Y = bright_pixel_task(n=12)
    masks = np.where(Y == 1, 7, 3).astype(np.uint8)
    seg = RNNSegmenter(**TINY).fit(X, masks)
    np.testing.assert_array_equal(seg.classes_, [3, 7])
    predicted = seg.predict(X)
    assert predicted.dtype == np.uint8
    assert set(np.unique(predicted)) <= {3, 7}


def test_color_and_uint8_images(shapes):
    X, Y = shapes
    rgb = (np.repeat(X[..., None], 3, axis=-1).clip(0, 1) * 255).astype(np.uint8)
    seg = RNNSegmenter(**TINY).fit(rgb, Y)
    assert seg.image_shape_ == (16, 16, 3)
    assert seg.predict_proba(rgb[:2]).shape == (2, 16, 16, 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8])
def test_images_of_every_numeric_dtype_fit_predict_and_score(dtype, shapes):
    X, Y = shapes
    images = X.astype(dtype) if np.dtype(dtype).kind == "f" else (X.clip(0, 1) * 255).astype(dtype)
    seg = RNNSegmenter(**{**TINY, "max_epochs": 1}).fit(images[:8], Y[:8])
    assert seg.predict(images[8:10]).shape == (2, 16, 16)
    proba = seg.predict_proba(images[8:10])
    assert proba.shape == (2, 16, 16, len(seg.classes_))
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, atol=1e-5)
    assert seg.score(images[8:10], Y[8:10]) == pytest.approx(
        mean_iou(Y[8:10], seg.predict(images[8:10]))
    )


# ----------------------------------------------------------------- images of other sizes
@pytest.mark.parametrize("size", [(16, 16), (21, 13), (5, 40), (1, 1)])
def test_predicts_on_images_of_another_size(fitted, size):
    X = np.random.default_rng(0).random((3, *size))
    assert fitted.predict(X).shape == (3, *size)
    assert fitted.predict_proba(X).shape == (3, *size, 4)


def test_photos_are_predicted_one_at_a_time_on_the_cpu(shapes):
    X, Y = shapes
    on_cpu = RNNSegmenter(**{**TINY, "max_epochs": 1, "device": "cpu"}).fit(X, Y)
    assert on_cpu._inference_batch_size(180 * 240) == 1  # one grey 180x240 photo
    assert on_cpu._inference_batch_size(32 * 32) == 64  # 65,536 pixels a batch


def test_large_images_are_predicted_a_few_at_a_time(fitted, monkeypatch, batch_tolerance):
    """The pixels per inference batch are bounded, below a training batch if need be."""
    from skrnn import _segmenter as segmenter

    X = np.random.default_rng(0).random((5, 24, 24))
    whole = fitted.predict_proba(X)
    for bound in ("_CPU_INFERENCE_PIXELS", "_INFERENCE_PIXELS"):  # whatever the device
        monkeypatch.setattr(segmenter, bound, 2 * 24 * 24)
    assert fitted._inference_batch_size(24 * 24) == 2
    np.testing.assert_allclose(fitted.predict_proba(X), whole, **batch_tolerance)


@pytest.mark.parametrize("patch_size", [1, 3, (2, 4)])
def test_patches_that_do_not_tile_the_image(patch_size, shapes):
    X, Y = shapes  # 16x16 images: not a multiple of 3
    seg = RNNSegmenter(**{**TINY, "patch_size": patch_size, "max_epochs": 1}).fit(X[:8], Y[:8])
    assert seg.predict(X[:2, :15, :11]).shape == (2, 15, 11)


@pytest.mark.parametrize(
    "shape, expected", [((16, 16), (2, 2)), ((40, 129), (4, 4)), ((257, 8), (8, 8))]
)
def test_auto_patches_keep_the_sweep_grid_small(shape, expected):
    """patch_size="auto" picks the patch from the training images' size, and predict keeps it
    for images of other sizes."""
    rng = np.random.default_rng(0)
    X = rng.random((2, *shape))
    Y = (X > 0.5).astype(int)
    seg = RNNSegmenter(**{**TINY, "patch_size": "auto", "max_epochs": 1}).fit(X, Y)
    assert seg.patch_size_ == expected
    assert seg.net_.module_.patch_size == expected
    assert seg.predict(rng.random((1, 9, 7))).shape == (1, 9, 7)


def test_fixed_patches_are_kept_as_given(fitted):
    assert fitted.patch_size_ == (2, 2)
    with pytest.raises(AttributeError):
        _ = RNNSegmenter().patch_size_


def test_the_local_convolutions_feed_the_sweeps_and_the_classifier():
    model = ReSegModel(
        n_channels=3,
        n_outputs=2,
        cell="gru",
        hidden_size=4,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
        patch_size=(2, 2),
        conv=(5, 6),
    )
    widths = [layer.out_channels for layer in model.local if isinstance(layer, torch.nn.Conv2d)]
    assert widths == [5, 6]
    # The upsampled grid, the pixel's values and its local features.
    assert model.classifier[0].in_channels == 32 + 3 + 6
    assert model(torch.rand(2, 7, 9, 3)).shape == (2, 2, 7, 9)
    # Without convolutions the module is the one of files saved before they existed.
    plain = ReSegModel(
        n_channels=3,
        n_outputs=2,
        cell="gru",
        hidden_size=4,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
    )
    assert not any(key.startswith("local") for key in plain.state_dict())


def test_a_pixel_sees_its_neighbours_through_the_convolutions():
    """With one-way sweeps a pixel sees nothing below or right of it, except through the
    3x3 convolutions: one layer of them reaches one pixel further."""
    torch.manual_seed(0)
    common = dict(
        n_channels=1,
        n_outputs=2,
        cell="gru",
        hidden_size=4,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
    )
    images = torch.rand(1, 6, 6, 1, requires_grad=True)
    ReSegModel(**common, conv=(3,))(images)[0, :, 2, 2].sum().backward()
    assert images.grad[0, 3, 3, 0] != 0  # the pixel below and right of (2, 2)
    assert images.grad[0, 4, 4, 0] == 0  # two pixels away: out of reach


def test_a_bad_conv_is_a_clear_error(shapes):
    X, Y = shapes
    with pytest.raises(ValueError, match=r"conv must be a tuple of positive ints, got \(8, 0\)"):
        RNNSegmenter(**{**TINY, "conv": (8, 0)}).fit(X, Y)


# ----------------------------------------------------------------- the sklearn tools
def test_grid_search_over_cells_with_the_iou_scorer():
    X, Y = bright_pixel_task()
    search = GridSearchCV(
        RNNSegmenter(**{**TINY, "max_epochs": 4, "batch_size": 4}),
        {"cell": ["rnn", "gru"]},
        scoring=mean_iou_scorer,
        cv=2,
        n_jobs=2,
    ).fit(X, Y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_score_ == pytest.approx(scores.max())
    assert search.best_params_ == search.cv_results_["params"][scores.argmax()]
    # The best cell learns the task on the held-out folds (measured: mean IoU 0.94).
    assert search.best_score_ > 0.85
    assert search.predict(X[:2]).shape == (2, 8, 8)


def test_cross_val_score_with_a_named_scorer(shapes):
    X, Y = shapes
    scores = cross_val_score(RNNSegmenter(**TINY), X, Y, cv=3, scoring=get_scorer("mean_iou"))
    default = cross_val_score(RNNSegmenter(**TINY), X, Y, cv=3)  # the estimator's own score
    assert scores.shape == (3,)
    np.testing.assert_allclose(scores, default)


def test_pickle_round_trip_keeps_predictions(fitted, shapes):
    X, _ = shapes
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X[:4]), fitted.predict_proba(X[:4]))


def test_same_random_state_gives_identical_predictions(fitted, shapes):
    X, Y = shapes
    again = clone(fitted).fit(X, Y)
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    other = RNNSegmenter(**{**TINY, "random_state": 1}).fit(X, Y)
    assert not np.array_equal(other.predict_proba(X), fitted.predict_proba(X))


def test_partial_fit_needs_classes_then_continues(shapes):
    X, Y = shapes
    seg = RNNSegmenter(**TINY)
    with pytest.raises(ValueError, match="classes must be passed"):
        seg.partial_fit(X, Y)
    seg.partial_fit(X[:12], Y[:12], classes=[0, 1, 2, 3]).partial_fit(X[12:], Y[12:])
    assert seg.n_iter_ == 2
    np.testing.assert_array_equal(seg.classes_, [0, 1, 2, 3])


def test_early_stopping_records_validation_iou():
    X, Y = bright_pixel_task()
    params = {**TINY, "head": (), "max_epochs": 8, "batch_size": 4}
    seg = RNNSegmenter(**params, early_stopping=True, validation_fraction=0.25).fit(X, Y)
    assert all("valid_iou" in epoch for epoch in seg.history_)
    # The held-out IoU of the last epoch estimates the IoU on new images (measured: 0.87
    # and 0.86).
    X_new, Y_new = bright_pixel_task(n=16, seed=1)
    assert seg.history_[-1]["valid_iou"] > 0.75
    assert seg.score(X_new, Y_new) > 0.75
    assert seg.score(X_new, Y_new) == pytest.approx(seg.history_[-1]["valid_iou"], abs=0.1)


# ----------------------------------------------------------------- ignore_label, weights
def test_ignored_pixels_count_neither_in_the_loss_nor_in_the_score(shapes):
    X, Y = shapes
    Y = Y.copy()
    Y[3] = 255  # the whole of image 3 is unlabelled
    shuffled = X.copy()
    # Same pixel statistics (hence the same standardisation), different content.
    shuffled[3] = np.random.default_rng(0).permutation(X[3].ravel()).reshape(X[3].shape)
    params = {**TINY, "ignore_label": 255}
    first = RNNSegmenter(**params).fit(X, Y)
    second = RNNSegmenter(**params).fit(shuffled, Y)
    np.testing.assert_array_equal(first.classes_, [0, 1, 2, 3])
    np.testing.assert_array_equal(first.predict_proba(X[:3]), second.predict_proba(X[:3]))

    labelled = Y != 255
    expected = mean_iou(Y[labelled], first.predict(X)[labelled])
    assert first.score(X, Y) == pytest.approx(expected)


def test_negative_ignore_label(shapes):
    X, Y = shapes
    Y = Y.copy()
    Y[:, :2] = -1
    seg = RNNSegmenter(**{**TINY, "ignore_label": -1}).fit(X, Y)
    np.testing.assert_array_equal(seg.classes_, [0, 1, 2, 3])


def test_class_weight_favours_the_weighted_class():
    X, Y = bright_pixel_task(n=24)
    X = X + np.random.default_rng(1).normal(0, 0.6, X.shape)  # make the classes overlap
    params = {**TINY, "head": (), "max_epochs": 3, "batch_size": 4}
    plain = RNNSegmenter(**params, class_weight=None).fit(X, Y)
    weighted = RNNSegmenter(**params, class_weight={1: 10.0}).fit(X, Y)
    balanced = RNNSegmenter(**params, class_weight="balanced").fit(X, Y)
    mild = RNNSegmenter(**params).fit(X, Y)  # the default, "balanced_sqrt"
    assert (weighted.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    assert (balanced.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    assert (mild.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()


def test_balanced_weights_count_the_labelled_pixels_and_sqrt_softens_them(shapes):
    X, Y = shapes
    Y = Y.copy()
    Y[:, :2] = 255  # ignored pixels do not count
    params = {**TINY, "max_epochs": 1, "ignore_label": 255}
    balanced = RNNSegmenter(**params, class_weight="balanced").fit(X, Y)
    mild = RNNSegmenter(**params, class_weight="balanced_sqrt").fit(X, Y)
    counts = np.bincount(Y[Y != 255])
    np.testing.assert_allclose(balanced._class_weight, counts.sum() / (4 * counts))
    np.testing.assert_allclose(mild._class_weight, np.sqrt(balanced._class_weight))


def test_weights_decide_which_images_the_model_learns_from():
    """Two halves of the data teach opposite rules; the half that carries the weight wins.

    A zero weight does not give exactly the model fitted on the other images alone: the input
    standardisation, the batches and the learning-rate schedule still see every image. What
    must hold is that the model follows the weighted images.
    """
    X, bright = bright_pixel_task()
    Y = bright.copy()
    Y[16:] = 1 - bright[16:]  # the second half labels the dark pixels instead
    X_new, bright_new = bright_pixel_task(n=16, seed=1)
    first_half = np.r_[np.ones(16), np.zeros(16)]
    params = {**TINY, "head": (), "max_epochs": 8, "batch_size": 4}
    for weights, rule in ((first_half, bright_new), (1 - first_half, 1 - bright_new)):
        seg = RNNSegmenter(**params).fit(X, Y, sample_weight=weights)
        # Measured: mean IoU 0.92 and 0.75 with the weighted rule, 0.02 and 0.07 with the other.
        assert seg.score(X_new, rule) > 0.6
        assert seg.score(X_new, 1 - rule) < 0.2


def test_the_masks_of_images_of_zero_weight_do_not_matter(shapes):
    X, Y = shapes
    weights = np.r_[np.ones(12), np.zeros(12)]
    relabelled = Y.copy()
    relabelled[12:] = 3 - Y[12:]  # other labels, the same classes
    first = RNNSegmenter(**TINY).fit(X, Y, sample_weight=weights)
    second = RNNSegmenter(**TINY).fit(X, relabelled, sample_weight=weights)
    np.testing.assert_array_equal(first.classes_, second.classes_)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))


def test_weights_of_one_give_the_model_fitted_without_weights(fitted, shapes, assert_trained_alike):
    X, Y = shapes
    ones = RNNSegmenter(**TINY).fit(X, Y, sample_weight=np.ones(len(X)))
    assert_trained_alike(ones.predict_proba(X), fitted.predict_proba(X))
    # Only the balance between images counts, not the scale of the weights.
    threes = RNNSegmenter(**TINY).fit(X, Y, sample_weight=np.full(len(X), 3.0))
    assert_trained_alike(threes.predict_proba(X), fitted.predict_proba(X), cpu_atol=1e-5)


def test_weights_change_the_model(weighted, fitted, shapes):
    X, _ = shapes
    assert not np.allclose(weighted.predict_proba(X), fitted.predict_proba(X), atol=1e-3)


class ArrayLikeWeights:
    """Weights that numpy can read through ``__array__`` but that are no array."""

    def __init__(self, values):
        self.values = np.asarray(values)

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)


class SequenceOfWeights:
    """A plain sequence: ``len`` and indexing only."""

    def __init__(self, values):
        self.values = list(values)

    def __len__(self):
        return len(self.values)

    def __getitem__(self, index):
        return self.values[index]


def as_pandas_series(values):
    pandas = pytest.importorskip("pandas")
    # An index that is not 0..n-1: the weights still go to the images by position.
    return pandas.Series(values, index=np.arange(100, 100 + len(values)))


@pytest.mark.parametrize(
    "convert",
    [list, tuple, as_pandas_series, ArrayLikeWeights, SequenceOfWeights],
    ids=["list", "tuple", "pandas Series", "array-like", "sequence"],
)
def test_weights_in_any_sequence_give_the_model_of_the_same_array(convert, weighted, shapes):
    X, Y = shapes
    seg = RNNSegmenter(**TINY).fit(X, Y, sample_weight=convert(WEIGHTS.tolist()))
    np.testing.assert_array_equal(seg.predict_proba(X), weighted.predict_proba(X))


@pytest.mark.parametrize(
    "weights", [np.ones(23), np.ones(25), np.ones((24, 1))], ids=["short", "long", "2-D"]
)
def test_weights_of_the_wrong_shape_are_a_clear_error(weights, shapes):
    X, Y = shapes
    with pytest.raises(ValueError, match=r"(?i)sample.?weight.*\b24\b"):
        RNNSegmenter(**TINY).fit(X, Y, sample_weight=weights)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_leaves_the_callers_weights_unchanged(dtype, shapes):
    X, Y = shapes
    weights = WEIGHTS.astype(dtype)
    RNNSegmenter(**{**TINY, "max_epochs": 1}).fit(X, Y, sample_weight=weights)
    np.testing.assert_array_equal(weights, WEIGHTS.astype(dtype))


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_all_zero_weights_are_a_clear_error(method, shapes):
    X, Y = shapes
    seg = RNNSegmenter(**TINY)
    extra = {"classes": [0, 1, 2, 3]} if method == "partial_fit" else {}
    with pytest.raises(ValueError, match=r"weight.*zero|zero.*weight"):
        getattr(seg, method)(X, Y, sample_weight=np.zeros(len(X)), **extra)
    assert not hasattr(seg, "net_")


# ----------------------------------------------------------------- bad input
def bad_inputs(X, Y):
    non_integer = Y.astype(float)
    non_integer[0, 0, 0] = 0.5
    negative = Y.copy()
    negative[0, 0, 0] = -3
    nan_images = X.copy()
    nan_images[1, 2, 3] = np.nan
    return {
        "mask shape": (X, Y[:, :8], {}, r"one label mask per image.*\(24, 16, 16\).*\(24, 8, 16\)"),
        "mask count": (X, Y[:10], {}, r"\(24, 16, 16\).*\(10, 16, 16\)"),
        "non-integer": (X, non_integer, {}, r"integer class labels.*0\.5"),
        "strings": (X, Y.astype(str), {}, r"integer class labels.*dtype <U"),
        "negative": (X, negative, {}, r"negative labels \[-3\].*ignore_label"),
        "negative besides ignore_label": (
            X,
            negative,
            {"ignore_label": 255},
            r"negative labels \[-3\].*currently 255",
        ),
        "single class": (X, np.zeros_like(Y), {}, r"at least two classes.*only label 0"),
        "all ignored but one class": (
            X,
            np.where(Y > 0, 255, 0),
            {"ignore_label": 255},
            r"at least two classes.*only label 0 besides ignore_label=255",
        ),
        "NaN in images": (nan_images, Y, {}, "Input X contains NaN"),
        "flat X": (X.reshape(len(X), -1), Y, {}, r"expects a batch of images"),
        "no masks": (X, None, {}, "requires y to be passed"),
        "bad patch_size": (X, Y, {"patch_size": (2, 0)}, r"patch_size must be.*\(2, 0\)"),
        "unknown class_weight": (
            X,
            Y,
            {"class_weight": {9: 2.0}},
            r"class_weight names classes \[9\].*\[0, 1, 2, 3\]",
        ),
    }


@pytest.mark.parametrize(
    "case",
    list(bad_inputs(np.zeros((24, 16, 16)), np.zeros((24, 16, 16), dtype=np.int64))),
)
def test_bad_fit_input_is_a_clear_value_error(case, shapes):
    X, Y, params, message = bad_inputs(*shapes)[case]
    with pytest.raises(ValueError, match=message):
        RNNSegmenter(**{**TINY, **params}).fit(X, Y)


def test_a_different_channel_count_at_predict_time(fitted, shapes):
    X, _ = shapes
    rgb = np.repeat(X[..., None], 3, axis=-1)
    with pytest.raises(ValueError, match=r"3 channel\(s\) but this RNNSegmenter was fitted on"):
        fitted.predict(rgb)


def test_unknown_labels_when_training_on(fitted, shapes):
    X, Y = shapes
    seg = clone(fitted).set_params(warm_start=True).fit(X, Y)
    with pytest.raises(ValueError, match=r"labels \[5\] that are not among the classes"):
        seg.fit(X, np.where(Y == 3, 5, Y))


def test_score_checks_the_mask_shape(fitted, shapes):
    X, Y = shapes
    with pytest.raises(ValueError, match="one label mask per image"):
        fitted.score(X, Y[:, :, :4])


def test_predict_before_fit_is_not_fitted_error(fitted, shapes):
    X, Y = shapes
    unfitted = RNNSegmenter()
    assert not hasattr(unfitted, "n_features_in_")
    with pytest.raises(NotFittedError):
        check_is_fitted(unfitted)
    for method in (unfitted.predict, unfitted.predict_proba):
        with pytest.raises(NotFittedError):
            method(X)
    with pytest.raises(NotFittedError):
        unfitted.score(X, Y)
    check_is_fitted(fitted)


# ----------------------------------------------------------------- sklearn's checks, on images
# Each test here protects on images what one of sklearn's tabular estimator checks protects;
# tests/test_segmenter_checks.py names them.
def test_fit_and_partial_fit_return_the_segmenter(shapes):
    X, Y = shapes
    seg = RNNSegmenter(**{**TINY, "max_epochs": 1})
    assert seg.fit(X[:8], Y[:8]) is seg
    assert seg.partial_fit(X[:8], Y[:8]) is seg


def test_fit_score_and_partial_fit_take_the_masks_as_y():
    for method in (RNNSegmenter.fit, RNNSegmenter.partial_fit, RNNSegmenter.score):
        assert list(inspect.signature(method).parameters)[1:3] == ["X", "y"], method.__name__


def test_fit_leaves_the_parameters_as_given(shapes):
    X, Y = shapes
    class_weight = {1: 2.0, 3: 2.0}
    seg = RNNSegmenter(**TINY, class_weight=class_weight, callbacks=[])
    params = seg.get_params()
    hashes = {name: joblib.hash(value) for name, value in params.items()}
    attributes = set(vars(seg))
    seg.fit(X, Y)
    assert {name: joblib.hash(value) for name, value in seg.get_params().items()} == hashes
    assert all(seg.get_params()[name] is value for name, value in params.items())
    assert class_weight == {1: 2.0, 3: 2.0}
    # fit adds fitted attributes (ending in "_") and private ones, nothing else.
    public = {name for name in set(vars(seg)) - attributes if not name.startswith("_")}
    assert public >= {"classes_", "n_features_in_", "image_shape_", "net_", "history_"}
    assert all(name.endswith("_") for name in public), public


def test_predicting_and_scoring_leave_the_segmenter_unchanged(fitted, shapes):
    X, Y = shapes
    attributes = dict(vars(fitted))
    weights = {name: value.clone() for name, value in fitted.net_.module_.state_dict().items()}
    fitted.predict(X)
    fitted.predict_proba(X)
    fitted.score(X, Y)
    assert set(vars(fitted)) == set(attributes)
    for name, value in attributes.items():
        assert vars(fitted)[name] is value, name
    for name, value in fitted.net_.module_.state_dict().items():
        assert torch.equal(value, weights[name]), name


def test_read_only_memory_mapped_images_and_masks(fitted, shapes, tmp_path):
    X, Y = shapes
    np.save(tmp_path / "images.npy", X)
    np.save(tmp_path / "masks.npy", Y)
    images = np.load(tmp_path / "images.npy", mmap_mode="r")
    masks = np.load(tmp_path / "masks.npy", mmap_mode="r")
    seg = RNNSegmenter(**TINY).fit(images, masks)
    # Memory maps are read batch by batch rather than converted once: the same model up to
    # the order of float32 sums.
    proba = seg.predict_proba(images)
    np.testing.assert_allclose(proba, fitted.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert seg.score(images, masks) == pytest.approx(fitted.score(X, Y))
    restored = pickle.loads(pickle.dumps(seg))
    np.testing.assert_array_equal(restored.predict_proba(images), proba)


def test_fortran_ordered_images_give_the_same_model(fitted, shapes):
    X, Y = shapes
    seg = RNNSegmenter(**TINY).fit(np.asfortranarray(X), np.asfortranarray(Y))
    np.testing.assert_array_equal(seg.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(fitted.predict_proba(np.asfortranarray(X)), seg.predict_proba(X))


def test_images_of_object_dtype_are_read_as_numbers(fitted, shapes):
    X, Y = shapes
    seg = RNNSegmenter(**TINY).fit(X.astype(object), Y)
    np.testing.assert_array_equal(seg.predict_proba(X.astype(object)), fitted.predict_proba(X))
    words = X.astype(object)
    words[0, 0, 0] = "argh"
    with pytest.raises(ValueError, match="argh"):
        RNNSegmenter(**TINY).fit(words, Y)


def test_each_images_masks_do_not_depend_on_the_other_images(fitted, shapes, batch_tolerance):
    X, _ = shapes
    proba, masks = fitted.predict_proba(X), fitted.predict(X)
    order = np.random.default_rng(0).permutation(len(X))
    np.testing.assert_allclose(fitted.predict_proba(X[order]), proba[order], **batch_tolerance)
    np.testing.assert_array_equal(fitted.predict(X[order]), masks[order])
    for part in (slice(0, 1), slice(5, 12), slice(20, 24)):
        np.testing.assert_allclose(fitted.predict_proba(X[part]), proba[part], **batch_tolerance)
        np.testing.assert_array_equal(fitted.predict(X[part]), masks[part])


def test_fit_needs_two_images_but_partial_fit_learns_from_one(shapes):
    X, Y = shapes
    with pytest.raises(ValueError, match=r"at least 2 .*n_samples=1"):
        RNNSegmenter(**TINY).fit(X[:1], Y[:1])
    seg = RNNSegmenter(**TINY).partial_fit(X[:1], Y[:1], classes=[0, 1, 2, 3])
    assert seg.n_iter_ == 1
    assert seg.predict(X[:2]).shape == (2, 16, 16)


@pytest.mark.parametrize("size", [(1, 1), (16, 1), (1, 16)])
def test_images_one_pixel_high_or_wide(size):
    X = np.random.default_rng(0).random((12, *size))
    Y = (X > 0.5).astype(np.int64)
    seg = RNNSegmenter(**{**TINY, "max_epochs": 1}).fit(X, Y)
    assert seg.image_shape_ == (*size, 1)
    assert seg.predict(X).shape == (12, *size)


def test_a_pipeline_gives_the_masks_of_its_steps(shapes):
    X, Y = shapes
    pipe = make_pipeline(FunctionTransformer(np.square), RNNSegmenter(**TINY)).fit(X, Y)
    alone = RNNSegmenter(**TINY).fit(np.square(X), Y)
    np.testing.assert_array_equal(pipe.predict_proba(X), alone.predict_proba(np.square(X)))
    np.testing.assert_array_equal(pipe.predict(X), alone.predict(np.square(X)))
    assert pipe.score(X, Y) == alone.score(np.square(X), Y)


def test_one_image_without_the_batch_axis_is_a_clear_error(fitted, shapes):
    X, Y = shapes
    single = r"expects a batch of images.*X\[np\.newaxis\]"
    for method in (fitted.predict, fitted.predict_proba):
        with pytest.raises(ValueError, match=single):
            method(X[0])
    with pytest.raises(ValueError, match=single):
        fitted.score(X[0], Y[0])


def test_negative_pixel_values_are_welcome(fitted, shapes, assert_trained_alike):
    X, Y = shapes
    assert not fitted.__sklearn_tags__().input_tags.positive_only
    # Images are standardised, so shifting every pixel by the same amount changes nothing.
    shifted = RNNSegmenter(**TINY).fit(X - 5.0, Y)
    assert_trained_alike(shifted.predict_proba(X - 5.0), fitted.predict_proba(X), cpu_atol=1e-5)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_images_are_a_clear_error_at_fit_and_predict(value, fitted, shapes):
    X, Y = shapes
    broken = X.copy()
    broken[1, 2, 3] = value
    message = "NaN" if np.isnan(value) else "infinity"
    with pytest.raises(ValueError, match=message):
        RNNSegmenter(**TINY).fit(broken, Y)
    for method in (fitted.predict, fitted.predict_proba):
        with pytest.raises(ValueError, match=message):
            method(broken)


# ----------------------------------------------------------------- the ReNet module
def _influence(layer, source, target, size=(5, 6)):
    """Whether the input at ``source`` changes the layer's output at ``target``."""
    grid = torch.randn(1, *size, 3, requires_grad=True)
    layer(grid)[0, target[0], target[1]].sum().backward()
    return bool(grid.grad[0, source[0], source[1]].abs().sum() > 0)


def test_one_bidirectional_renet_layer_sees_the_whole_image():
    torch.manual_seed(0)
    layer = ReNetLayer(3, "gru", hidden_size=4, bidirectional=True)
    assert _influence(layer, source=(4, 5), target=(0, 0))
    assert _influence(layer, source=(0, 0), target=(4, 5))


def test_one_way_sweeps_see_only_above_and_left():
    torch.manual_seed(0)
    layer = ReNetLayer(3, "rnn", hidden_size=4, bidirectional=False)
    assert _influence(layer, source=(0, 0), target=(4, 5))
    assert not _influence(layer, source=(4, 5), target=(0, 0))
    assert not _influence(layer, source=(1, 3), target=(0, 3))  # below, same column


def test_sweeps_fold_every_column_into_one_call():
    calls = []

    class Recording(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            calls.append(tuple(x.shape))
            return self.inner(x)

    def make_cell(input_size, hidden_size, num_layers, bidirectional, dropout):
        from skrnn.cells import get_cell

        inner = get_cell("gru")(input_size, hidden_size, num_layers, bidirectional, dropout)
        return Recording(inner)

    layer = ReNetLayer(3, make_cell, hidden_size=4, bidirectional=True)
    assert layer(torch.zeros(2, 5, 7, 3)).shape == (2, 5, 7, 8)
    # One call per sweep: all 2*7 columns of length 5, then all 2*5 rows of length 7.
    assert calls == [(14, 5, 3), (10, 7, 8)]


def test_documented_defaults_match_the_signature():
    import ast
    import inspect
    import re

    doc = RNNSegmenter.__doc__
    for name, parameter in inspect.signature(RNNSegmenter).parameters.items():
        match = re.search(rf"\n    {name} : .*default=(.*)\n", doc)
        assert match, f"{name} is not documented"
        assert ast.literal_eval(match.group(1).strip()) == parameter.default, name
