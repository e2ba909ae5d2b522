"""Image data sets read from folders on disk: one folder per class, or images beside masks.

Pillow reads the files; it is imported only when a folder is loaded (``pip install
skrnn[images]``). The loaders are re-exported from :mod:`skrnn.datasets`.

Masks are where real files go wrong, so they get the most care here: JPEG smears each label
into nearby values (``mask_values`` / ``mask_threshold`` snap them back), colour-coded masks
need a ``palette``, and palette ("P" mode) PNGs keep their indices.

Folders from the wild hold more than clean images, and every file is read the same way:

- EXIF orientation is applied to images and masks alike, so a photo comes back as a viewer
  shows it and stays aligned with its mask.
- Bit depths: every file keeps its stored values, in a dtype that holds them (see
  ``DEPTHS_DOC``): 16-bit grey (12-bit data included) as uint16, 32-bit integers as int32,
  32-bit floats as float32, everything else as uint8. A folder of 8-bit and 16-bit files meets
  at 16 bits (8-bit values times 257); 32-bit files beside other depths are an error. Pillow
  itself keeps only the high byte of 16-bit colour files, which gives a warning.
- Photos: palette files give their palette's colours, 1-bit files 0 and 255, and alpha is
  dropped (each pixel keeps its stored colour, as torchvision's and Keras' loaders do).
- Colour spaces: CMYK files become sRGB through the ICC profile they embed (a print file's
  inks mean nothing without it), or by Pillow's plain inversion when they embed none; CIELAB
  TIFFs become sRGB (Pillow converts them through LittleCMS). RGB and grey files keep their stored
  values whatever profile they embed (Display P3, Adobe RGB), as torchvision's and Keras'
  loaders do, so training and prediction see the same numbers as every other reader.
- Masks: grey levels, 16- and 32-bit values (floats when they are whole numbers), palette
  indices and 1-bit values (0 and 1) are the labels as stored; an alpha channel is dropped.
  Lossy (JPEG, lossy WebP) masks give a warning, and where an image has a lossless and a lossy
  mask the lossless one is read.
- Sizes: without ``image_size`` the first image of another size is an error, before the files
  after it are decoded.
- Hidden files (``.DS_Store``, macOS's ``._photo.jpg``), macOS's ``__MACOSX`` folder and files
  that are not images by name (``Thumbs.db``, ``notes.txt``) are ignored.
- A file that cannot be read (empty, truncated, damaged, or larger than Pillow's
  decompression-bomb limit) is an error that names it and says why; ``skip_errors=True``
  leaves such files out instead, lists them in a :class:`SkippedFilesWarning` and, for the
  folder loaders, in the Bunch's ``skipped``.
"""

from __future__ import annotations

import functools
import io
import numbers
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.utils import Bunch

from ._docs import fill_doc
from ._validation import check_int_pair, is_int
from .exceptions import SkippedFilesWarning

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
COLOR_MODES = ("auto", "grayscale", "rgb")
# Pillow's names of the lossy formats among IMAGE_SUFFIXES (a camera's JPEG may read as MPO).
LOSSY_FORMATS = frozenset({"JPEG", "MPO"})
# Grey modes of more than 8 bits, whose values are kept as stored: 16-bit (and 12-bit) grey,
# 32-bit integers (and signed 16-bit TIFFs), 32-bit floats.
_WIDE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
# Folders that are never classes: macOS's copy of a zip's resource files (besides dot folders).
_IGNORED_FOLDERS = frozenset({"__MACOSX"})
# Modes whose pixel values are labels as they are: grey levels, or palette indices.
_LABEL_MODES = frozenset({"L", "LA", "P", "PA", "1"}) | _WIDE_MODES
_GREY_MODES = frozenset({"L", "LA", "1"}) | _WIDE_MODES
# Pillow's raw modes of 16 bits a channel that it decodes into 8-bit modes, by the high byte.
_HIGH_BYTE_RAWMODE = re.compile(r"^(?!I;)[A-Za-z]+;16[BLN]$")
# How far (in grey levels, or per colour channel) compression may move a pixel beyond the
# midpoint between two labels and still count as one of them.
_SNAP_SLACK = 24
# A value holding fewer pixels than this share is never taken for a label of its own by the
# smear detection, nor is one next to a value with ten times as many pixels.
_LABEL_SHARE = 0.005

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
        raise ValueError(f"color_mode must be one of {list(COLOR_MODES)}, got {color_mode!r}.")
    return color_mode


def _check_skip_errors(skip_errors) -> bool:
    if not isinstance(skip_errors, (bool, np.bool_)):
        raise ValueError(
            "skip_errors must be True (leave out the files that cannot be read, with a "
            f"warning) or False (stop at the first), got {skip_errors!r}."
        )
    return bool(skip_errors)


def _is_hidden(path: Path) -> bool:
    """Dot files (``.DS_Store``, macOS's ``._photo.jpg``) and macOS's ``__MACOSX`` folder."""
    return path.name.startswith(".") or path.name in _IGNORED_FOLDERS


def image_files(folder) -> list[Path]:
    """The image files directly in ``folder``, sorted by name.

    A file is an image by its suffix (one of ``IMAGE_SUFFIXES``, in any case). Hidden files are
    left out: ``.DS_Store``, and the ``._photo.jpg`` files that macOS writes beside each file
    on some drives, which end in ``.jpg`` but hold no image.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skrnn._folders import image_files
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ["b.JPG", "a.png", "._a.png", ".DS_Store", "notes.txt"]:
    ...     _ = (folder / name).write_bytes(b"")
    >>> [path.name for path in image_files(folder)]
    ['a.png', 'b.JPG']
    """
    folder = Path(folder)
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and not _is_hidden(path) and path.suffix.lower() in IMAGE_SUFFIXES
    )


class _BadFile(ValueError):
    """A file that cannot be loaded; ``skip_errors=True`` leaves it out, giving ``reason``."""

    def __init__(self, message: str, path: Path, reason: str):
        super().__init__(f"{message} Or pass skip_errors=True to leave it out and load the rest.")
        self.path, self.reason = path, reason


# Pillow's format of each suffix, for saying what a file should have held.
_FORMAT_NAMES = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
    ".tiff": "TIFF", ".webp": "WebP", ".gif": "GIF",
}  # fmt: skip


_WARNING_FILTERS_LOCK = threading.Lock()


class _MultiFrame(Exception):
    """A file of several images (an animated GIF or WebP, a multi-page TIFF)."""

    def __init__(self, frames: int):
        super().__init__(frames)
        self.frames = frames


class _UnusableProfile(Exception):
    """A CMYK file whose embedded profile cannot turn its colours into sRGB; says why."""


def _is_lossy(image) -> bool:
    """Whether the file's format may have smeared its values: JPEG, and WebP unless its
    bitstream is the lossless one."""
    if image.format == "WEBP":
        return not _webp_is_lossless(image)
    return image.format in LOSSY_FORMATS


def _webp_is_lossless(image) -> bool:
    """Whether a WebP file's image is a lossless ("VP8L") bitstream, by its RIFF chunks (an
    extended file may put an ICC profile or EXIF chunk before it)."""
    try:
        file = image.fp
        position = file.tell()
        file.seek(12)  # past "RIFF", the size and "WEBP"
        try:
            while len(header := file.read(8)) == 8:
                fourcc, size = header[:4], int.from_bytes(header[4:], "little")
                if fourcc in (b"VP8L", b"VP8 "):
                    return fourcc == b"VP8L"
                file.seek(size + size % 2, 1)
        finally:
            file.seek(position)
    except (AttributeError, OSError, ValueError):
        pass
    return False


def _why_unreadable(path: Path, error: Exception, Image) -> str:
    """Why Pillow could not read ``path``, and what to do, as one or two sentences."""
    if isinstance(error, _MultiFrame):
        return (
            f"it holds {error.frames} images (frames or pages), and each file must hold one. "
            "Save each frame as its own file (PIL: image.seek(i); image.save(...))."
        )
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = int(found[1]) if found else None
        return (
            f"it has {f'{pixels:,}' if pixels else 'more'} pixels, more than "
            f"PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS:,}, the limit Pillow sets "
            "against decompression bombs (small files that decode to gigabytes). If you trust "
            "the file, raise the limit before loading (PIL.Image.MAX_IMAGE_PIXELS = "
            f"{pixels or 'N'}, or None for no limit), or shrink the file."
        )
    if isinstance(error, _UnusableProfile):
        return f"its {error}."
    if isinstance(error, MemoryError):
        return "there is not enough memory to decode it; shrink the file or free memory."
    if isinstance(error, (FileNotFoundError, PermissionError)):
        return f"it cannot be opened ({error.strerror or error})."
    expected = f"a {_FORMAT_NAMES.get(path.suffix.lower(), 'image')} image, as its name says"
    try:
        empty = path.stat().st_size == 0
    except OSError:
        empty = False
    if empty:
        return f"the file is empty (0 bytes); expected {expected}. Replace or delete it."
    if isinstance(error, Image.UnidentifiedImageError):
        return (
            f"Pillow does not recognise its contents; expected {expected}. It is damaged or "
            "another kind of file: replace or delete it."
        )
    if "truncated" in str(error):
        return (
            "the file is truncated: it ends before its image data does (an interrupted "
            "download or copy?). Replace it with a complete copy, or delete it."
        )
    return (
        f"it is damaged or in a form Pillow cannot decode ({error}); expected {expected}. "
        "Replace or delete it."
    )


def _unreadable(path: Path, reason: str) -> _BadFile:
    return _BadFile(f"Cannot read the image file {path}: {reason}", path, reason)


def _open(path: Path):
    """``path`` opened by Pillow, not yet decoded; a decompression bomb is an error."""
    Image = _pillow()
    # From its pixel limit to twice it, Pillow only warns and then decodes the file; refuse
    # it there too, before decoding, instead of allocating gigabytes. The warning filters
    # are the process's own: the lock keeps loads in other threads from restoring them
    # (and so letting a file through, or leaving the error filter behind) in between.
    with _WARNING_FILTERS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _keeps_high_bytes(image) -> bool:
    """Whether Pillow decodes this (not yet decoded) file of 16 bits a channel into an 8-bit
    mode, keeping the high byte of each value: 16-bit colour, and 16-bit grey with alpha."""
    if image.mode in _WIDE_MODES:
        return False
    for tile in image.tile:
        args = tile[3]  # a tuple whose first item is the raw mode, or the raw mode itself
        rawmode = args[0] if isinstance(args, tuple) else args
        if isinstance(rawmode, str) and _HIGH_BYTE_RAWMODE.match(rawmode):
            return True
    bits = getattr(image, "tag_v2", {}).get(258)  # a TIFF's BitsPerSample
    return isinstance(bits, tuple) and max(bits, default=8) > 8


class _Decoded(NamedTuple):
    """A file's pixels, and what its format did to them."""

    pixels: np.ndarray
    lossy: bool  # JPEG or lossy WebP: the values may have moved
    high_bytes: bool  # 16 bits a channel, of which Pillow keeps the high byte


def _read_file(path: Path, size, resample, prepare) -> _Decoded:
    """One file as an array, upright, after ``prepare(image)`` picks its mode, at ``size``
    (``(height, width)``, or ``(height, None)`` to keep the file's aspect ratio).

    Any failure is a ``_BadFile`` that says why.
    """
    Image = _pillow()
    from PIL import ImageOps

    try:
        image = _open(path)
        with image:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                raise _MultiFrame(frames)
            lossy = _is_lossy(image)  # before decoding, which may close the file
            high_bytes = _keeps_high_bytes(image)  # before decoding, which drops the tiles
            image.load()
            # Cameras store the sensor's rows and an EXIF tag that says how to turn them; a
            # mask drawn over the photo as shown must meet the photo as shown.
            ImageOps.exif_transpose(image, in_place=True)
            image = prepare(image)
            if size is not None:
                height, width = size  # width None: the file's aspect ratio at that height
                if width is None:
                    width = max(1, round(image.width * height / image.height))
                if image.size != (width, height):
                    image = image.resize((width, height), resample=resample)
            pixels = np.asarray(image)
    except Exception as error:  # any failure to decode is about this file: name it
        raise _unreadable(path, _why_unreadable(path, error, Image)) from error
    # A big-endian 16-bit file ("I;16B") comes as ">u2": the same values, in native order.
    return _Decoded(pixels.astype(pixels.dtype.newbyteorder("="), copy=False), lossy, high_bytes)


def _is_colour(image) -> bool:
    """Whether a file stores colour: RGB and the like, or a palette with a non-grey colour."""
    if image.mode in _GREY_MODES:
        return False
    if image.mode in ("P", "PA"):
        colours = np.asarray(image.getpalette() or [], dtype=np.int64).reshape(-1, 3)
        return bool((colours != colours[:, :1]).any())
    return True


@functools.lru_cache(maxsize=8)
def _srgb_transform(profile: bytes):
    """A LittleCMS transform from CMYK pixels under ``profile`` (the ICC bytes a file embeds)
    to sRGB.

    It converts as Photoshop does by default: relative colorimetric (the colours the profile
    measured, its paper white made white) with black-point compensation. It has no one-pixel
    cache, so threads may share it, and precomputes finely (LittleCMS's coarse default is
    10 levels off in dark saturated colours). Building one costs about as much as applying it
    to a megapixel, and a folder's files mostly share one profile, so the last few are kept.
    """
    from PIL import ImageCms

    flags = ImageCms.Flags
    return ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        "CMYK",
        "RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        flags=flags.NOCACHE | flags.HIGHRESPRECALC | flags.BLACKPOINTCOMPENSATION,
    )


def _in_srgb(image):
    """A CMYK image that embeds an ICC profile as sRGB, through that profile; any other image
    as it is (a CMYK file without a profile gets Pillow's plain inversion, all that is known
    of its inks, and CIELAB Pillow's own conversion through LittleCMS's Lab profile)."""
    profile = image.info.get("icc_profile")
    if image.mode != "CMYK" or not profile:
        return image
    try:
        from PIL import ImageCms
    except ImportError as error:  # pragma: no cover - Pillow's wheels include LittleCMS
        raise _UnusableProfile(
            "CMYK colours need Pillow's ImageCms (LittleCMS) to go through its embedded ICC "
            "colour profile, and this Pillow was built without it; install Pillow's wheel "
            "from PyPI (`pip install pillow`)"
        ) from error
    try:
        return ImageCms.applyTransform(image, _srgb_transform(profile))
    except (ImageCms.PyCMSError, OSError, ValueError) as error:
        raise _UnusableProfile(
            f"embedded ICC colour profile cannot turn its CMYK colours into RGB ({error}); "
            "save the file again with a valid profile, or as RGB"
        ) from error


def read_image(path: Path, color_mode: str, size) -> _Decoded:
    """One image ``(H, W)`` or ``(H, W, 3)`` in the dtype of its depth (``DEPTHS_DOC``);
    ``"auto"`` follows the file.

    Alpha is dropped (Pillow's conversion keeps each pixel's stored colour), palettes give
    their colours, CMYK and CIELAB become sRGB (:func:`_in_srgb`), and grey files of more than
    8 bits keep their values (with ``"rgb"``, repeated over three channels).
    """

    def prepare(image):
        if image.mode in _WIDE_MODES:
            return image  # Pillow's conversions would clip its values to 0-255
        image = _in_srgb(image)
        if color_mode == "auto":
            return image.convert("RGB" if _is_colour(image) else "L")
        return image.convert("RGB" if color_mode == "rgb" else "L")

    decoded = _read_file(path, size, _pillow().Resampling.BILINEAR, prepare)
    if color_mode == "rgb" and decoded.pixels.ndim == 2:
        return decoded._replace(pixels=_as_rgb(decoded.pixels))
    return decoded


def _as_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=-1)


DEPTHS_DOC = """Each file keeps its stored values, in a dtype that holds them: 8-bit files (and
        1-bit, palette, colour and CMYK ones) give uint8, 16-bit grey files (12-bit data
        included) uint16, 32-bit integer files int32 and 32-bit float files float32. 8-bit
        and 16-bit files together give uint16, the 8-bit values times 257 (255 becomes 65535),
        with a warning; a 32-bit file beside files of another depth is an error."""

# The depth of each dtype that images are read in, for messages.
_DEPTH_NAMES = {
    np.dtype(np.uint8): "8-bit",
    np.dtype(np.uint16): "16-bit",
    np.dtype(np.int32): "32-bit integer",
    np.dtype(np.float32): "32-bit float",
}
# Depths that meet at the wider by a fixed rule: the full ranges of 8 and 16 bits.
_SCALED_DEPTHS = frozenset({np.dtype(np.uint8), np.dtype(np.uint16)})


def _depth(dtype) -> str:
    return _DEPTH_NAMES.get(np.dtype(dtype), str(dtype))


def _and_more(files: list[Path]) -> str:
    return f"{files[0]}" + (f" and {len(files) - 1} more" if len(files) > 1 else "")


# The dtype Pillow decodes a file of each wide mode into; every other mode gives uint8.
_MODE_DTYPES = {
    "I": np.dtype(np.int32),
    "F": np.dtype(np.float32),
    **{mode: np.dtype(np.uint16) for mode in ("I;16", "I;16L", "I;16B", "I;16N")},
}


def common_depth(files) -> np.dtype | None:
    """The dtype that :func:`read_images` gives ``files`` read together, from their headers
    alone (nothing is decoded); None where none of them can be opened.

    A reader of a long list a chunk at a time gives every chunk this depth
    (:func:`to_depth`), so an 8-bit file is read on the same scale whether or not a 16-bit
    file shares its chunk.

    Raises
    ------
    ValueError
        If the files mix depths that cannot meet (a 32-bit file beside another depth).
    """
    firsts: dict[np.dtype, Path] = {}  # each depth, and the first file of it
    for file in map(Path, files):
        try:
            with _open(file) as image:
                dtype = _MODE_DTYPES.get(image.mode, np.dtype(np.uint8))
        except Exception:  # an unreadable file is reported (or skipped) when it is read
            continue
        if dtype not in firsts:
            firsts[dtype] = file
            if len(firsts) > 1 and not set(firsts) <= _SCALED_DEPTHS:
                first_dtype, first_file = next(iter(firsts.items()))
                raise _depth_clash("images", file, dtype, first_file, first_dtype)
    return max(firsts, key=lambda dtype: dtype.itemsize, default=None)


def to_depth(images: np.ndarray, dtype: np.dtype | None) -> np.ndarray:
    """``images`` of :func:`read_images` at the ``dtype`` of :func:`common_depth`: 8-bit
    values times 257 for uint16 (the rule of :class:`ImageSet`), the rest as they are."""
    if dtype == np.uint16 and images.dtype == np.uint8:
        return images.astype(np.uint16) * np.uint16(257)
    return images


def _depth_clash(what: str, file: Path, dtype, first_file: Path, first_dtype) -> ValueError:
    return ValueError(
        f"The {what} mix bit depths that have no common scale: {file} is {_depth(dtype)} but "
        f"{first_file} is {_depth(first_dtype)}. 8-bit and 16-bit files are read together (the "
        "8-bit values times 257), but 32-bit files (integer or float) have no fixed range to "
        "meet other depths at. Save them all at one depth."
    )


class ImageSet:
    """Images read one at a time into one set, each checked against the first as it comes.

    An image of another size than the first (with ``same_size``), or of a depth that cannot
    meet the first's, is an error at once, so a folder of mixed sizes fails at the first file
    that differs, before the files after it are decoded.

    Parameters
    ----------
    what : str
        What the images are, for messages ("images in photos/").
    same_size : bool, default=True
        Whether every image must have the first's height and width.
    """

    def __init__(self, what: str, same_size: bool = True):
        self.what, self.same_size = what, same_size
        self.images: list[np.ndarray] = []
        self.files: list[Path] = []
        self._high_bytes: list[Path] = []

    def check(self, image: np.ndarray, file: Path) -> None:
        """Raise if ``image`` (of ``file``) cannot join the images added so far."""
        if not self.images:
            return
        first, first_file = self.images[0], self.files[0]
        if self.same_size and image.shape[:2] != first.shape[:2]:
            raise ValueError(
                f"The {self.what} have different sizes: {file} is {image.shape[1]}x"
                f"{image.shape[0]} (width x height), expected {first.shape[1]}x{first.shape[0]}, "
                f"the size of {first_file} (the first image). Pass image_size=(height, width) "
                "to resize them all."
            )
        depths = {first.dtype, image.dtype}
        if len(depths) > 1 and not depths <= _SCALED_DEPTHS:
            raise _depth_clash(self.what, file, image.dtype, first_file, first.dtype)

    def add(self, decoded: _Decoded, file: Path) -> None:
        """Add a file's image after :meth:`check`."""
        self.check(decoded.pixels, file)
        self.images.append(decoded.pixels)
        self.files.append(file)
        if decoded.high_bytes:
            self._high_bytes.append(file)

    def at_one_depth(self, stacklevel: int = 3) -> list[np.ndarray]:
        """The images at one dtype: 8-bit ones scaled to 16 bits beside 16-bit ones.

        Warns about that scaling, and about files of which Pillow kept the high bytes.
        """
        if self._high_bytes:
            warnings.warn(
                f"{_and_more(self._high_bytes)} of the {self.what} store 16 bits a channel, "
                "of which Pillow keeps only the high byte (65535 becomes 255): it reads "
                "16-bit colour, and 16-bit grey with alpha, as 8 bits. To keep every bit, save "
                "grey images as 16-bit grey without alpha, or read the files with another "
                "library (tifffile, imageio) and pass the arrays.",
                UserWarning,
                stacklevel=stacklevel,
            )
        if len({image.dtype for image in self.images}) < 2:
            return self.images
        eight, sixteen = (
            [file for file, image in zip(self.files, self.images, strict=True) if image.dtype == t]
            for t in (np.uint8, np.uint16)
        )
        warnings.warn(
            f"The {self.what} mix 8-bit files ({_and_more(eight)}) with 16-bit files "
            f"({_and_more(sixteen)}): the 8-bit values are scaled to 16 bits, times 257 (255 "
            "becomes 65535, as PNG scales samples). If the 16-bit files hold fewer bits "
            "(12-bit data, 0 to 4095), the two scales do not match: save them all at one "
            "depth.",
            UserWarning,
            stacklevel=stacklevel,
        )
        return [
            image.astype(np.uint16) * np.uint16(257) if image.dtype == np.uint8 else image
            for image in self.images
        ]

    def stacked(self) -> np.ndarray:
        """One array of the images; grey ones join colour ones repeated over three channels."""
        images = self.at_one_depth(stacklevel=4)
        if any(image.ndim == 3 for image in images):
            images = [_as_rgb(image) if image.ndim == 2 else image for image in images]
        return np.stack(images)


# At most this many skipped files are written out in the warning; the rest are counted.
_LISTED_SKIPS = 5


class _Skipped(dict):
    """The files left out by ``skip_errors=True``, each mapped to the reason.

    ``add`` raises the error instead when ``skip_errors`` is False, so every loader handles a
    bad file in one line.
    """

    def __init__(self, skip_errors: bool):
        super().__init__()
        self.skip_errors = skip_errors

    def add(self, error: _BadFile) -> None:
        if not self.skip_errors:
            raise error
        self[str(error.path)] = error.reason

    def _count(self) -> str:
        folders = sum(Path(name).is_dir() for name in self)
        counts = [(len(self) - folders, "file"), (folders, "folder")]
        return " and ".join(f"{n} {noun}{'s' * (n > 1)}" for n, noun in counts if n)

    def report(self, n_loaded: int, where, listed_in: str) -> None:
        """Warn about the files left out; with no image loaded at all, raise instead."""
        if not self:
            return
        if n_loaded == 0:
            name, reason = next(iter(self.items()))
            raise ValueError(
                f"No image in {where} could be loaded; skip_errors=True left out all "
                f"{self._count()}. The first, {name}: {reason}"
            )
        lines = [f"{name}: {reason}" for name, reason in list(self.items())[:_LISTED_SKIPS]]
        if len(self) > _LISTED_SKIPS:
            lines.append(f"... and {len(self) - _LISTED_SKIPS} more")
        warnings.warn(
            SkippedFilesWarning(
                f"skip_errors=True left out {self._count()} that could not be loaded from "
                f"{where} ({n_loaded} image{'s' * (n_loaded != 1)} loaded); {listed_in} maps "
                "each to its reason:\n  " + "\n  ".join(lines),
                self,
            ),
            stacklevel=3,
        )


SKIP_ERRORS_DOC = """skip_errors : bool, default=False
        What to do with a file that cannot be read (empty, truncated, damaged, or past
        Pillow's decompression-bomb limit). False stops with an error that names it and says
        why. True leaves it out, loads the rest, and issues one
        :class:`~skrnn.exceptions.SkippedFilesWarning` that lists the files left out; the
        warning's ``skipped`` attribute maps each to its reason."""


def _read_each(files, color_mode, size, skipped, images: ImageSet) -> int:
    """Add the images of ``files`` that can be read to ``images`` and say how many; the others
    go to ``skipped`` (which raises at once unless ``skip_errors``)."""
    before = len(images.images)
    for file in files:
        try:
            decoded = read_image(file, color_mode, size)
        except _BadFile as error:
            skipped.add(error)
        else:
            images.add(decoded, file)
    return len(images.images) - before


@fill_doc(skip_errors=SKIP_ERRORS_DOC, depths=DEPTHS_DOC)
def read_images(
    files,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "auto",
    skip_errors: bool = False,
) -> np.ndarray:
    """Read a list of image files into one array ``(n, H, W)`` or ``(n, H, W, 3)``.

    ``image_size`` and ``color_mode`` are as in :func:`load_image_folder`; the files must have
    one size unless ``image_size`` is given.

    Parameters
    ----------
    files : list of str or path-like
        The image files, read in this order.
    image_size : int or tuple of int, default=None
        ``(height, width)`` to resize to, or None to keep the files' one size.
    color_mode : {"auto", "grayscale", "rgb"}, default="auto"
        As in :func:`load_image_folder`.
    {skip_errors}
        The array then has one image per file read, in order, without the files left out.

    Returns
    -------
    images : ndarray
        {depths}

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
    color_mode = _check_color_mode(color_mode)
    size = _check_image_size(image_size)
    skip_errors = _check_skip_errors(skip_errors)
    files = [Path(file) for file in files]
    if not files:
        raise ValueError("No image files were given.")
    skipped = _Skipped(skip_errors)
    images = ImageSet("images")
    _read_each(files, color_mode, size, skipped, images)
    skipped.report(len(images.images), "the files given", "the warning's `skipped`")
    return images.stacked()


COLOR_MODE_DOC = """color_mode : {"auto", "grayscale", "rgb"}, default="auto"
        "auto" keeps each file as it is stored: grey files give ``(n, H, W)`` images, and as
        soon as one file is in colour (RGB, RGBA, or a palette with colours) all give
        ``(n, H, W, 3)``, the grey ones repeated over the three channels, so that no colour
        is lost. "grayscale" converts colour to luminance, ``(n, H, W)``; "rgb" always gives
        ``(n, H, W, 3)``. Whatever the mode, EXIF orientation is applied, alpha is dropped,
        CMYK becomes sRGB through the ICC profile the file embeds (or Pillow's plain
        inversion without one), CIELAB becomes sRGB, and grey files of more than 8 bits keep
        their values (the bit depths are under Returns)."""


def _empty_class_error(folder: Path, root: Path) -> _BadFile:
    """The class folder ``folder`` holds no images: say what it holds instead."""
    entries = sorted(folder.iterdir())
    others = [p.name for p in entries if not p.is_dir()]
    folders = [p.name for p in entries if p.is_dir() and not _is_hidden(p)]
    found = []
    if others:
        found.append(
            f"the files in it ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}) "
            "are hidden or not images, and are ignored"
        )
    if folders:
        found.append(
            f"images in its sub-folders ({', '.join(folders[:3])}"
            f"{', ...' if len(folders) > 3 else ''}) are not read: the layout is "
            f"{root}/<class_name>/<image>"
        )
    details = f"; {'; '.join(found)}" if found else ""
    return _BadFile(
        f"The class folder {folder} holds no images (files ending in "
        f"{', '.join(IMAGE_SUFFIXES)}){details}. Put its images in it, or remove it.",
        folder,
        f"the class folder holds no images{details}; the class is left out",
    )


@fill_doc(color_mode=COLOR_MODE_DOC, skip_errors=SKIP_ERRORS_DOC, depths=DEPTHS_DOC)
def load_image_folder(
    path,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "auto",
    skip_errors: bool = False,
    return_X_y: bool = False,
):
    """Load a classification data set stored as one sub-folder of images per class.

    The layout is ``path/<class_name>/<image>.png`` (also ``.jpg``, ``.jpeg``, ``.bmp``,
    ``.tif``, ``.tiff``, ``.webp`` and ``.gif``; a file of several frames or pages is refused).
    Classes are the sub-folder names in sorted order; the target of an image is the index of
    its class. Hidden files and folders (``.DS_Store``, ``._photo.jpg``, ``__MACOSX``) and
    files that are not images by name are ignored; a class folder with no images is an error.
    Without ``image_size``, the first image of another size than the first is an error.

    Parameters
    ----------
    path : str or path-like
        The root folder.
    image_size : int or tuple of int, default=None
        ``(height, width)`` to resize every image to (bilinear), or an int for square images.
        None keeps the files' size, which must then be the same for all.
    {color_mode}
    {skip_errors}
        A class folder with no image (or none that could be read) is then left out of the
        classes too, and the Bunch's ``skipped`` holds the same mapping as the warning.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (and its alias ``images``): the images; ``target``: int64 class indices;
        ``target_names``: the class folder names; ``filenames``: the path of every image;
        ``skipped``: a dict from each file or class folder left out by ``skip_errors=True``
        to the reason (empty otherwise). Or ``(data, target)`` with ``return_X_y=True``.
        {depths}

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
    color_mode = _check_color_mode(color_mode)
    size = _check_image_size(image_size)
    skip_errors = _check_skip_errors(skip_errors)
    root = Path(path)
    if not root.is_dir():
        raise ValueError(
            f"{root} is not a folder; expected a folder with one sub-folder per class."
        )
    class_folders = sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p))
    if not class_folders:
        raise ValueError(
            f"{root} has no class sub-folders; expected the layout "
            f"{root}/<class_name>/<image>{IMAGE_SUFFIXES[0]}."
        )
    class_names, targets = [], []
    images = ImageSet(f"images in {root}")
    skipped = _Skipped(skip_errors)
    for folder in class_folders:
        files = image_files(folder)
        if not files:
            skipped.add(_empty_class_error(folder, root))
            continue
        label = len(class_names)  # a class left out leaves no gap in the labels
        n_read = _read_each(files, color_mode, size, skipped, images)
        targets += [label] * n_read
        if n_read:
            class_names.append(folder.name)
        else:
            skipped[str(folder)] = "none of its images could be read; the class is left out"
    skipped.report(len(images.images), root, "the Bunch's `skipped`")
    data = images.stacked()
    target = np.asarray(targets, dtype=np.int64)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=data,
        target=target,
        target_names=np.asarray(class_names),
        filenames=np.asarray([str(file) for file in images.files]),
        skipped=dict(skipped),
        DESCR=f"Images of {len(class_names)} classes read from the folder {root}.",
    )


# --------------------------------------------------------------------------- mask options
def _check_mask_options(mask_values, mask_threshold, palette):
    """Validate the three ways of reading masks; return ``(values, threshold, palette)``.

    ``values`` is a sorted int64 array, ``palette`` a pair of arrays ``(colours (K, 3),
    labels (K,))``.
    """
    given = [
        name
        for name, value in (
            ("mask_values", mask_values),
            ("mask_threshold", mask_threshold),
            ("palette", palette),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(
            "Pass at most one of mask_values, mask_threshold and palette; got "
            f"{' and '.join(given)}."
        )
    values = threshold = colours = None
    if mask_values is not None:
        if (
            isinstance(mask_values, (str, bytes, Mapping))
            or not isinstance(mask_values, (Sequence, np.ndarray))
            or not all(is_int(v) for v in np.asarray(mask_values, dtype=object).ravel())
            or len(set(np.asarray(mask_values).ravel().tolist())) < 2
        ):
            raise ValueError(
                "mask_values must be a list of at least two different integers, the label "
                f"values the masks hold (e.g. mask_values=[0, 255]); got {mask_values!r}."
            )
        values = np.unique(np.asarray(mask_values, dtype=np.int64))
    if mask_threshold is not None:
        if not isinstance(mask_threshold, numbers.Real) or isinstance(mask_threshold, bool):
            raise ValueError(
                "mask_threshold must be a number: pixels above it become label 1, the others "
                f"label 0 (e.g. mask_threshold=127); got {mask_threshold!r}."
            )
        threshold = float(mask_threshold)
    if palette is not None:
        colours = _check_palette(palette)
    return values, threshold, colours


def _check_palette(palette) -> tuple[np.ndarray, np.ndarray]:
    """``(colours (K, 3), labels (K,))`` from a dict colour -> label or a list of colours."""
    if isinstance(palette, Mapping):
        colours, labels = list(palette.keys()), list(palette.values())
    elif isinstance(palette, (Sequence, np.ndarray)) and not isinstance(palette, (str, bytes)):
        colours, labels = list(palette), list(range(len(palette)))
    else:
        colours, labels = None, None
    usage = (
        "palette must be a list of (R, G, B) colours, the colour of label 0, 1, 2, ... "
        "(e.g. palette=[(0, 0, 0), (128, 0, 0)]), or a dict {(R, G, B): label}"
    )
    if not colours:
        raise ValueError(f"{usage}; got {palette!r}.")
    for colour in colours:
        if (
            not isinstance(colour, (tuple, list, np.ndarray))
            or len(colour) != 3
            or not all(is_int(c) and 0 <= c <= 255 for c in np.asarray(colour, dtype=object))
        ):
            raise ValueError(f"{usage}; {colour!r} is not three integers from 0 to 255.")
    if not all(is_int(label) for label in labels):
        raise ValueError(f"{usage}; the labels must be integers, got {labels!r}.")
    colours = np.asarray(colours, dtype=np.int64)
    unique, counts = np.unique(colours, axis=0, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"palette lists the colour {tuple(unique[counts > 1][0].tolist())} twice.")
    return colours, np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------- reading masks
def _read_mask(path: Path, size, want_colour: bool) -> tuple[np.ndarray, bool]:
    """One mask as grey labels ``(H, W)`` or colours ``(H, W, 3)``, and whether it is lossy.

    Grey files of any depth and palette ("P") files keep their values: a palette index is a
    label, and converting it to grey would give the luminance of its colour instead; a 1-bit
    file gives 0 and 1; a 32-bit float file must hold whole numbers. Alpha is dropped. Colour
    files whose pixels are all grey become grey. ``want_colour`` reads every file as RGB (for
    a ``palette``): a grey file of more than 8 bits gives the grey colours of its values,
    which must then be 0 to 255.
    """

    def prepare(image):
        if image.mode in (_WIDE_MODES if want_colour else _LABEL_MODES):
            return image
        return image.convert("RGB")

    array, lossy, high_bytes = _read_file(path, size, _pillow().Resampling.NEAREST, prepare)
    depth = _depth(array.dtype)
    if high_bytes and not want_colour:
        raise _unreadable(
            path,
            "it stores 16 bits a channel (colour, or grey with alpha), of which Pillow keeps "
            "only the high byte, so its labels would be lost (1 to 255 all read as 0). Save "
            "it as grey without alpha, 8-bit or 16-bit.",
        )
    if array.dtype.kind == "f":
        labels = np.isfinite(array) & (np.rint(array) == array) & (np.abs(array) < 2**31)
        if not labels.all():
            raise _unreadable(
                path,
                "it holds 32-bit float values that are not whole numbers, as labels are, "
                f"e.g. {array[~labels][0]:g} (in {(~labels).mean():.1%} of its pixels); a "
                "mask's values are its labels. Save the labels as integers (an 8- or 16-bit "
                "grey PNG).",
            )
        array = array.astype(np.int64)
    if want_colour and array.ndim == 2:  # a grey file of more than 8 bits
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise _unreadable(
                path,
                f"it is a {depth} grey file with values from {low} to {high}, "
                "which are no colours: palette= maps colours of 0 to 255 a channel to labels. "
                "Save it as an 8-bit file, or leave out palette= if its values are the labels.",
            )
        array = _as_rgb(array.astype(np.uint8))
    if array.ndim == 3 and array.shape[2] == 2:  # "LA" / "PA": drop the alpha channel
        array = array[..., 0]
    if array.ndim == 3 and not want_colour:
        spread = array.max(axis=2).astype(np.int64) - array.min(axis=2)
        if spread.max() <= (_SNAP_SLACK if lossy else 0):
            array = np.rint(array.mean(axis=2)).astype(np.uint8)
    return array, lossy


def _main_colours(colours: np.ndarray, counts: np.ndarray, lossy: bool, limit: int) -> str:
    """The commonest of ``colours`` as text.

    In lossy files near colours are one colour smeared: each cluster is named by its commonest
    colour, and clusters of a few stray pixels are left out.
    """
    centres: list[np.ndarray] = []
    sizes: list[int] = []
    for i in np.argsort(-counts, kind="stable"):
        near = [k for k, c in enumerate(centres) if np.abs(colours[i] - c).max() <= 2 * _SNAP_SLACK]
        if lossy and near:
            sizes[near[0]] += int(counts[i])
        else:
            centres.append(colours[i])
            sizes.append(int(counts[i]))
    if lossy:
        centres = [c for c, n in zip(centres, sizes, strict=True) if n >= 0.02 * counts.sum()]
    text = ", ".join(str(tuple(int(c) for c in colour)) for colour in centres[:limit])
    return text + (", ..." if len(centres) > limit else "")


def _colour_codes(masks: np.ndarray) -> np.ndarray:
    """``(..., 3)`` uint8 colours as one int each, ``R * 65536 + G * 256 + B``."""
    masks = masks.astype(np.int64)
    return (masks[..., 0] << 16) | (masks[..., 1] << 8) | masks[..., 2]


def _colours_of(codes: np.ndarray) -> np.ndarray:
    return np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1)


def _value_counts(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of integer ``masks`` and how many pixels hold each."""
    if masks.size and masks.min() >= 0 and masks.max() < 2**16:
        counts = np.bincount(masks.ravel())  # much faster than sorting millions of pixels
        values = np.flatnonzero(counts)
        return values, counts[values]
    return np.unique(masks, return_counts=True)


def _nearest(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest centre of each point (Chebyshev distance), and whether it is near enough.

    A point is near enough when it lies no further than ``_SNAP_SLACK`` beyond the midpoint
    between its two nearest centres: anything between two labels is one of them, and only
    values well outside the labels' range (or colours far from all of them) are unknown.
    """
    distance = np.abs(points[:, None, :] - centres[None, :, :]).max(axis=2)
    order = np.argsort(distance, axis=1, kind="stable")
    nearest = order[:, 0]
    d1 = distance[np.arange(len(points)), nearest]
    if len(centres) == 1:
        return nearest, d1 <= _SNAP_SLACK
    second = order[:, 1]
    gap = np.abs(centres[nearest] - centres[second]).max(axis=1)
    return nearest, d1 <= gap / 2 + _SNAP_SLACK


def _label_peaks(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, float]:
    """The values that look like labels, and the share of the pixels at or near them.

    Compression smears each label into the values next to it, each holding a small share of
    the pixels. So the common values are grouped around the commonest: those within 1/16 of
    the span of the common values (0 and 1 are one label in a 0/255 mask, two in a 0-11 one),
    and those next to a value with ten times as many pixels are dropped. A group is named by
    0 or 255 when it holds one (masks are drawn at the ends of the 8-bit range), else by its
    commonest value.
    """
    total = counts.sum()
    common = np.flatnonzero(counts >= _LABEL_SHARE * total)
    if len(common) == 0:
        common = np.asarray([np.argmax(counts)])
    common = common[np.argsort(-counts[common], kind="stable")]
    radius = (values[common].max() - values[common].min()) // 16
    groups: list[list[int]] = []
    for i in common:
        home = next((g for g in groups if abs(values[g[0]] - values[i]) <= radius), None)
        if home is not None:
            home.append(i)
        elif counts[np.abs(values - values[i]) <= 64].max() <= 10 * counts[i]:
            groups.append([i])
    peaks, near = [], np.zeros(len(values), dtype=bool)
    for group in groups:
        members = values[group].tolist()
        peaks.append(next((end for end in (0, 255) if end in members), members[0]))
        near |= np.abs(values - values[group[0]]) <= radius
    return np.sort(np.asarray(peaks, dtype=np.int64)), counts[near].sum() / total


def _snap_advice(peaks: np.ndarray) -> str:
    """What to pass when the masks' labels seem to be ``peaks``."""
    values = [int(v) for v in peaks]
    if len(values) < 2:
        return (
            "Pass mask_values=[...] with the label values the masks hold (every pixel takes the "
            "nearest), or mask_threshold=T for a binary mask (pixels above T become label 1)"
        )
    advice = (
        f"If the labels are {values}, pass mask_values={values} (every pixel takes the nearest)"
    )
    if len(values) == 2:
        threshold = (values[0] + values[1]) // 2
        advice += (
            f" or mask_threshold={threshold} (pixels above {threshold} become label 1, the "
            "others 0)"
        )
    return advice


def _one_of(values: list[int]) -> str:
    return f"one of {values}" if len(values) > 1 else str(values[0])


def _check_smeared(values, counts, lossy_files, masks_dir) -> None:
    """Refuse lossy masks whose labels were smeared, warn about the other lossy masks, and
    warn when lossless ones look smeared."""
    peaks, on_peaks = _label_peaks(values, counts)
    listed = [int(v) for v in peaks]
    more = f" and {len(lossy_files) - 1} more" if len(lossy_files) > 1 else ""
    if lossy_files and len(values) > len(peaks):
        raise ValueError(
            f"The masks in {masks_dir} are JPEG files ({lossy_files[0].name}{more}), and "
            f"JPEG's lossy compression has smeared their labels: they hold {len(values)} "
            f"distinct values, each of which would become a class, though {on_peaks:.0%} of "
            f"the pixels are at or near {_one_of(listed)}. {_snap_advice(peaks)}; better, save "
            "the masks as PNG, which is lossless."
        )
    if lossy_files:
        # Compression moves a label drawn at an end of the 8-bit range a little inwards.
        drawn = np.where(peaks <= _SNAP_SLACK, 0, np.where(peaks >= 255 - _SNAP_SLACK, 255, peaks))
        warnings.warn(
            f"The masks {lossy_files[0].name}{more} in {masks_dir} are lossy (JPEG or lossy "
            f"WebP), whose compression moves pixel values: the labels found, {listed}, may "
            f"not be the values drawn. {_snap_advice(np.unique(drawn))}; better, save the "
            "masks as PNG, which is lossless.",
            UserWarning,
            stacklevel=3,
        )
        return
    if len(values) >= 16 and len(values) > 3 * len(peaks) and on_peaks >= 0.75:
        warnings.warn(
            f"The masks in {masks_dir} hold {len(values)} distinct values, but {on_peaks:.0%} "
            f"of the pixels are at or near {_one_of(listed)}: the other values look like "
            "compression or resizing artefacts, and each would become a class. "
            f"{_snap_advice(peaks)}.",
            UserWarning,
            stacklevel=3,
        )


def _snap_to_values(masks, mask_values, mask_files) -> np.ndarray:
    """Each pixel of the grey ``masks`` as the nearest of ``mask_values``."""
    masks = masks.astype(np.int64)
    values, counts = _value_counts(masks)
    nearest, known = _nearest(values[:, None], mask_values[:, None])
    if not known.all():
        unknown = values[~known][np.argsort(-counts[~known], kind="stable")]
        where = mask_files[int(np.flatnonzero(np.isin(masks, unknown).any(axis=(1, 2)))[0])]
        found = ", ".join(str(int(v)) for v in unknown[:8]) + (", ..." if len(unknown) > 8 else "")
        raise ValueError(
            f"The masks hold values far from all of mask_values={mask_values.tolist()}: {found} "
            f"({counts[~known].sum() / counts.sum():.1%} of the pixels; {where} has some). "
            f"List every label value the masks hold; the values found range from "
            f"{int(values[0])} to {int(values[-1])}."
        )
    snapped = mask_values[nearest]
    if values[0] >= 0 and values[-1] < 2**16:
        lookup = np.zeros(values[-1] + 1, dtype=np.int64)
        lookup[values] = snapped
        return lookup[masks]
    return snapped[np.searchsorted(values, masks)]


def _apply_palette(masks, colours, labels, lossy, mask_files) -> np.ndarray:
    """Map ``(n, H, W, 3)`` colours to labels; lossy files take the nearest colour."""
    codes, inverse, counts = np.unique(
        _colour_codes(masks), return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(masks.shape[:3])
    points = _colours_of(codes)
    exact = {int(code): i for i, code in enumerate(_colour_codes(colours))}
    index = np.asarray([exact.get(int(code), -1) for code in codes], dtype=np.int64)
    known = index >= 0
    pixels_lossy = np.asarray(lossy)[:, None, None]
    if not known.all() and np.any(lossy):
        # Lossy files smear colours too: their unknown colours take the nearest palette one.
        nearest, near = _nearest(points[~known], colours)
        index[~known] = np.where(near, nearest, -1)
    mapped = index[inverse]
    unknown_pixels = (mapped < 0) | ((~pixels_lossy) & ~known[inverse])
    if unknown_pixels.any():
        first = int(np.flatnonzero(unknown_pixels.any(axis=(1, 2)))[0])
        in_first, in_counts = np.unique(inverse[first][unknown_pixels[first]], return_counts=True)
        found = _main_colours(points[in_first], in_counts, lossy[first], limit=5)
        approximate = " (JPEG shifts colours: these are near the true ones)" if lossy[first] else ""
        raise ValueError(
            f"The mask {mask_files[first]} has colours that are not in the palette: {found}"
            f"{approximate}, in {unknown_pixels[first].mean():.1%} of its pixels. Add them to "
            "the palette with their labels."
        )
    return labels[np.maximum(mapped, 0)]


def _colour_mask_error(mask: np.ndarray, mask_file: Path, lossy: bool) -> ValueError:
    codes, counts = np.unique(_colour_codes(mask), return_counts=True)
    example = _main_colours(_colours_of(codes), counts, lossy, limit=6)
    approximate = " (JPEG shifts colours: these are near the true ones)" if lossy else ""
    return ValueError(
        f"The mask {mask_file} is colour-coded: its pixels are colours such as {example}"
        f"{approximate}, not grey labels. Pass palette=[{example}] with the colour of each "
        "label, in label order (the first colour is label 0)."
    )


def _is_lossy_file(path: Path) -> bool:
    """Whether ``path`` holds a lossy image, by its header (by its name if Pillow cannot open
    it: the error comes when it is read)."""
    try:
        with _open(path) as image:
            return _is_lossy(image)
    except Exception:  # any file Pillow cannot open is reported when it is read
        return _FORMAT_NAMES.get(path.suffix.lower()) == "JPEG"


def _masks_by_stem(masks_dir: Path, stems: set[str]) -> dict[str, Path]:
    """The mask file of each image stem in ``stems``.

    Where several files share a stem (``a.jpg`` and ``a.png``), a lossless one is taken over
    lossy ones, else the first by name, with one warning that names them.
    """
    by_stem: dict[str, list[Path]] = {}
    for mask_file in image_files(masks_dir):
        if mask_file.stem in stems:
            by_stem.setdefault(mask_file.stem, []).append(mask_file)
    chosen, passed_over = {}, []
    for stem, candidates in by_stem.items():
        if len(candidates) > 1:
            candidates = sorted(candidates, key=_is_lossy_file)  # stable: by name among equals
            passed_over.append(
                f"{candidates[0].name} over {', '.join(c.name for c in candidates[1:])}"
            )
        chosen[stem] = candidates[0]
    if passed_over:
        listed = "; ".join(passed_over[:_LISTED_SKIPS])
        if len(passed_over) > _LISTED_SKIPS:
            listed += f"; and {len(passed_over) - _LISTED_SKIPS} more"
        warnings.warn(
            f"{len(passed_over)} image{'s have' if len(passed_over) > 1 else ' has'} several "
            f"masks in {masks_dir}; a lossless file is read rather than a lossy one (JPEG, "
            f"lossy WebP), else the first by name: {listed}. Remove the masks not meant.",
            UserWarning,
            stacklevel=3,
        )
    return chosen


@fill_doc(color_mode=COLOR_MODE_DOC, skip_errors=SKIP_ERRORS_DOC, depths=DEPTHS_DOC)
def load_segmentation_folder(
    images_dir,
    masks_dir,
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: str = "auto",
    mask_values: Sequence[int] | None = None,
    mask_threshold: float | None = None,
    palette: Sequence | Mapping | None = None,
    skip_errors: bool = False,
    return_X_y: bool = False,
):
    """Load a segmentation data set: a folder of images and a folder of label masks.

    Each image is paired with the mask of the same file stem (``a.jpg`` with ``a.png``). A
    mask is an integer label image: each pixel's value (grey level, or palette index of a
    palette "P" PNG such as Pascal VOC's, 16-bit value, or 0 and 1 of a 1-bit file) is its class
    label; alpha is dropped. Colour-coded masks (CamVid's colours, for one) need a
    ``palette``. EXIF orientation is applied to images and masks alike, so they stay aligned.

    Masks saved as JPEG are lossy: their labels come back smeared into nearby values (a 0/255
    mask holds dozens of values). Loading such masks is an error that says which values the
    masks seem to hold; ``mask_values`` or ``mask_threshold`` snap the pixels back to labels.
    Lossy masks that do not look smeared, and lossless ones that do (many values, most pixels
    on a few), give a warning. Where an image has several masks (``a.png`` and ``a.jpg``), a
    lossless one is read, with a warning.

    Parameters
    ----------
    images_dir, masks_dir : str or path-like
        The folder of images and the folder of masks.
    image_size : int or tuple of int, default=None
        ``(height, width)`` to resize to: images bilinearly, masks with the nearest neighbour
        so that labels stay labels. None keeps the files' size, which must then be the same
        for all.
    {color_mode}
        This reads the images; the masks are always read as labels.
    mask_values : list of int, default=None
        The label values the masks hold, e.g. ``[0, 255]``: every pixel takes the nearest of
        them (for masks smeared by JPEG or by resizing), and the labels are these values. A
        pixel well outside their range (further than the midpoint to its nearest value plus
        a little) is an error.
    mask_threshold : float, default=None
        For binary masks: pixels above it become label 1, the others label 0 (e.g. 127 for
        masks drawn in 0 and 255).
    palette : list of (R, G, B) or dict, default=None
        For colour-coded masks: the colour of label 0, 1, 2, ... as a list, or a dict
        ``{(R, G, B): label}``. Every mask is read in colour (palette PNGs through their own
        colours) and each pixel's colour is mapped to its label; a colour that is not in the
        palette is an error that names it. In lossy (JPEG) files each pixel takes the nearest
        palette colour.
    {skip_errors}
        An image without a mask, or whose mask cannot be read or has another size, is then
        left out too, and the Bunch's ``skipped`` holds the same mapping as the warning.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``data`` (and its alias ``images``): images ``(n, H, W)`` or ``(n, H, W, 3)``;
        ``target``: int64 masks ``(n, H, W)``; ``target_names``: the labels found in the
        masks; ``filenames`` and ``mask_filenames``; ``skipped``: a dict from each file left
        out by ``skip_errors=True`` to the reason (empty otherwise). Or ``(data, target)``
        with ``return_X_y=True``. {depths}

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

    Masks drawn in red on black, mapped to the labels 0 and 1:

    >>> red = np.zeros((8, 8, 3), np.uint8); red[2:5, 2:5] = (255, 0, 0)
    >>> for i in range(2):
    ...     Image.fromarray(red).save(root / "masks" / f"{i}.png")
    >>> Y = load_segmentation_folder(
    ...     root / "images", root / "masks", palette=[(0, 0, 0), (255, 0, 0)]
    ... ).target
    >>> Y.dtype, int(Y.sum())
    (dtype('int64'), 18)
    """
    color_mode = _check_color_mode(color_mode)
    size = _check_image_size(image_size)
    values, threshold, colours = _check_mask_options(mask_values, mask_threshold, palette)
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
    masks_by_stem = _masks_by_stem(masks_dir, {file.stem for file in files})
    images = ImageSet(f"images in {images_dir}")
    masks, mask_files, lossy = [], [], []
    skipped = _Skipped(skip_errors)
    for file in files:
        try:
            mask_file = masks_by_stem.get(file.stem)
            if mask_file is None:
                raise _BadFile(
                    f"The image {file} has no mask: expected a file named {file.stem}.png (or "
                    f".jpg, .jpeg, .bmp, .tif, .tiff, .webp, .gif) in {masks_dir}.",
                    file,
                    f"it has no mask (no file named {file.stem}.png or the like in {masks_dir})",
                )
            image = read_image(file, color_mode, size)
            images.check(image.pixels, file)  # before its mask is decoded
            mask, mask_lossy = _read_mask(mask_file, size, want_colour=colours is not None)
            height, width = image.pixels.shape[:2]
            if mask.shape[:2] != (height, width):
                sizes = (
                    f"is {mask.shape[1]}x{mask.shape[0]} (width x height) but its image {file} "
                    f"is {width}x{height}"
                )
                raise _BadFile(
                    f"The mask {mask_file} {sizes}; pass image_size to resize both.",
                    mask_file,
                    f"the mask {sizes}",
                )
        except _BadFile as error:
            skipped.add(error)
            continue
        if colours is None and mask.ndim == 3:
            raise _colour_mask_error(mask, mask_file, mask_lossy)
        images.add(image, file)
        masks.append(mask)
        mask_files.append(mask_file)
        lossy.append(mask_lossy)
    skipped.report(len(masks), images_dir, "the Bunch's `skipped`")
    data = images.stacked()
    if colours is not None:
        target = _apply_palette(np.stack(masks), *colours, lossy, mask_files)
    elif threshold is not None:
        target = (np.stack(masks) > threshold).astype(np.int64)
    elif values is not None:
        target = _snap_to_values(np.stack(masks), values, mask_files)
    else:
        target = np.stack(masks).astype(np.int64)
        found, counts = _value_counts(target)
        lossy_files = [file for file, is_lossy in zip(mask_files, lossy, strict=True) if is_lossy]
        _check_smeared(found, counts, lossy_files, masks_dir)
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        images=data,
        target=target,
        target_names=_value_counts(target)[0],
        filenames=np.asarray([str(file) for file in images.files]),
        mask_filenames=np.asarray([str(file) for file in mask_files]),
        skipped=dict(skipped),
        DESCR=f"Images from {images_dir} with label masks from {masks_dir}.",
    )
