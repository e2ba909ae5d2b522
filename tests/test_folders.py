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
