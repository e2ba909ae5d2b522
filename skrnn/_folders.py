"""Image data sets read from folders on disk: one folder per class, or images beside masks.

Pillow reads the files; it is imported only when a folder is loaded (``pip install
skrnn[images]``). The loaders are re-exported from :mod:`skrnn.datasets`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._validation import check_int_pair

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
COLOR_MODES = {"grayscale": "L", "rgb": "RGB"}

__all__ = [
    "IMAGE_SUFFIXES",
    "image_files",
    "load_image_folder",
    "load_segmentation_folder",
    "read_images",
]


def _pillow():
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - pillow is installed in the test env
        raise ImportError(
            "Reading image folders needs Pillow; install it with `pip install skrnn[images]` "
            "(or `pip install pillow`)."
        ) from error
    return Image


def _check_image_size(image_size) -> tuple[int, int] | None:
    """``None`` (keep the files' sizes) or ``(height, width)`` from an int or a pair."""
    if image_size is None:
        return None
    try:
        return check_int_pair(image_size, "image_size")
    except ValueError as error:
        raise ValueError(f"{error} Or leave image_size=None to keep the files' sizes.") from None


def _check_color_mode(color_mode) -> str:
    if color_mode not in COLOR_MODES:
        raise ValueError(f"color_mode must be one of {sorted(COLOR_MODES)}, got {color_mode!r}.")
    return COLOR_MODES[color_mode]


def image_files(folder) -> list[Path]:
    """The image files directly in ``folder`` (by suffix, case-insensitive), sorted by name."""
    folder = Path(folder)
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
    )


def _read(path: Path, mode: str, size, resample) -> np.ndarray:
    """One image file as a uint8 array (or integer labels for mode ``"labels"``)."""
    Image = _pillow()
    try:
        with Image.open(path) as image:
            image.load()
            if mode == "labels":
                # Palette ("P") and grey masks hold their labels as pixel values already.
                if image.mode not in ("L", "P", "I", "I;16", "1"):
                    image = image.convert("L")
            else:
                image = image.convert(mode)
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), resample=resample)
            array = np.asarray(image)
    except (OSError, SyntaxError, ValueError) as error:
        raise ValueError(f"Cannot read the image file {path}: {error}") from error
    if mode == "labels":
        return array.astype(np.int64)
    return array.astype(np.uint8, copy=False)


def _stack(arrays: list[np.ndarray], paths: list[Path], what: str) -> np.ndarray:
    first_shape = arrays[0].shape
    for array, path in zip(arrays, paths, strict=True):
        if array.shape[:2] != first_shape[:2]:
            raise ValueError(
                f"The {what} have different sizes: {paths[0]} is {first_shape[1]}x"
                f"{first_shape[0]} (width x height) but {path} is {array.shape[1]}x"
                f"{array.shape[0]}. Pass image_size=(height, width) to resize them all."
            )
    return np.stack(arrays)


def read_images(files, *, image_size=None, color_mode: str = "grayscale") -> np.ndarray:
    """Read a list of image files into one uint8 array ``(n, H, W)`` or ``(n, H, W, 3)``.

    Parameters are as in :func:`load_image_folder`; the files must have one size unless
    ``image_size`` is given.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skrnn._folders import read_images
    >>> path = Path(tempfile.mkdtemp()) / "a.png"
    >>> Image.fromarray(np.zeros((4, 6), np.uint8)).save(path)
    >>> read_images([path, path], image_size=3).shape
    (2, 3, 3)
    """
    Image = _pillow()
    mode = _check_color_mode(color_mode)
    size = _check_image_size(image_size)
    files = [Path(file) for file in files]
    if not files:
        raise ValueError("No image files were given.")
    images = [_read(file, mode, size, Image.Resampling.BILINEAR) for file in files]
    return _stack(images, files, "images")


def load_image_folder(
    path,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "grayscale",
    return_X_y: bool = False,
):
    """Load a classification data set stored as one sub-folder of images per class.

    The layout is ``path/<class_name>/<image>.png`` (also ``.jpg``, ``.jpeg``, ``.bmp``).
    Classes are the sub-folder names in sorted order; the target of an image is the index of
    its class.

    Parameters
    ----------
    path : str or path-like
        The root folder.
    image_size : int or tuple of int, default=None
        ``(height, width)`` to resize every image to (bilinear), or an int for square images.
        None keeps the files' size, which must then be the same for all.
    color_mode : {"grayscale", "rgb"}, default="grayscale"
        Grayscale gives ``(n, H, W)`` images, RGB gives ``(n, H, W, 3)``.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (and its alias ``images``): uint8 images; ``target``: int64 class indices;
        ``target_names``: the class folder names; ``filenames``: the path of every image.
        Or ``(data, target)`` with ``return_X_y=True``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skrnn.datasets import load_image_folder
    >>> root = Path(tempfile.mkdtemp())
    >>> for name, value in [("cats", 0), ("dogs", 255)]:
    ...     (root / name).mkdir()
    ...     for i in range(3):
    ...         Image.fromarray(np.full((8, 6), value, np.uint8)).save(root / name / f"{i}.png")
    >>> data = load_image_folder(root)
    >>> data.data.shape, data.target.tolist(), data.target_names.tolist()
    ((6, 8, 6), [0, 0, 0, 1, 1, 1], ['cats', 'dogs'])
    """
    Image = _pillow()
    mode = _check_color_mode(color_mode)
    size = _check_image_size(image_size)
    root = Path(path)
    if not root.is_dir():
        raise ValueError(
            f"{root} is not a folder; expected a folder with one sub-folder per class."
        )
    class_folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_folders:
        raise ValueError(
            f"{root} has no class sub-folders; expected the layout "
            f"{root}/<class_name>/<image>{IMAGE_SUFFIXES[0]}."
        )
    images, targets, filenames = [], [], []
    for label, folder in enumerate(class_folders):
        files = image_files(folder)
        if not files:
            raise ValueError(
                f"The class folder {folder} holds no images (files ending in "
                f"{', '.join(IMAGE_SUFFIXES)})."
            )
        for file in files:
            images.append(_read(file, mode, size, Image.Resampling.BILINEAR))
            targets.append(label)
            filenames.append(file)
    data = _stack(images, filenames, f"images in {root}")
    target = np.asarray(targets, dtype=np.int64)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=data,
        target=target,
        target_names=np.asarray([folder.name for folder in class_folders]),
        filenames=np.asarray([str(file) for file in filenames]),
        DESCR=f"Images of {len(class_folders)} classes read from the folder {root}.",
    )


def load_segmentation_folder(
    images_dir,
    masks_dir,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "grayscale",
    return_X_y: bool = False,
):
    """Load a segmentation data set: a folder of images and a folder of label masks.

    Each image is paired with the mask of the same file stem (``a.jpg`` with ``a.png``). A
    mask is an integer label image: each pixel's value (grey level or palette index) is its
    class label.

    Parameters
    ----------
    images_dir, masks_dir : str or path-like
        The folder of images and the folder of masks.
    image_size : int or tuple of int, default=None
        ``(height, width)`` to resize to: images bilinearly, masks with the nearest neighbour
        so that labels stay labels. None keeps the files' size, which must then be the same
        for all.
    color_mode : {"grayscale", "rgb"}, default="grayscale"
        How to read the images (the masks are always read as labels).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (and its alias ``images``): uint8 images ``(n, H, W)`` or ``(n, H, W, 3)``;
        ``target``: int64 masks ``(n, H, W)``; ``target_names``: the labels found in the
        masks; ``filenames`` and ``mask_filenames``. Or ``(data, target)`` with
        ``return_X_y=True``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skrnn.datasets import load_segmentation_folder
    >>> root = Path(tempfile.mkdtemp())
    >>> (root / "images").mkdir(); (root / "masks").mkdir()
    >>> mask = np.zeros((8, 8), np.uint8); mask[2:5, 2:5] = 1
    >>> for i in range(2):
    ...     Image.fromarray(mask * 200).save(root / "images" / f"{i}.png")
    ...     Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    >>> X, Y = load_segmentation_folder(root / "images", root / "masks", return_X_y=True)
    >>> X.shape, Y.shape, int(Y.sum())
    ((2, 8, 8), (2, 8, 8), 18)
    """
    Image = _pillow()
    mode = _check_color_mode(color_mode)
    size = _check_image_size(image_size)
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not folder.is_dir():
            raise ValueError(f"The {what} folder {folder} does not exist or is not a folder.")
    files = image_files(images_dir)
    if not files:
        raise ValueError(
            f"The images folder {images_dir} holds no images (files ending in "
            f"{', '.join(IMAGE_SUFFIXES)})."
        )
    masks_by_stem: dict[str, Path] = {}
    for mask_file in image_files(masks_dir):
        masks_by_stem.setdefault(mask_file.stem, mask_file)
    images, masks, mask_files = [], [], []
    for file in files:
        mask_file = masks_by_stem.get(file.stem)
        if mask_file is None:
            raise ValueError(
                f"The image {file} has no mask: expected a file named {file.stem}.png (or "
                f".jpg, .jpeg, .bmp) in {masks_dir}."
            )
        image = _read(file, mode, size, Image.Resampling.BILINEAR)
        mask = _read(mask_file, "labels", size, Image.Resampling.NEAREST)
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"The mask {mask_file} is {mask.shape[1]}x{mask.shape[0]} (width x height) but "
                f"its image {file} is {image.shape[1]}x{image.shape[0]}; pass image_size to "
                "resize both."
            )
        images.append(image)
        masks.append(mask)
        mask_files.append(mask_file)
    data = _stack(images, files, f"images in {images_dir}")
    target = np.stack(masks)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=data,
        target=target,
        target_names=np.unique(target),
        filenames=np.asarray([str(file) for file in files]),
        mask_filenames=np.asarray([str(file) for file in mask_files]),
        DESCR=f"Images from {images_dir} with label masks from {masks_dir}.",
    )
