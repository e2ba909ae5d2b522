"""RNNSegmenter: per-pixel labels from ReNet sweeps, as a scikit-learn estimator."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score

from skrnn import RNNSegmenter
from skrnn._renet import ReNetLayer, ReSegModel
from skrnn.datasets import make_shapes
from skrnn.metrics import get_scorer, mean_iou, mean_iou_scorer

TINY = dict(hidden_size=8, head=(8,), max_epochs=2, batch_size=8, n_threads=1, random_state=0)


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(n_samples=24, image_size=16, random_state=0, return_X_y=True)


@pytest.fixture(scope="module")
def fitted(shapes):
    X, Y = shapes
    return RNNSegmenter(**TINY).fit(X, Y)


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
    # One layer: a vertical sweep over 2x2 patches, then a horizontal one over its output.
    assert calls == [4, 16]


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


# ----------------------------------------------------------------- images of other sizes
@pytest.mark.parametrize("size", [(16, 16), (21, 13), (5, 40), (1, 1)])
def test_predicts_on_images_of_another_size(fitted, size):
    X = np.random.default_rng(0).random((3, *size))
    assert fitted.predict(X).shape == (3, *size)
    assert fitted.predict_proba(X).shape == (3, *size, 4)


def test_large_images_are_predicted_a_few_at_a_time(fitted, monkeypatch):
    """The pixels per inference batch are bounded, below a training batch if need be."""
    from skrnn import _segmenter as segmenter

    X = np.random.default_rng(0).random((5, 24, 24))
    whole = fitted.predict_proba(X)
    monkeypatch.setattr(segmenter, "_INFERENCE_PIXELS", 2 * 24 * 24)
    assert fitted._inference_batch_size(24 * 24) == 2
    np.testing.assert_allclose(fitted.predict_proba(X), whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("patch_size", [1, 3, (2, 4)])
def test_patches_that_do_not_tile_the_image(patch_size, shapes):
    X, Y = shapes  # 16x16 images: not a multiple of 3
    seg = RNNSegmenter(**{**TINY, "patch_size": patch_size, "max_epochs": 1}).fit(X[:8], Y[:8])
    assert seg.predict(X[:2, :15, :11]).shape == (2, 15, 11)


# ----------------------------------------------------------------- the sklearn tools
def test_grid_search_over_cells_with_the_iou_scorer(shapes):
    X, Y = shapes
    search = GridSearchCV(
        RNNSegmenter(**TINY),
        {"cell": ["rnn", "gru"]},
        scoring=mean_iou_scorer,
        cv=2,
        n_jobs=2,
    ).fit(X, Y)
    assert search.best_params_["cell"] in ("rnn", "gru")
    scores = search.cv_results_["mean_test_score"]
    assert np.all((scores >= 0) & (scores <= 1))
    assert search.best_score_ == pytest.approx(scores.max())
    assert search.predict(X[:2]).shape == (2, 16, 16)


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


def test_early_stopping_records_validation_iou(shapes):
    X, Y = shapes
    seg = RNNSegmenter(**{**TINY, "early_stopping": True, "validation_fraction": 0.25}).fit(X, Y)
    assert all(0.0 <= epoch["valid_iou"] <= 1.0 for epoch in seg.history_)


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
    plain = RNNSegmenter(**params).fit(X, Y)
    weighted = RNNSegmenter(**params, class_weight={1: 10.0}).fit(X, Y)
    balanced = RNNSegmenter(**params, class_weight="balanced").fit(X, Y)
    assert (weighted.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    assert (balanced.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()


def test_sample_weight_is_accepted(shapes):
    X, Y = shapes
    weights = np.linspace(0.5, 2.0, len(X))
    seg = RNNSegmenter(**TINY).fit(X, Y, sample_weight=weights)
    assert seg.predict(X[:1]).shape == (1, 16, 16)


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
            r"class_weight names labels \[9\].*\[0, 1, 2, 3\]",
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


def test_predict_before_fit_is_not_fitted_error(shapes):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RNNSegmenter().predict(shapes[0])


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
