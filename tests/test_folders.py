import numpy as np
import pytest

from skrnn.datasets import load_image_folder, load_segmentation_folder

Image = pytest.importorskip("PIL.Image")


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)


@pytest.fixture
def class_folders(tmp_path):
    """Two classes of 10x12 images: dark 'ants' (3 files) and bright 'bees' (2 files)."""
    rng = np.random.default_rng(0)
    for i in range(3):
        save(tmp_path / "ants" / f"a{i}.png", rng.integers(0, 80, (10, 12)))
    for i in range(2):
        save(tmp_path / "bees" / f"b{i}.jpg", rng.integers(170, 255, (10, 12)))
    (tmp_path / "bees" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_gives_one_class_per_subfolder(class_folders):
    data = load_image_folder(class_folders)
    assert data.data.shape == (5, 10, 12)
    assert data.data.dtype == np.uint8
    assert data.target.tolist() == [0, 0, 0, 1, 1]
    assert data.target_names.tolist() == ["ants", "bees"]
    assert [name.rsplit("/", 1)[-1] for name in data.filenames] == [
        "a0.png",
        "a1.png",
        "a2.png",
        "b0.jpg",
        "b1.jpg",
    ]
    assert data.data[:3].mean() < 100 < data.data[3:].mean()


def test_image_folder_resizes_and_reads_rgb(class_folders):
    X, y = load_image_folder(class_folders, image_size=(6, 4), color_mode="rgb", return_X_y=True)
    assert X.shape == (5, 6, 4, 3)
    assert y.shape == (5,)


def test_image_folder_with_mixed_sizes_needs_image_size(class_folders):
    save(class_folders / "bees" / "big.png", np.zeros((20, 20)))
    with pytest.raises(ValueError, match=r"big\.png.*image_size"):
        load_image_folder(class_folders)
    assert load_image_folder(class_folders, image_size=8).data.shape == (6, 8, 8)


def test_the_first_image_of_another_size_fails_before_the_rest_are_read(class_folders):
    save(class_folders / "ants" / "a1.png", np.zeros((20, 30)))
    (class_folders / "bees" / "b9.png").write_bytes(b"")  # never decoded: a1.png stops first
    with pytest.raises(ValueError) as error:
        load_image_folder(class_folders)
    message = str(error.value)
    assert "a1.png is 30x20 (width x height)" in message
    assert "expected 12x10, the size of" in message and "a0.png" in message
    assert "image_size=(height, width)" in message


def test_segmentation_images_of_another_size_fail_at_the_first(segmentation_folders):
    images_dir, masks_dir = segmentation_folders
    save(images_dir / "img1.jpg", np.zeros((4, 5)))
    (masks_dir / "img2.png").write_bytes(b"")  # never decoded
    with pytest.raises(ValueError, match=r"img1\.jpg is 5x4 .*expected 10x8"):
        load_segmentation_folder(images_dir, masks_dir)


def test_image_folder_names_an_unreadable_file(class_folders):
    (class_folders / "ants" / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"Cannot read the image file .*broken\.png"):
        load_image_folder(class_folders)


@pytest.mark.parametrize(
    "layout, message",
    [
        ("missing", "is not a folder"),
        ("no_classes", "no class sub-folders"),
        ("empty", "no images"),
    ],
)
def test_image_folder_errors_name_the_folder(tmp_path, layout, message):
    if layout == "no_classes":
        tmp_path.joinpath("loose.png").write_bytes(b"")
    if layout == "empty":
        (tmp_path / "cats").mkdir()
    root = tmp_path / "nowhere" if layout == "missing" else tmp_path
    with pytest.raises(ValueError, match=message):
        load_image_folder(root)


def test_image_folder_rejects_an_unknown_color_mode(class_folders):
    with pytest.raises(ValueError, match="color_mode must be one of"):
        load_image_folder(class_folders, color_mode="cmyk")


@pytest.fixture
def segmentation_folders(tmp_path):
    for i in range(3):
        mask = np.zeros((8, 10), dtype=np.uint8)
        mask[1 : 3 + i, 2:6] = 1
        mask[6:, 7:] = 2
        save(tmp_path / "images" / f"img{i}.jpg", mask * 100)
        save(tmp_path / "masks" / f"img{i}.png", mask)
    return tmp_path / "images", tmp_path / "masks"


def test_segmentation_folder_pairs_images_and_masks_by_stem(segmentation_folders):
    data = load_segmentation_folder(*segmentation_folders)
    assert data.data.shape == (3, 8, 10)
    assert data.target.shape == (3, 8, 10)
    assert np.issubdtype(data.target.dtype, np.integer)
    assert data.target_names.tolist() == [0, 1, 2]
    assert data.target[2, 1:5, 2:6].tolist() == [[1] * 4] * 4
    assert [f.rsplit("/", 1)[-1] for f in data.mask_filenames] == [
        "img0.png",
        "img1.png",
        "img2.png",
    ]


def test_segmentation_masks_are_resized_with_the_nearest_neighbour(segmentation_folders):
    X, Y = load_segmentation_folder(*segmentation_folders, image_size=(16, 20), return_X_y=True)
    assert X.shape == Y.shape == (3, 16, 20)
    assert set(np.unique(Y).tolist()) == {0, 1, 2}  # no blended labels such as 1.5


def test_segmentation_folder_names_a_missing_mask(segmentation_folders):
    images_dir, masks_dir = segmentation_folders
    (masks_dir / "img1.png").unlink()
    with pytest.raises(ValueError, match=r"img1\.jpg has no mask.*img1\.png"):
        load_segmentation_folder(images_dir, masks_dir)


def test_segmentation_folder_with_no_images(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_segmentation_folder(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(ValueError, match="masks folder"):
        load_segmentation_folder(tmp_path / "images", tmp_path / "nope")


# --------------------------------------------------------------------------- colour modes
def test_auto_color_mode_keeps_colour_photos_in_colour(tmp_path):
    red = np.zeros((6, 8, 3), np.uint8)
    red[..., 0] = 200
    for i in range(2):
        save(tmp_path / "roses" / f"{i}.png", red)
        save(tmp_path / "violets" / f"{i}.jpg", red[..., ::-1])
    X = load_image_folder(tmp_path).data
    assert X.shape == (4, 6, 8, 3)
    assert X[0, 0, 0].tolist() == [200, 0, 0]
    assert X[2, 0, 0, 2] > 190 and X[2, 0, 0, 0] < 10  # blue survives JPEG, not turned grey
    assert load_image_folder(tmp_path, color_mode="grayscale").data.shape == (4, 6, 8)


def test_auto_color_mode_reads_a_mixed_folder_as_rgb(tmp_path):
    save(tmp_path / "a" / "grey.png", np.full((5, 5), 90))
    save(tmp_path / "a" / "colour.png", np.full((5, 5, 3), (10, 200, 30)))
    palette_image = Image.fromarray(np.zeros((5, 5), np.uint8), "P")
    palette_image.putpalette([250, 0, 0] + [0, 0, 0] * 255)
    (tmp_path / "b").mkdir()
    palette_image.save(tmp_path / "b" / "palette.png")
    data = load_image_folder(tmp_path)
    assert data.data.shape == (3, 5, 5, 3)
    by_name = {
        name.rsplit("/", 1)[-1]: image
        for name, image in zip(data.filenames, data.data, strict=True)
    }
    assert by_name["grey.png"][0, 0].tolist() == [90, 90, 90]  # grey repeated, not recoloured
    assert by_name["colour.png"][0, 0].tolist() == [10, 200, 30]
    assert by_name["palette.png"][0, 0].tolist() == [250, 0, 0]  # through its palette
    assert load_image_folder(tmp_path, color_mode="rgb").data.shape == (3, 5, 5, 3)


def test_auto_color_mode_keeps_a_grey_folder_grey(class_folders):
    assert load_image_folder(class_folders, color_mode="auto").data.ndim == 3


# --------------------------------------------------------------------------- real masks
def horse_masks(n=4, height=48, width=64, seed=0):
    """Boolean masks of one blob each, like a horse on its background."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width]
    masks = []
    for _ in range(n):
        cy, cx, r = rng.uniform(15, height - 15), rng.uniform(15, width - 15), rng.uniform(8, 14)
        masks.append((rows - cy) ** 2 / (1.3 * r) ** 2 + (cols - cx) ** 2 / r**2 < 1)
    return np.array(masks)


def write_pairs(root, masks, *, suffix=".png", quality=75, images=None):
    """Photos in root/images and masks in root/masks; returns the two folders."""
    rng = np.random.default_rng(1)
    for i, mask in enumerate(masks):
        image = rng.integers(0, 255, mask.shape[:2]) if images is None else images[i]
        save(root / "images" / f"p{i}.png", image)
        path = root / "masks" / f"p{i}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(mask, np.uint8)).save(path, quality=quality)  # JPEG only
    return root / "images", root / "masks"


@pytest.fixture
def jpeg_masks(tmp_path):
    truth = horse_masks()
    folders = write_pairs(tmp_path, truth * 255, suffix=".jpg")
    with Image.open(folders[1] / "p0.jpg") as read_back:
        assert len(np.unique(read_back)) > 10  # the compression really smeared the labels
    return folders, truth


def test_jpeg_masks_are_an_error_that_says_how_to_snap_them(jpeg_masks):
    folders, _ = jpeg_masks
    with pytest.raises(ValueError) as error:
        load_segmentation_folder(*folders)
    message = str(error.value)
    assert "are JPEG files (p0.jpg and 3 more)" in message
    assert "distinct values, each of which would become a class" in message
    assert "mask_values=[0, 255]" in message
    assert "mask_threshold=127" in message


@pytest.mark.parametrize(
    "options, labels",
    [({"mask_values": [0, 255]}, [0, 255]), ({"mask_threshold": 127}, [0, 1])],
)
def test_jpeg_masks_snap_back_to_their_labels(jpeg_masks, options, labels):
    folders, truth = jpeg_masks
    data = load_segmentation_folder(*folders, **options)
    assert data.target_names.tolist() == labels
    assert data.target.dtype == np.int64
    np.testing.assert_array_equal(data.target == labels[1], truth)


def test_mask_values_far_from_the_masks_are_an_error(jpeg_masks):
    folders, _ = jpeg_masks
    with pytest.raises(ValueError, match=r"far from all of mask_values=\[0, 1, 2\]: 255, "):
        load_segmentation_folder(*folders, mask_values=[0, 1, 2])


def test_jpeg_masks_that_look_clean_still_warn_that_they_are_lossy(tmp_path):
    masks = np.zeros((2, 16, 16), np.uint8)
    masks[:, :8, 8:] = 255  # whole 8x8 blocks: JPEG brings them back as exactly 0 and 255
    folders = write_pairs(tmp_path, masks, suffix=".jpg", quality=90)
    with pytest.warns(UserWarning, match=r"p0\.jpg.*lossy.*labels found, \[0, 255\].*PNG"):
        data = load_segmentation_folder(*folders)
    assert data.target_names.tolist() == [0, 255]


def test_a_lossy_mask_that_lost_its_zeros_suggests_the_drawn_labels(tmp_path, recwarn):
    masks = np.full((2, 16, 16), 1, np.uint8)
    masks[:, :8, 8:] = 255
    folders = write_pairs(tmp_path, masks)
    for path in folders[1].iterdir():  # a 0/255 mask a lossy editor brought back as 1/255
        path.rename(path.with_suffix(".jpg"))
        with Image.open(path.with_suffix(".jpg")) as mask:
            mask.save(path.with_suffix(".jpg"), quality=95)
    with Image.open(folders[1] / "p0.jpg") as read_back:
        assert sorted(np.unique(read_back).tolist()) == [1, 255]
    with pytest.warns(UserWarning, match=r"\[1, 255\].*mask_values=\[0, 255\]"):
        load_segmentation_folder(*folders)


def test_snapped_lossy_masks_give_no_lossy_warning(jpeg_masks, recwarn):
    load_segmentation_folder(*jpeg_masks[0], mask_values=[0, 255])
    assert not [w for w in recwarn if "lossy" in str(w.message)]


def test_a_lossless_mask_is_preferred_to_a_lossy_one_of_the_same_image(tmp_path):
    truth = np.zeros((2, 16, 16), np.uint8)
    truth[:, 3:11, 5:13] = 1
    folders = write_pairs(tmp_path, truth)
    smeared = truth[0] * 255
    Image.fromarray(smeared).save(folders[1] / "p0.jpg", quality=60)  # sorts before p0.png
    Image.fromarray(smeared).save(folders[1] / "p1.webp", quality=60)  # lossy WebP
    with pytest.warns(UserWarning) as caught:
        data = load_segmentation_folder(*folders)
    message = "\n".join(str(w.message) for w in caught)
    assert "p0.png" in message and "p0.jpg" in message and "p1.webp" in message
    assert "lossless" in message
    assert [name.rsplit("/", 1)[-1] for name in data.mask_filenames] == ["p0.png", "p1.png"]
    np.testing.assert_array_equal(data.target, truth)


def test_smeared_png_masks_give_a_warning(tmp_path, jpeg_masks):
    (images_dir, jpeg_dir), _ = jpeg_masks
    png_dir = tmp_path / "png_masks"
    png_dir.mkdir()
    for path in jpeg_dir.iterdir():  # converted to PNG after the damage was done
        with Image.open(path) as mask:
            mask.save(png_dir / f"{path.stem}.png")
    with pytest.warns(UserWarning, match=r"compression or resizing.*mask_values=\[0, 255\]"):
        data = load_segmentation_folder(images_dir, png_dir)
    assert len(data.target_names) > 10  # a warning only: the values are kept


def test_clean_masks_with_many_labels_load_without_warning(tmp_path, recwarn):
    labels = np.arange(12).repeat(16).reshape(12, 16)  # twelve labels, CamVid style
    folders = write_pairs(tmp_path, [labels, labels[::-1]])
    data = load_segmentation_folder(*folders)
    assert data.target_names.tolist() == list(range(12))
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_palette_png_masks_keep_their_indices(tmp_path):
    indices = np.zeros((8, 10), np.uint8)
    indices[2:5, 1:4], indices[5:, 6:] = 1, 2
    save(tmp_path / "images" / "a.png", indices * 80)
    mask = Image.fromarray(indices, "P")
    mask.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])  # luminance 0, 76, 29: not the labels
    (tmp_path / "masks").mkdir()
    mask.save(tmp_path / "masks" / "a.png")
    with Image.open(tmp_path / "masks" / "a.png") as written:
        assert written.mode == "P"
    data = load_segmentation_folder(tmp_path / "images", tmp_path / "masks")
    np.testing.assert_array_equal(data.target[0], indices)
    mapped = load_segmentation_folder(
        tmp_path / "images",
        tmp_path / "masks",
        palette={(255, 0, 0): 7, (0, 0, 255): 9, (0, 0, 0): 0},
    )
    np.testing.assert_array_equal(mapped.target[0], np.array([0, 7, 9])[indices])


CLASS_COLOURS = [(0, 0, 0), (128, 0, 0), (0, 128, 0)]


@pytest.fixture
def colour_masks(tmp_path):
    labels = np.zeros((3, 16, 20), np.int64)
    for i in range(3):
        labels[i, 2:9, 2 : 8 + i] = 1  # red covers more than green, black the most
        labels[i, 11:15, 12:18] = 2
    colours = np.asarray(CLASS_COLOURS, np.uint8)[labels]
    return labels, colours


def test_colour_coded_masks_need_a_palette(tmp_path, colour_masks):
    labels, colours = colour_masks
    folders = write_pairs(tmp_path, colours)
    with pytest.raises(ValueError) as error:
        load_segmentation_folder(*folders)
    assert "p0.png is colour-coded" in str(error.value)
    assert "palette=[(0, 0, 0), (128, 0, 0), (0, 128, 0)]" in str(error.value)


@pytest.mark.parametrize(
    "palette, expected",
    [
        (CLASS_COLOURS, [0, 1, 2]),
        ({(0, 0, 0): 0, (128, 0, 0): 5, (0, 128, 0): 3}, [0, 5, 3]),
    ],
)
def test_palette_maps_colours_to_labels(tmp_path, colour_masks, palette, expected):
    labels, colours = colour_masks
    folders = write_pairs(tmp_path, colours)
    Y = load_segmentation_folder(*folders, palette=palette, return_X_y=True)[1]
    np.testing.assert_array_equal(Y, np.asarray(expected)[labels])


def test_palette_maps_jpeg_colours_to_the_nearest(tmp_path, colour_masks):
    labels, colours = colour_masks
    folders = write_pairs(tmp_path, colours, suffix=".jpg", quality=90)
    Y = load_segmentation_folder(*folders, palette=CLASS_COLOURS, return_X_y=True)[1]
    assert (Y == labels).mean() > 0.99


def test_a_colour_missing_from_the_palette_is_named(tmp_path, colour_masks):
    labels, colours = colour_masks
    folders = write_pairs(tmp_path, colours)
    with pytest.raises(
        ValueError, match=r"p0\.png has colours that are not in the palette: \(0, 128, 0\)"
    ):
        load_segmentation_folder(*folders, palette=CLASS_COLOURS[:2])


def test_rgb_masks_with_grey_pixels_are_read_as_labels(tmp_path, colour_masks):
    labels, _ = colour_masks
    folders = write_pairs(tmp_path, np.repeat(labels[..., None], 3, axis=-1))
    with Image.open(folders[1] / "p0.png") as written:
        assert written.mode == "RGB"
    np.testing.assert_array_equal(load_segmentation_folder(*folders).target, labels)


def test_segmentation_images_follow_the_color_mode(tmp_path, colour_masks):
    labels, colours = colour_masks
    folders = write_pairs(tmp_path, labels, images=colours)
    assert load_segmentation_folder(*folders).data.shape == (3, 16, 20, 3)
    assert load_segmentation_folder(*folders, color_mode="grayscale").data.shape == (3, 16, 20)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"mask_values": [255]}, "at least two different integers"),
        ({"mask_values": [0.5, 1]}, "at least two different integers"),
        ({"mask_values": "0,255"}, "at least two different integers"),
        ({"mask_threshold": "half"}, "mask_threshold must be a number"),
        ({"palette": [(0, 0)]}, r"\(0, 0\) is not three integers"),
        ({"palette": [(0, 0, 300)]}, "not three integers from 0 to 255"),
        ({"palette": {(0, 0, 0): "sky"}}, "the labels must be integers"),
        ({"palette": [(1, 2, 3), (1, 2, 3)]}, r"lists the colour \(1, 2, 3\) twice"),
        ({"mask_values": [0, 1], "mask_threshold": 0.5}, "at most one of"),
    ],
)
def test_bad_mask_options_are_errors(segmentation_folders, options, message):
    with pytest.raises(ValueError, match=message):
        load_segmentation_folder(*segmentation_folders, **options)
