"""Image folders as people really have them: every odd file is made here with Pillow."""

import warnings

import numpy as np
import pytest

from skrnn._folders import read_images
from skrnn.datasets import load_image_folder, load_segmentation_folder
from skrnn.exceptions import SkippedFilesWarning

Image = pytest.importorskip("PIL.Image")

ORIENTATION = 0x0112  # the EXIF tag


def save(path, array, mode=None, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(array)) if mode is None else Image.fromarray(array, mode)
    image.save(path, **options)
    return path


def with_orientation(value):
    exif = Image.Exif()
    exif[ORIENTATION] = value
    return exif


# A non-square label picture in display orientation, and how a camera would store it under
# each EXIF orientation (the inverse of the turn a viewer applies).
LABELS = np.zeros((8, 12), np.uint8)
LABELS[1:4, 2:10], LABELS[5:8, 0:3] = 1, 1
STORED = {
    2: np.fliplr,
    3: lambda a: np.rot90(a, 2),
    6: lambda a: np.rot90(a, 1),  # "rotate 90 clockwise to display"
    8: lambda a: np.rot90(a, -1),
}


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_rotated_jpeg_comes_back_as_displayed(tmp_path, orientation):
    stored = np.ascontiguousarray(STORED[orientation](LABELS * 200))
    assert stored.shape != LABELS.shape or orientation in (2, 3)
    save(tmp_path / "c" / "photo.jpg", stored, quality=95, exif=with_orientation(orientation))
    image = load_image_folder(tmp_path).data[0]
    assert image.shape == LABELS.shape
    np.testing.assert_array_equal(image > 100, LABELS == 1)


def test_exif_rotated_photo_and_mask_stay_aligned(tmp_path):
    # Pair a: the photo is stored turned with an EXIF tag, the mask drawn as displayed.
    # Pair b: both are stored turned, each with its tag (a camera app saving both).
    stored_photo = np.ascontiguousarray(STORED[6](LABELS * 200))
    stored_mask = np.ascontiguousarray(STORED[6](LABELS))
    save(tmp_path / "images" / "a.jpg", stored_photo, quality=95, exif=with_orientation(6))
    save(tmp_path / "masks" / "a.png", LABELS)
    save(tmp_path / "images" / "b.jpg", stored_photo, quality=95, exif=with_orientation(6))
    save(tmp_path / "masks" / "b.png", stored_mask, exif=with_orientation(6))
    data = load_segmentation_folder(tmp_path / "images", tmp_path / "masks")
    assert data.data.shape == (2, 8, 12)
    np.testing.assert_array_equal(data.target, [LABELS, LABELS])
    np.testing.assert_array_equal(data.data > 100, data.target == 1)


def test_sixteen_bit_masks_keep_their_values_as_labels(tmp_path):
    labels = np.array([[0, 300, 1000, 65535]], np.uint16).repeat(3, axis=0)
    save(tmp_path / "images" / "a.png", np.zeros((3, 4), np.uint8))
    save(tmp_path / "masks" / "a.png", labels)
    target = load_segmentation_folder(tmp_path / "images", tmp_path / "masks").target
    np.testing.assert_array_equal(target[0], labels)


def palette_image(indices, colours, transparency=None):
    image = Image.fromarray(indices, "P")
    image.putpalette([c for colour in colours for c in colour])
    if transparency is not None:
        image.info["transparency"] = transparency
    return image


def test_palette_photos_take_their_palette_colours(tmp_path):
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    (tmp_path / "c").mkdir()
    palette_image(indices, [(0, 0, 0), (200, 10, 20), (5, 6, 250)]).save(tmp_path / "c" / "a.png")
    image = load_image_folder(tmp_path).data[0]
    np.testing.assert_array_equal(image, np.array([(0, 0, 0), (200, 10, 20), (5, 6, 250)])[indices])
    grey = palette_image(indices, [(0, 0, 0), (90, 90, 90), (255, 255, 255)])
    grey.save(tmp_path / "c" / "a.png")
    np.testing.assert_array_equal(load_image_folder(tmp_path).data[0], [[0, 90], [255, 90]])


def test_transparent_palette_masks_keep_their_indices(tmp_path):
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    save(tmp_path / "images" / "a.png", indices * 100)
    (tmp_path / "masks").mkdir()
    palette_image(indices, [(0, 0, 0), (255, 0, 0), (0, 0, 255)], transparency=0).save(
        tmp_path / "masks" / "a.png"
    )
    data = load_segmentation_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_array_equal(data.target[0], indices)


def test_alpha_is_dropped_from_rgba_and_la_photos(tmp_path):
    rgba = np.array([[(10, 20, 30, 0), (200, 100, 50, 128), (7, 8, 9, 255)]], np.uint8)
    save(tmp_path / "c" / "rgba.png", rgba)
    X = load_image_folder(tmp_path, return_X_y=True)[0]
    np.testing.assert_array_equal(X[0], rgba[..., :3])  # each pixel keeps its stored colour
    grey = load_image_folder(tmp_path, color_mode="grayscale").data[0]
    np.testing.assert_array_equal(grey, Image.fromarray(rgba[..., :3]).convert("L"))
    la = np.array([[(40, 0), (250, 255), (90, 30)]], np.uint8)
    save(tmp_path / "c" / "rgba.png", la, "LA")
    np.testing.assert_array_equal(load_image_folder(tmp_path).data[0], [[40, 250, 90]])


def test_alpha_is_dropped_from_masks(tmp_path):
    labels = np.array([[0, 1, 2], [2, 2, 0]], np.uint8)
    alpha = np.array([[0, 255, 128], [255, 0, 255]], np.uint8)
    save(tmp_path / "images" / "a.png", labels)
    save(tmp_path / "images" / "b.png", labels)
    save(tmp_path / "masks" / "a.png", np.dstack([labels, labels, labels, alpha]))
    save(tmp_path / "masks" / "b.png", np.dstack([labels, alpha]), "LA")
    target = load_segmentation_folder(tmp_path / "images", tmp_path / "masks").target
    np.testing.assert_array_equal(target, [labels, labels])


def test_cmyk_jpeg_reads_as_its_rgb_colours(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:8], rgb[8:] = (200, 30, 60), (20, 180, 90)
    (tmp_path / "c").mkdir()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c" / "print.jpg", quality=95)
    with Image.open(tmp_path / "c" / "print.jpg") as written:
        assert written.mode == "CMYK"
    image = load_image_folder(tmp_path).data[0]
    assert image.shape == (16, 16, 3)
    assert np.abs(image.astype(int) - rgb).max() <= 8


def test_one_bit_files_are_0_and_255_as_photos_and_0_and_1_as_masks(tmp_path):
    bits = np.array([[0, 1, 1], [1, 0, 0]], np.uint8)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
        Image.fromarray(bits * 255).convert("1").save(tmp_path / folder / "a.png")
    with Image.open(tmp_path / "masks" / "a.png") as written:
        assert written.mode == "1"
    data = load_segmentation_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_array_equal(data.data[0], bits * 255)
    np.testing.assert_array_equal(data.target[0], bits)


@pytest.mark.parametrize("side, pixels", [(40, "1,600"), (50, "2,500")])
def test_decompression_bomb_is_an_error_naming_the_file_and_the_limit(
    tmp_path, monkeypatch, side, pixels
):
    # Pillow warns between its limit and twice it (40x40 here) and refuses beyond (50x50).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    save(tmp_path / "c" / "huge.png", np.zeros((side, side), np.uint8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError) as error:
            load_image_folder(tmp_path)
    assert not caught  # refused outright: no DecompressionBombWarning and no decoding
    message = str(error.value)
    assert "huge.png" in message
    assert f"{pixels} pixels" in message
    assert "PIL.Image.MAX_IMAGE_PIXELS = 1,000" in message
    assert "or None for no limit" in message
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert load_image_folder(tmp_path).data.shape == (1, side, side)


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    save(tmp_path / "ants" / "a.png", np.full((4, 4), 10, np.uint8))
    save(tmp_path / "bees" / "b.jpg", np.full((4, 4), 240, np.uint8))
    junk = b"\x00\x05\x16\x07 Mac OS X resource fork"
    (tmp_path / ".DS_Store").write_bytes(junk)
    (tmp_path / "ants" / ".DS_Store").write_bytes(junk)
    (tmp_path / "ants" / "._a.png").write_bytes(junk)  # ends in .png, holds no image
    (tmp_path / "ants" / "Thumbs.db").write_bytes(junk)
    (tmp_path / "bees" / "desktop.ini").write_text("[.ShellClassInfo]")
    (tmp_path / "bees" / "notes.txt").write_text("bees are bright")
    (tmp_path / "bees" / "labels.csv").write_text("file,label\nb.jpg,bee\n")
    (tmp_path / "__MACOSX" / "ants").mkdir(parents=True)
    (tmp_path / "__MACOSX" / "ants" / "._a.png").write_bytes(junk)
    (tmp_path / ".thumbnails").mkdir()
    save(tmp_path / ".thumbnails" / "a.png", np.zeros((4, 4), np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_image_folder(tmp_path)
    assert data.target_names.tolist() == ["ants", "bees"]
    assert [name.rsplit("/", 1)[-1] for name in data.filenames] == ["a.png", "b.jpg"]
    assert data.skipped == {}


def test_hidden_files_beside_images_and_masks_are_ignored(tmp_path):
    save(tmp_path / "images" / "a.png", LABELS * 200)
    save(tmp_path / "masks" / "a.png", LABELS)
    for folder in ("images", "masks"):
        (tmp_path / folder / "._a.png").write_bytes(b"\x00\x05\x16\x07")
        (tmp_path / folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    data = load_segmentation_folder(tmp_path / "images", tmp_path / "masks")
    assert len(data.filenames) == 1
    np.testing.assert_array_equal(data.target[0], LABELS)


def write_classes(root, broken=()):
    """Classes 'ants' (2 good files) and 'bees' (1 good file), plus ``broken`` in 'ants'."""
    save(root / "ants" / "a0.png", np.full((6, 6), 10, np.uint8))
    save(root / "ants" / "a1.png", np.full((6, 6), 20, np.uint8))
    save(root / "bees" / "b0.png", np.full((6, 6), 240, np.uint8))
    good = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    payload = {}
    for suffix in (".jpg", ".png"):
        save(root / f"good{suffix}", good)
        payload[suffix] = (root / f"good{suffix}").read_bytes()
        (root / f"good{suffix}").unlink()
    contents = {
        "cut.jpg": payload[".jpg"][: len(payload[".jpg"]) // 2],
        "cut.png": payload[".png"][: len(payload[".png"]) // 2],
        "empty.png": b"",
        "text.jpg": b"this is a text file named as a JPEG",
    }
    for name in broken:
        (root / "ants" / name).write_bytes(contents[name])


@pytest.mark.parametrize(
    "name, reason",
    [
        ("cut.jpg", "the file is truncated"),
        ("cut.png", "the file is truncated"),
        ("empty.png", r"the file is empty \(0 bytes\); expected a PNG image"),
        ("text.jpg", "Pillow does not recognise its contents; expected a JPEG image"),
    ],
)
def test_a_broken_file_is_an_error_that_names_it_and_says_why(tmp_path, name, reason):
    write_classes(tmp_path, broken=[name])
    with pytest.raises(ValueError, match=rf"Cannot read the image file .*{name}: {reason}") as e:
        load_image_folder(tmp_path)
    assert "pass skip_errors=True" in str(e.value)


def test_skip_errors_leaves_out_broken_files_and_reports_them(tmp_path):
    broken = ["cut.jpg", "cut.png", "empty.png", "text.jpg"]
    write_classes(tmp_path, broken=broken)
    with pytest.warns(SkippedFilesWarning, match=r"left out 4 files .*\(3 images loaded\)") as w:
        data = load_image_folder(tmp_path, skip_errors=True)
    assert data.data.shape == (3, 6, 6)
    assert data.target.tolist() == [0, 0, 1]
    assert data.data[:, 0, 0].tolist() == [10, 20, 240]
    assert [name.rsplit("/", 1)[-1] for name in data.filenames] == ["a0.png", "a1.png", "b0.png"]
    assert sorted(name.rsplit("/", 1)[-1] for name in data.skipped) == sorted(broken)
    assert "truncated" in data.skipped[str(tmp_path / "ants" / "cut.jpg")]
    message = str(w[0].message)
    assert all(name in message for name in broken)
    assert w[0].message.skipped == data.skipped
    with pytest.warns(SkippedFilesWarning):
        X, y = load_image_folder(tmp_path, skip_errors=True, return_X_y=True)
    assert X.shape == (3, 6, 6) and y.tolist() == [0, 0, 1]


def test_skip_errors_also_skips_a_decompression_bomb(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    write_classes(tmp_path)
    save(tmp_path / "bees" / "huge.png", np.zeros((50, 50), np.uint8))
    with pytest.warns(SkippedFilesWarning, match=r"huge\.png: it has 2,500 pixels"):
        data = load_image_folder(tmp_path, skip_errors=True)
    assert data.data.shape == (3, 6, 6)


def test_read_images_skips_broken_files_and_says_which(tmp_path):
    write_classes(tmp_path, broken=["empty.png"])
    files = [tmp_path / "ants" / name for name in ("a0.png", "empty.png", "a1.png")]
    with pytest.raises(ValueError, match=r"empty\.png: the file is empty"):
        read_images(files)
    with pytest.warns(SkippedFilesWarning) as w:
        images = read_images(files, skip_errors=True)
    assert images[:, 0, 0].tolist() == [10, 20]
    assert list(w[0].message.skipped) == [str(files[1])]


def test_empty_class_folder_is_an_error_that_says_what_it_holds(tmp_path):
    write_classes(tmp_path)
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / "cats" / "notes.txt").write_text("no cats yet")
    with pytest.raises(ValueError) as error:
        load_image_folder(tmp_path)
    message = str(error.value)
    assert f"The class folder {tmp_path / 'cats'} holds no images" in message
    assert ".DS_Store, notes.txt) are hidden or not images" in message
    (tmp_path / "dogs" / "puppies").mkdir(parents=True)
    save(tmp_path / "dogs" / "puppies" / "p.png", np.zeros((6, 6), np.uint8))
    (tmp_path / "cats" / ".DS_Store").unlink()
    (tmp_path / "cats" / "notes.txt").unlink()
    (tmp_path / "cats").rmdir()
    with pytest.raises(ValueError, match=r"dogs holds no images.*sub-folders \(puppies\)"):
        load_image_folder(tmp_path)


def test_skip_errors_leaves_out_empty_and_unreadable_classes(tmp_path):
    write_classes(tmp_path)
    (tmp_path / "bats").mkdir()  # sorts first: the labels must not keep a gap for it
    (tmp_path / "cats").mkdir()
    (tmp_path / "cats" / "c.png").write_bytes(b"")
    with pytest.warns(SkippedFilesWarning, match=r"left out 1 file and 2 folders"):
        data = load_image_folder(tmp_path, skip_errors=True)
    assert data.target_names.tolist() == ["ants", "bees"]
    assert data.target.tolist() == [0, 0, 1]
    assert "holds no images" in data.skipped[str(tmp_path / "bats")]
    assert "none of its images could be read" in data.skipped[str(tmp_path / "cats")]
    assert "empty" in data.skipped[str(tmp_path / "cats" / "c.png")]


def test_nothing_readable_is_an_error_even_with_skip_errors(tmp_path):
    (tmp_path / "ants").mkdir()
    (tmp_path / "ants" / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"No image in .* could be loaded.*a\.png.*empty"):
        load_image_folder(tmp_path, skip_errors=True)
    with pytest.raises(ValueError, match=r"No image in the files given could be loaded"):
        read_images([tmp_path / "ants" / "a.png"], skip_errors=True)


def test_segmentation_skip_errors_leaves_out_bad_pairs(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    for name in ("a", "b", "c", "d", "e"):
        save(images / f"{name}.png", LABELS * 200)
        save(masks / f"{name}.png", LABELS)
    (masks / "b.png").unlink()  # no mask
    (masks / "c.png").write_bytes(b"")  # unreadable mask
    save(masks / "d.png", LABELS[:4])  # another size
    (images / "e.png").write_bytes((images / "e.png").read_bytes()[:60])  # truncated image
    with pytest.raises(ValueError, match=r"b\.png has no mask.*pass skip_errors=True"):
        load_segmentation_folder(images, masks)
    with pytest.warns(SkippedFilesWarning, match=r"left out 4 files .*\(1 image loaded\)"):
        data = load_segmentation_folder(images, masks, skip_errors=True)
    assert [name.rsplit("/", 1)[-1] for name in data.filenames] == ["a.png"]
    assert [name.rsplit("/", 1)[-1] for name in data.mask_filenames] == ["a.png"]
    np.testing.assert_array_equal(data.target, [LABELS])
    assert "has no mask" in data.skipped[str(images / "b.png")]
    assert "empty" in data.skipped[str(masks / "c.png")]
    assert "is 12x4 (width x height)" in data.skipped[str(masks / "d.png")]
    assert str(images / "e.png") in data.skipped


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_skip_errors_must_be_a_bool(tmp_path, value):
    write_classes(tmp_path)
    with pytest.raises(ValueError, match="skip_errors must be True .* or False"):
        load_image_folder(tmp_path, skip_errors=value)


def test_the_decompression_bomb_check_holds_under_threads(tmp_path, monkeypatch):
    """Loads in 8 threads at once: every file between the limit and twice it is refused, the
    small ones load, and the process's warning filters are left as they were."""
    from concurrent.futures import ThreadPoolExecutor

    from skrnn._folders import _read_file

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    save(tmp_path / "bomb.png", np.zeros((40, 40), np.uint8))  # warned of, not refused, by Pillow
    save(tmp_path / "small.png", np.zeros((20, 20), np.uint8))
    before = list(warnings.filters)

    def load(i):
        path = tmp_path / ("bomb.png" if i % 2 else "small.png")
        try:
            _read_file(path, None, None, lambda image: image.convert("L"))
        except ValueError as error:
            return path.name, "refused" if "MAX_IMAGE_PIXELS" in str(error) else str(error)
        return path.name, "loaded"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(load, range(800)))
    assert set(results) == {("bomb.png", "refused"), ("small.png", "loaded")}
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert warnings.filters == before


@pytest.mark.parametrize("suffix, options", [(".tif", {}), (".tiff", {"compression": "tiff_lzw"}),
                                             (".webp", {"lossless": True}), (".gif", {})])
def test_tiff_webp_and_gif_files_are_read(tmp_path, suffix, options):
    pixels = (np.arange(12 * 10).reshape(12, 10) % 7 * 30).astype(np.uint8)
    save(tmp_path / "c" / f"a{suffix}", pixels, **options)
    image = load_image_folder(tmp_path).data[0]
    if suffix == ".webp":  # WebP stores colour: grey comes back as three equal channels
        assert image.shape == (*pixels.shape, 3)
        image = image[..., 0]
    np.testing.assert_array_equal(image, pixels)


def test_a_lossy_webp_file_is_read_as_lossy(tmp_path):
    from skrnn._folders import _read_file

    pixels = (np.arange(16 * 16).reshape(16, 16) % 7 * 30).astype(np.uint8)
    save(tmp_path / "lossy.webp", pixels, quality=50)
    save(tmp_path / "lossless.webp", pixels, lossless=True)
    grey = lambda image: image.convert("L")  # noqa: E731
    assert _read_file(tmp_path / "lossy.webp", None, None, grey)[1] is True
    assert _read_file(tmp_path / "lossless.webp", None, None, grey)[1] is False


@pytest.mark.parametrize("suffix", [".gif", ".tiff", ".webp"])
def test_files_of_several_frames_are_a_clear_error(tmp_path, suffix):
    frames = [Image.fromarray(np.full((8, 8), value, np.uint8)) for value in (0, 120, 240)]
    path = tmp_path / "c" / f"moving{suffix}"
    path.parent.mkdir(parents=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], **(
        {"lossless": True} if suffix == ".webp" else {}))
    with pytest.raises(ValueError, match=r"moving.*holds 3 images \(frames or pages\)"):
        load_image_folder(tmp_path)
