import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from skrnn import RNNImageClassifier, RNNSegmenter  # noqa: E402
from skrnn.datasets import make_shapes  # noqa: E402
from skrnn.plotting import (  # noqa: E402
    ImageGridDisplay,
    SegmentationDisplay,
    TrainingCurveDisplay,
    plot_image_grid,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def shapes():
    return make_shapes(n_samples=6, image_size=16, random_state=0)


def test_segmentation_display_draws_image_true_predicted_and_overlay(shapes):
    X, Y = shapes
    display = SegmentationDisplay.from_predictions(X, Y, np.zeros_like(Y), max_images=3)
    assert display.axes_.shape == (3, 4)
    assert display.ax_ is display.axes_[0, 0]
    assert display.figure_ is display.ax_.figure
    assert all(isinstance(image, AxesImage) for image in display.images_.ravel())
    assert [ax.get_title() for ax in display.axes_[0]] == [
        "image",
        "true mask",
        "predicted",
        "overlay",
    ]
    assert len(display.axes_[0, 3].get_images()) == 2  # the image under the mask
    np.testing.assert_array_equal(display.images_[1, 1].get_array(), Y[1])
    assert len(display.legend_.get_texts()) == len(np.unique(Y))


def test_segmentation_display_maps_any_label_values_to_colours():
    masks = np.array([[[0, 5], [255, 5]]])
    display = SegmentationDisplay.from_predictions(
        np.zeros((1, 2, 2)), None, masks, overlay=False, label_names=["bg", "thing", "void"]
    )
    assert display.axes_.shape == (1, 2)
    np.testing.assert_array_equal(display.images_[0, 1].get_array(), [[0, 1], [2, 1]])
    assert [t.get_text() for t in display.legend_.get_texts()] == ["bg", "thing", "void"]


def test_segmentation_display_rejects_masks_of_different_shapes(shapes):
    X, Y = shapes
    with pytest.raises(ValueError, match="same shape"):
        SegmentationDisplay.from_predictions(X, Y, Y[:, :8])


def test_segmentation_display_from_estimator_predicts_the_shown_images(shapes):
    X, Y = shapes
    seg = RNNSegmenter(hidden_size=4, num_layers=1, head=None, max_epochs=1, random_state=0)
    seg.fit(X, Y)
    display = SegmentationDisplay.from_estimator(seg, X, Y, max_images=2)
    assert display.axes_.shape == (2, 4)
    np.testing.assert_array_equal(
        display.images_[0, 2].get_array(), np.searchsorted(seg.classes_, seg.predict(X[:1])[0])
    )


def test_plot_image_grid_draws_one_image_per_sample_with_titles():
    images = np.random.default_rng(0).random((5, 6, 6))
    display = plot_image_grid(images, labels=list("abcde"), n_cols=3)
    assert isinstance(display, ImageGridDisplay)
    assert display.axes_.shape == (2, 3)
    assert len(display.images_) == 5
    assert display.axes_[0, 1].get_title() == "b"
    assert not display.axes_[1, 2].axison  # the unused cell is hidden
    assert display.plot() is display


def test_plot_image_grid_shows_rgb_images_in_colour():
    display = plot_image_grid(np.zeros((2, 4, 4, 3), dtype=np.uint8))
    assert display.images_[0].get_array().shape == (4, 4, 3)


def test_plot_image_grid_checks_labels():
    with pytest.raises(ValueError, match="one entry per image"):
        plot_image_grid(np.zeros((3, 4, 4)), labels=[1, 2])


def test_training_curve_display_still_works(digits):
    X, y = digits
    clf = RNNImageClassifier(hidden_size=4, max_epochs=2, random_state=0).fit(X[:60], y[:60])
    display = TrainingCurveDisplay.from_estimator(clf)
    assert list(display.lines_) == ["train_loss"]
