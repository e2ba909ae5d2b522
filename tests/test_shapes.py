"""The synthetic segmentation data set skrnn.datasets.make_shapes."""

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier

from skrnn.datasets import SHAPE_NAMES, make_shapes
from skrnn.metrics import iou_per_class


def test_returns_images_and_masks_like_sklearn_make_functions():
    X, Y = make_shapes(n_samples=5, image_size=20, random_state=0)
    assert X.shape == Y.shape == (5, 20, 20)
    assert X.dtype == np.float64 and Y.dtype == np.int64


def test_shape_names_name_the_mask_labels():
    assert SHAPE_NAMES == ("background", "circle", "rectangle", "triangle")
    _, Y = make_shapes(n_samples=20, image_size=24, random_state=0)
    np.testing.assert_array_equal(np.unique(Y), np.arange(len(SHAPE_NAMES)))


def test_return_X_y_is_gone():
    with pytest.raises(TypeError, match="return_X_y"):
        make_shapes(n_samples=2, return_X_y=True)


def test_deterministic_for_a_fixed_random_state():
    first = make_shapes(n_samples=8, random_state=3)
    again = make_shapes(n_samples=8, random_state=np.random.RandomState(3))
    other = make_shapes(n_samples=8, random_state=4)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_every_image_has_shapes_of_every_kind_overall():
    _, Y = make_shapes(n_samples=60, image_size=24, random_state=0)
    assert set(np.unique(Y)) == {0, 1, 2, 3}
    assert all((mask > 0).any() for mask in Y)
    counts = np.bincount(Y.ravel(), minlength=4)
    # The three shapes cover comparable areas.
    assert counts[1:].min() > 0.5 * counts[1:].max()


def test_non_square_images_and_max_shapes():
    X, Y = make_shapes(n_samples=4, image_size=(16, 40), max_shapes=1, random_state=0)
    assert X.shape == Y.shape == (4, 16, 40)
    for mask in Y:  # one shape per image: a single foreground class
        assert len(np.unique(mask[mask > 0])) == 1


def test_without_noise_each_shape_and_the_background_are_flat():
    X, Y = make_shapes(n_samples=10, image_size=24, noise=0.0, random_state=0)
    for image, mask in zip(X, Y, strict=True):
        assert np.ptp(image[mask == 0]) == 0
        assert (image[mask > 0] > image[mask == 0].max()).all()


def test_noise_sets_the_spread():
    X0, Y = make_shapes(n_samples=10, noise=0.0, random_state=0)
    X1, _ = make_shapes(n_samples=10, noise=0.2, random_state=0)
    assert np.std(X1 - X0) == pytest.approx(0.2, rel=0.05)


def test_brightness_finds_the_shapes_but_not_their_class():
    X, Y = make_shapes(n_samples=150, image_size=24, random_state=0)
    tree = DecisionTreeClassifier(max_depth=6, random_state=0)
    predicted = tree.fit(X.reshape(-1, 1), Y.ravel()).predict(X.reshape(-1, 1))
    predicted = predicted.reshape(Y.shape)
    # A per-pixel intensity rule separates shapes from the background well ...
    assert iou_per_class(Y > 0, predicted > 0)[1] > 0.8
    # ... but cannot tell circles, rectangles and triangles apart.
    assert iou_per_class(Y, predicted, labels=[1, 2, 3]).max() < 0.4
    means = [X[Y == k].mean() for k in (1, 2, 3)]
    assert max(means) - min(means) < 0.1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_samples": 0}, "n_samples must be a positive int"),
        ({"image_size": 4}, "image_size must be"),
        ({"image_size": (16, 16, 3)}, "image_size must be"),
        ({"max_shapes": 0}, "max_shapes must be a positive int"),
        ({"noise": -0.1}, "noise must be a non-negative number"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_shapes(**kwargs)
