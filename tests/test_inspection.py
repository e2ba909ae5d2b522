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
    maps = importance_map(clf, X[:2], method="occlusion")
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
