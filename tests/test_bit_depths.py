"""Image files of every depth Pillow reads come back with their stored values."""

import struct
import warnings
import zlib

import numpy as np
import pytest

from skrnn import RNNImageClassifier
from skrnn._folders import read_images
from skrnn.datasets import load_image_folder, load_line_folder, load_segmentation_folder

Image = pytest.importorskip("PIL.Image")


def save(path, array, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)
    return path


def save_png16(path, values: np.ndarray, colour_type: int):
    """A 16-bit PNG written byte by byte: Pillow cannot write 16-bit colour or grey + alpha."""
    height, width = values.shape[:2]
    rows = b"".join(b"\x00" + values[row].astype(">u2").tobytes() for row in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


FLOATS = np.linspace(0.05, 0.95, 12, dtype=np.float32).reshape(3, 4)
INTS = np.array([[-7, 0, 5, 70_000], [2**31 - 1, -(2**31), 12, 300]], np.int32)
WORDS = np.array([[0, 1, 255, 256], [4095, 32768, 65534, 65535]], np.uint16)


@pytest.mark.parametrize(
    "name, array, dtype",
    [
        ("float.tif", FLOATS, np.float32),
        ("int32.tif", INTS, np.int32),
        ("words.png", WORDS, np.uint16),
        ("words.tif", WORDS, np.uint16),
        ("big_endian.tif", WORDS.astype(">u2"), np.uint16),
    ],
)
def test_every_depth_keeps_its_stored_values(tmp_path, name, array, dtype):
    path = save(tmp_path / "c" / name, array)
    data = load_image_folder(tmp_path).data
    assert data.dtype == dtype
    np.testing.assert_array_equal(data[0], array)
    np.testing.assert_array_equal(read_images([path, path], color_mode="grayscale")[1], array)


def test_twelve_bit_data_in_sixteen_bit_files_keeps_its_values(tmp_path):
    twelve_bit = np.arange(0, 4096, 256, dtype=np.uint16).reshape(4, 4)
    save(tmp_path / "c" / "scan.png", twelve_bit)
    np.testing.assert_array_equal(load_image_folder(tmp_path).data[0], twelve_bit)


def test_wide_grey_files_stay_wide_in_rgb_and_when_resized(tmp_path):
    save(tmp_path / "c" / "a.png", np.array([[1000, 3000], [1000, 3000]], np.uint16))
    save(tmp_path / "c" / "b.tif", np.array([[0.25, 0.75], [0.25, 0.75]], np.float32))
    rgb = read_images([tmp_path / "c" / "a.png"], color_mode="rgb")
    assert rgb.dtype == np.uint16 and rgb.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(rgb[0, ..., 1], [[1000, 3000], [1000, 3000]])
    wide = read_images([tmp_path / "c" / "a.png"], image_size=(2, 1))
    assert wide.dtype == np.uint16 and wide[0, 0, 0] == 2000  # bilinear, not clipped to 255
    floats = read_images([tmp_path / "c" / "b.tif"], image_size=(2, 1))
    assert floats.dtype == np.float32
    np.testing.assert_allclose(floats[0, :, 0], 0.5)


def test_eight_and_sixteen_bit_files_meet_at_sixteen_bits_with_a_warning(tmp_path):
    save(tmp_path / "c" / "a8.png", np.array([[0, 1, 128, 255]], np.uint8))
    save(tmp_path / "c" / "b16.png", np.array([[0, 257, 4095, 65535]], np.uint16))
    with pytest.warns(UserWarning, match=r"8-bit files \(.*a8\.png\) with 16-bit files \(.*b16"):
        images = load_image_folder(tmp_path).data
    assert images.dtype == np.uint16
    np.testing.assert_array_equal(images[:, 0], [[0, 257, 32896, 65535], [0, 257, 4095, 65535]])


def test_eight_bit_colour_and_sixteen_bit_grey_meet_in_rgb(tmp_path):
    save(tmp_path / "c" / "a.png", np.array([[[255, 0, 1]]], np.uint8))
    save(tmp_path / "c" / "b.png", np.array([[4000]], np.uint16))
    with pytest.warns(UserWarning, match="257"):
        images = load_image_folder(tmp_path).data
    np.testing.assert_array_equal(images[:, 0, 0], [[65535, 0, 257], [4000, 4000, 4000]])


@pytest.mark.parametrize("other", ["float.tif", "int32.tif"])
def test_a_folder_mixing_32_bit_files_with_others_is_an_error_at_the_first(tmp_path, other):
    save(tmp_path / "c" / "a.png", np.zeros((3, 4), np.uint8))
    save(tmp_path / "c" / other, FLOATS if other == "float.tif" else FLOATS.astype(np.int32))
    (tmp_path / "c" / "z.png").write_bytes(b"")  # never decoded: the mix is found first
    depth = "32-bit float" if other == "float.tif" else "32-bit integer"
    with pytest.raises(ValueError, match=rf"{other}.* is {depth}.*a\.png.* is 8-bit"):
        load_image_folder(tmp_path)


def test_sixteen_bit_colour_files_warn_that_pillow_keeps_8_bits(tmp_path):
    values = np.array([[[1000, 2000, 65535], [300, 0, 40000]]], np.uint16)
    save_png16(tmp_path / "c" / "deep.png", values, colour_type=2)
    with pytest.warns(UserWarning, match=r"deep\.png.*16 bits.*high byte"):
        image = load_image_folder(tmp_path).data[0]
    np.testing.assert_array_equal(image, values >> 8)


def test_sixteen_bit_grey_with_alpha_masks_are_an_error(tmp_path):
    # Pillow reads a 16-bit grey + alpha PNG as 8-bit RGBA: labels 1 to 5 would all be 0.
    labels = np.stack([np.array([[1, 2], [3, 5]]), np.full((2, 2), 65535)], axis=-1)
    save(tmp_path / "images" / "a.png", np.zeros((2, 2), np.uint8))
    save_png16(tmp_path / "masks" / "a.png", labels, colour_type=4)
    with pytest.raises(ValueError, match=r"a\.png.*16 bits.*high byte"):
        load_segmentation_folder(tmp_path / "images", tmp_path / "masks")


def test_sixteen_bit_and_float_segmentation_images_keep_their_values(tmp_path):
    labels = np.array([[0, 1], [1, 0]], np.uint8)
    for name, image in (("a.png", WORDS[:, :2].copy()), ("b.png", WORDS[:, 2:].copy())):
        save(tmp_path / "images" / name, image)
        save(tmp_path / "masks" / name, labels)
    data = load_segmentation_folder(tmp_path / "images", tmp_path / "masks")
    assert data.data.dtype == np.uint16
    np.testing.assert_array_equal(data.data, [WORDS[:, :2], WORDS[:, 2:]])


def test_float_masks_of_whole_numbers_are_labels_and_others_an_error(tmp_path):
    save(tmp_path / "images" / "a.png", np.zeros((2, 2), np.uint8))
    save(tmp_path / "masks" / "a.tif", np.array([[0.0, 1.0], [2.0, 300.0]], np.float32))
    data = load_segmentation_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_array_equal(data.target[0], [[0, 1], [2, 300]])
    save(tmp_path / "masks" / "a.tif", np.array([[0.0, 0.25], [1.0, 1.0]], np.float32))
    with pytest.raises(ValueError, match=r"a\.tif.*not whole numbers.*0\.25"):
        load_segmentation_folder(tmp_path / "images", tmp_path / "masks")


def test_a_palette_reads_sixteen_bit_grey_masks_as_grey_colours(tmp_path):
    save(tmp_path / "images" / "a.png", np.zeros((1, 2), np.uint8))
    save(tmp_path / "masks" / "a.png", np.array([[0, 255]], np.uint16))
    palette = [(0, 0, 0), (255, 255, 255)]
    target = load_segmentation_folder(tmp_path / "images", tmp_path / "masks", palette=palette)
    np.testing.assert_array_equal(target.target[0], [[0, 1]])
    save(tmp_path / "masks" / "a.png", np.array([[0, 65535]], np.uint16))
    with pytest.raises(ValueError, match=r"a\.png.*65535.*no colours"):
        load_segmentation_folder(tmp_path / "images", tmp_path / "masks", palette=palette)


def test_line_images_of_sixteen_bits_invert_within_their_range(tmp_path):
    save(tmp_path / "a.png", np.full((4, 6), 1000, np.uint16))
    (tmp_path / "labels.csv").write_text("file,text\na.png,hi\n")
    images, _ = load_line_folder(tmp_path, invert=True, return_X_y=True)
    assert images[0].dtype == np.uint16
    np.testing.assert_array_equal(images[0], 65535 - 1000)


def test_a_twelve_bit_folder_trains_as_the_eight_bit_one(tmp_path):
    # The estimators standardise their input, so 8-bit values and the same values as 12-bit
    # data (x 16) make the same model, as long as the 12-bit values come back unchanged.
    rng = np.random.default_rng(0)
    eight = rng.integers(0, 256, (12, 6, 6)).astype(np.uint8)
    for i, image in enumerate(eight):
        save(tmp_path / "8" / f"c{i % 2}" / f"{i}.png", image)
        save(tmp_path / "12" / f"c{i % 2}" / f"{i}.png", image.astype(np.uint16) * 16)
    probabilities = []
    for depth in ("8", "12"):
        X, y = load_image_folder(tmp_path / depth, return_X_y=True)
        model = RNNImageClassifier(hidden_size=4, max_epochs=2, random_state=0).fit(X, y)
        probabilities.append(model.predict_proba(X))
    np.testing.assert_allclose(probabilities[0], probabilities[1], atol=1e-5)


def test_eight_bit_folders_are_unchanged_and_give_no_warning(tmp_path):
    save(tmp_path / "c" / "a.png", np.array([[0, 255]], np.uint8))
    save(tmp_path / "c" / "b.png", np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8))
    save(tmp_path / "c" / "c.png", np.array([[0, 1]], bool))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        images = load_image_folder(tmp_path).data
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images[:, 0, 1], [[255] * 3, [4, 5, 6], [255] * 3])


def test_a_long_list_read_a_chunk_at_a_time_meets_at_the_depth_of_the_whole(tmp_path):
    # skrnn predict reads a folder a chunk at a time: an 8-bit file must be read on the same
    # scale whether or not a 16-bit file shares its chunk
    from skrnn._folders import common_depth, to_depth

    save(tmp_path / "a8.png", np.array([[0, 1, 128, 255]], np.uint8))
    save(tmp_path / "b16.png", np.array([[0, 257, 4095, 65535]], np.uint16))
    files = [tmp_path / "a8.png", tmp_path / "b16.png"]
    assert common_depth(files) == np.uint16 and common_depth(files[:1]) == np.uint8
    alone = to_depth(read_images(files[:1]), common_depth(files))
    with pytest.warns(UserWarning, match="257"):
        together = read_images(files)
    np.testing.assert_array_equal(alone[0], together[0])
    save(tmp_path / "c.tif", np.array([[0.5]], np.float32))
    with pytest.raises(ValueError, match=r"c\.tif is 32-bit float but .*a8\.png is 8-bit"):
        common_depth([*files, tmp_path / "c.tif"])
    assert common_depth([tmp_path / "missing.png"]) is None
