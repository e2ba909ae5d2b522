"""Importance maps: they find the region a label depends on, in the estimator's own units."""

import numpy as np
import pytest

import skrnn
from skrnn.datasets import load_digits_images, make_shapes

pytest.importorskip("captum")
from skrnn.inspection import importance_map, reading_units  # noqa: E402

SIZE = 16
QUADRANT = np.zeros((SIZE, SIZE), bool)
QUADRANT[:8, :8] = True


def quadrant_task(n, seed):
    """Noise around 0.5 everywhere; the top-left quadrant is brighter or darker: the label."""
    rng = np.random.default_rng(seed)
    X = (0.5 + 0.1 * rng.standard_normal((n, SIZE, SIZE))).astype(np.float32)
    bright = rng.random(n) < 0.5
    X[:, :8, :8] += np.where(bright, 0.3, -0.3).astype(np.float32)[:, None, None]
    return X, np.where(bright, "bright", "dark")


@pytest.fixture(scope="module")
def quadrant_classifier():
    X, y = quadrant_task(400, 0)
    clf = skrnn.RNNImageClassifier(
        order="patches",
        patch_size=(4, 4),
        hidden_size=16,
        max_epochs=12,
        lr=0.01,
        weight_decay=0.01,  # keeps the weights that read the noise small
        dropout=0.0,
        augment=False,
        random_state=0,
    ).fit(X, y)
    assert clf.score(*quadrant_task(100, 1)) > 0.95
    return clf


@pytest.mark.parametrize("method", ["occlusion", "integrated_gradients"])
def test_importance_mass_falls_on_the_region_the_label_depends_on(quadrant_classifier, method):
    X, _ = quadrant_task(20, 2)
    maps = importance_map(quadrant_classifier, X, method=method)
    assert maps.shape == (20, SIZE, SIZE)
    mass = np.abs(maps)
    share = mass[:, QUADRANT].sum() / mass.sum()
    print(f"{method}: {share:.1%} of the importance in the quadrant (a quarter of the image)")
    assert share >= 0.8


def test_integrated_gradients_add_up_to_the_change_from_the_mean_image(quadrant_classifier):
    X, y = quadrant_task(4, 3)
    maps = importance_map(quadrant_classifier, X, "bright", method="integrated_gradients")
    mean_image = np.full_like(X[:1], quadrant_classifier._input_mean[0])
    column = list(quadrant_classifier.classes_).index("bright")
    change = (
        quadrant_classifier.predict_log_proba(X)[:, column]
        - quadrant_classifier.predict_log_proba(mean_image)[0, column]
    )
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), change, atol=0.05 * np.abs(change).max())
    # Explaining the other class turns the bright images' maps around.
    other = importance_map(quadrant_classifier, X, "dark", method="integrated_gradients")
    assert (np.sign(other.sum(axis=(1, 2))) == -np.sign(maps.sum(axis=(1, 2)))).all()


@pytest.mark.parametrize(
    "order, patch_size, expected_first_row",
    [
        ("rows", None, [0] * 8),
        ("columns", None, list(range(8))),
        ("pixels", None, list(range(8))),
        ("patches", (2, 4), [0, 0, 0, 0, 1, 1, 1, 1]),
    ],
)
def test_occlusion_units_are_the_estimators_reading_steps(order, patch_size, expected_first_row):
    X, y = load_digits_images(return_X_y=True)
    clf = skrnn.RNNImageClassifier(
        order=order, patch_size=patch_size, hidden_size=4, max_epochs=1, random_state=0
    ).fit(X[:40], y[:40])
    units = reading_units(clf)
    assert units[0].tolist() == expected_first_row
    maps = importance_map(clf, X[:2], method="occlusion", window="units")
    for image_map in maps:  # every pixel of a unit shares the unit's effect
        for unit in np.unique(units):
            assert np.ptp(image_map[units == unit]) < 1e-6


def test_regressor_and_segmenter_maps():
    X, y = load_digits_images(return_X_y=True)
    reg = skrnn.RNNImageRegressor(hidden_size=4, max_epochs=1, random_state=0)
    reg.fit(X[:40], np.c_[y[:40], -y[:40]])
    assert importance_map(reg, X[:2], 1, method="integrated_gradients").shape == (2, 8, 8)
    with pytest.raises(ValueError, match="2 outputs"):
        importance_map(reg, X[:2])

    images, masks = make_shapes(n_samples=6, image_size=10, random_state=0)
    seg = skrnn.RNNSegmenter(
        hidden_size=4,
        num_layers=1,
        conv=(),
        head=(),
        patch_size=(4, 4),
        max_epochs=1,
        random_state=0,
    ).fit(images, masks)
    units = reading_units(seg, 10, 10)
    assert units.max() == 8  # a 3x3 grid of patches, the last ones cut by the border
    chosen = np.zeros((10, 10), bool)
    chosen[2:5, 2:5] = True
    for method in ("occlusion", "integrated_gradients"):
        maps = importance_map(seg, images[:2], method=method, pixels=chosen)
        assert maps.shape == (2, 10, 10) and np.isfinite(maps).all()
    with pytest.raises(ValueError, match="not a class"):
        importance_map(seg, images[:2], target=42)


def test_importance_display_draws_image_map_and_overlay(quadrant_classifier):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from skrnn.plotting import ImportanceDisplay

    X, _ = quadrant_task(3, 4)
    display = ImportanceDisplay.from_estimator(quadrant_classifier, X, max_images=2)
    assert display.axes_.shape == (2, 3)
    assert display.axes_[0, 0].get_ylabel() in ("bright", "dark")
    drawn = display.images_[0, 1].get_array()
    np.testing.assert_allclose(drawn, importance_map(quadrant_classifier, X[:1])[0], atol=1e-5)
    matplotlib.pyplot.close("all")


def _randomised(estimator):
    """A copy of ``estimator`` whose network has fresh random weights (Adebayo et al.'s
    model-randomisation test): the same architecture, nothing learned."""
    import copy

    import torch

    copied = copy.deepcopy(estimator)
    torch.manual_seed(1)
    for layer in copied.net_.module_.modules():
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return copied


def _rank_correlation(first, second) -> float:
    ranks = [np.argsort(np.argsort(np.abs(m).ravel())) for m in (first, second)]
    return float(np.corrcoef(*ranks)[0, 1])


@pytest.mark.parametrize("method", ["occlusion", "integrated_gradients"])
def test_maps_fail_the_sanity_checks_of_models_that_learned_nothing(quadrant_classifier, method):
    """Maps of a model with random weights, or of one trained on shuffled labels, must differ
    clearly from the trained model's (rank correlation), and lose most of its lead on the
    quadrant (which, brighter or darker than the rest, draws some importance from any model:
    a map multiplies what changes in the image by how the model responds)."""
    X_train, y_train = quadrant_task(400, 0)
    from sklearn.base import clone

    shuffled = clone(quadrant_classifier).fit(
        X_train, np.random.default_rng(0).permutation(y_train)
    )
    X, _ = quadrant_task(20, 2)
    trained = importance_map(quadrant_classifier, X, method=method)
    trained_share = np.abs(trained)[:, QUADRANT].sum() / np.abs(trained).sum()
    for name, model in (
        ("random weights", _randomised(quadrant_classifier)),
        ("shuffled labels", shuffled),
    ):
        other = importance_map(model, X, method=method)
        share = np.abs(other)[:, QUADRANT].sum() / np.abs(other).sum()
        correlation = _rank_correlation(trained, other)
        print(f"{method}, {name}: {share:.1%} on the quadrant, rank correlation {correlation:.2f}")
        assert share < trained_share - 0.2
        assert correlation < 0.5


def test_windows_and_baselines(quadrant_classifier):
    X, _ = quadrant_task(3, 5)
    tiles = importance_map(quadrant_classifier, X, window=8)
    for block in (tiles[:, :8, :8], tiles[:, 8:, 8:]):  # one effect per 8x8 window
        assert np.ptp(block, axis=(1, 2)).max() < 1e-6
    assert np.abs(tiles[:, :8, :8]).sum() > np.abs(tiles[:, 8:, :]).sum()
    rectangles = importance_map(quadrant_classifier, X, window=(16, 1))  # whole columns
    assert np.ptp(rectangles, axis=1).max() < 1e-6
    # Averaged over baseline images; one number; an image of the mean is the default.
    train, _ = quadrant_task(4, 6)
    averaged = importance_map(quadrant_classifier, X, method="integrated_gradients", baseline=train)
    alone = [
        importance_map(quadrant_classifier, X, method="integrated_gradients", baseline=b)
        for b in train
    ]
    np.testing.assert_allclose(averaged, np.mean(alone, axis=0), rtol=1e-4, atol=1e-6)
    mean = float(quadrant_classifier._input_mean[0])
    np.testing.assert_allclose(
        importance_map(quadrant_classifier, X, baseline=mean),
        importance_map(quadrant_classifier, X),
        rtol=1e-5,
        atol=1e-7,
    )
    for bad, message in (("zero", "baseline must be"), (np.zeros((2, 4, 4)), "baseline images")):
        with pytest.raises(ValueError, match=message):
            importance_map(quadrant_classifier, X, baseline=bad)
    for bad in (0, (2,), "rows", True):
        with pytest.raises(ValueError, match="window must be"):
            importance_map(quadrant_classifier, X, window=bad)
