import numpy as np
import pytest

from skrnn import ImageToSequence
from skrnn.sequence import images_to_sequences, sequences_to_images

from .conftest import images


@pytest.mark.parametrize(
    "order, patch_size, expected",
    [
        ("rows", None, (6, 5)),
        ("columns", None, (5, 6)),
        ("pixels", None, (30, 1)),
        ("patches", (2, 5), (3, 10)),
        ("patches", (3, 1), (10, 3)),
    ],
)
def test_sequence_shapes_follow_the_order(order, patch_size, expected):
    out = ImageToSequence(order=order, patch_size=patch_size).fit_transform(images())
    assert out.shape == (20,) + expected
    assert out.dtype == np.float32


def test_rows_columns_and_pixels_read_the_image_in_the_documented_order():
    image = np.arange(6).reshape(1, 2, 3)  # [[0, 1, 2], [3, 4, 5]]
    rows = ImageToSequence(order="rows").fit_transform(image)
    columns = ImageToSequence(order="columns").fit_transform(image)
    pixels = ImageToSequence(order="pixels").fit_transform(image)
    np.testing.assert_array_equal(rows[0], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(columns[0], [[0, 3], [1, 4], [2, 5]])
    np.testing.assert_array_equal(pixels[0, :, 0], [0, 1, 2, 3, 4, 5])


def test_patches_are_raster_ordered_tiles():
    image = np.arange(16).reshape(1, 4, 4)
    seq = ImageToSequence(order="patches", patch_size=2).fit_transform(image)
    np.testing.assert_array_equal(seq[0, 0], [0, 1, 4, 5])
    np.testing.assert_array_equal(seq[0, 1], [2, 3, 6, 7])
    np.testing.assert_array_equal(seq[0, 2], [8, 9, 12, 13])


@pytest.mark.parametrize("order", ["rows", "columns", "pixels", "patches"])
@pytest.mark.parametrize("channels", [None, 3])
def test_inverse_transform_is_exact(order, channels):
    X = images(channels=channels, height=4, width=6)
    transformer = ImageToSequence(order=order, patch_size=(2, 3))
    np.testing.assert_array_equal(transformer.inverse_transform(transformer.fit_transform(X)), X)


def test_uint8_is_scaled_to_unit_range_and_restored_exactly():
    X = images(dtype=np.uint8, channels=3)
    transformer = ImageToSequence(order="pixels")
    seq = transformer.fit_transform(X)
    assert seq.min() >= 0.0 and seq.max() <= 1.0
    np.testing.assert_allclose(seq.max(), X.max() / 255.0, rtol=1e-6)
    restored = transformer.inverse_transform(seq)
    assert restored.dtype == np.uint8
    np.testing.assert_array_equal(restored, X)


def test_floats_are_left_unscaled():
    X = images() * 16
    np.testing.assert_allclose(ImageToSequence().fit_transform(X), X.astype(np.float32))


def test_flat_rows_with_image_shape_are_unflattened():
    X = images(channels=2)
    flat = X.reshape(len(X), -1)
    transformer = ImageToSequence(image_shape=(6, 5, 2), order="columns")
    np.testing.assert_array_equal(
        transformer.fit_transform(flat), ImageToSequence(order="columns").fit_transform(X)
    )
    assert transformer.inverse_transform(transformer.transform(flat)).shape == flat.shape


def test_two_d_input_without_image_shape_is_a_univariate_sequence():
    X = np.random.default_rng(0).random((4, 7))
    seq = ImageToSequence().fit_transform(X)
    assert seq.shape == (4, 7, 1)
    np.testing.assert_allclose(seq[..., 0], X.astype(np.float32))


def test_feature_names_name_the_time_steps():
    transformer = ImageToSequence(order="columns").fit(images())
    assert list(transformer.get_feature_names_out()) == [f"column{i}" for i in range(5)]


def test_shape_helpers_work_on_torch_tensors_too():
    import torch

    X = images(channels=2, height=4, width=6)
    for order in ("rows", "columns", "pixels", "patches"):
        seq = images_to_sequences(torch.from_numpy(X), order, (2, 2))
        np.testing.assert_array_equal(seq.numpy(), images_to_sequences(X, order, (2, 2)))
        back = sequences_to_images(seq, X.shape[1:], order, (2, 2))
        np.testing.assert_array_equal(back.numpy(), X)


@pytest.mark.parametrize(
    "kwargs, X, match",
    [
        ({}, np.zeros((2, 3, 4, 5, 6)), "5 dimension"),
        ({"image_shape": (3, 3)}, np.zeros((2, 10)), "image_shape=.* needs 9"),
        ({"order": "patches"}, images(), "needs patch_size"),
        ({"order": "patches", "patch_size": (4, 4)}, images(), "does not tile"),
        ({"order": "diagonal"}, images(), "order"),
        ({}, np.full((3, 4, 4), np.nan), "NaN"),
        ({}, np.zeros((0, 4, 4)), "0 sample"),
        ({"image_shape": (0, 3)}, np.zeros((2, 3)), "image_shape must be"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, X, match):
    with pytest.raises(ValueError, match=match):
        ImageToSequence(**kwargs).fit(X)


def test_transform_rejects_images_of_another_shape():
    transformer = ImageToSequence().fit(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match=r"shape \(7, 7\) but this ImageToSequence was fitted"):
        transformer.transform(np.zeros((2, 7, 7)))


def test_inverse_transform_rejects_sequences_of_another_shape():
    transformer = ImageToSequence().fit(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match=r"expects sequences of shape \(n, 8, 8\)"):
        transformer.inverse_transform(np.zeros((2, 4, 8)))


@pytest.mark.parametrize("patch_size", [(1, 1), (2, 2), (3, 2)])
def test_grid_to_images_undoes_patch_grid(patch_size):
    from skrnn.sequence import grid_to_images, patch_grid

    images = np.random.default_rng(0).random((2, 7, 9, 3))
    rebuilt = grid_to_images(patch_grid(images, patch_size), patch_size)
    ph, pw = patch_size
    assert rebuilt.shape == (2, -(-7 // ph) * ph, -(-9 // pw) * pw, 3)
    np.testing.assert_array_equal(rebuilt[:, :7, :9], images)  # the rest is the zero padding
    assert not rebuilt[:, 7:].any() and not rebuilt[:, :, 9:].any()
