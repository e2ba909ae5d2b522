"""Text-line images on disk: a folder of images plus a file of their transcriptions.

The layout is the one line-level handwriting and OCR sets use: one image per line of text, and
one file that says what each image reads, either a CSV with a header (``file,text``) or a plain
text file with one ``file<TAB>text`` (or ``file text``) entry per line.
"""

from __future__ import annotations

import csv
import numbers
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ._folders import ImageSet, read_image

# Transcription files looked for, in this order, when none is named.
TRANSCRIPTION_FILES = ("labels.csv", "transcriptions.csv", "labels.txt", "transcriptions.txt")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm"}


def _read_transcriptions(path: Path) -> list[tuple[str, str]]:
    """``(file name, text)`` pairs from a CSV with a header, or ``name<TAB or space>text`` lines."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        rows = list(csv.reader(text.splitlines()))
        if not rows:
            return []
        header = [cell.strip().lower() for cell in rows[0]]
        name_columns = [c for c in ("file", "filename", "image", "path", "name") if c in header]
        text_columns = [c for c in ("text", "transcription", "label", "target") if c in header]
        if not name_columns or not text_columns:
            raise ValueError(
                f"{path} needs a header naming a file column (file, filename, image, path or "
                f"name) and a text column (text, transcription, label or target); its first "
                f"row is {rows[0]!r:.120}."
            )
        name_at, text_at = header.index(name_columns[0]), header.index(text_columns[0])
        pairs = []
        for number, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(name_at, text_at):
                raise ValueError(f"{path}, row {number}: expected a file and a text, got {row!r}.")
            pairs.append((row[name_at].strip(), row[text_at]))
        return pairs
    pairs = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, rest = line.partition("\t")
        if not sep:
            name, _, rest = line.partition(" ")
        pairs.append((name.strip(), rest))
    return pairs


def _find_transcriptions(folder: Path, transcriptions) -> Path:
    if transcriptions is not None:
        path = Path(transcriptions)
        path = path if path.is_absolute() or path.exists() else folder / path
        if not path.is_file():
            raise FileNotFoundError(f"The transcription file {path} does not exist.")
        return path
    for name in TRANSCRIPTION_FILES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{folder} holds no transcription file; add one of {list(TRANSCRIPTION_FILES)} (a CSV "
        "with a header file,text, or lines 'file<TAB>text') or pass transcriptions=PATH."
    )


def _read_line(path: Path, color_mode: str, height: int | None):
    """One line image read as the image folders read theirs (upright, at the depth of the
    file, palette files converted, oversized and damaged files refused naming the file), at
    ``height`` with its aspect ratio kept; as :func:`read_image` returns it."""
    return read_image(path, color_mode, None if height is None else (height, None))


def _read_line_image(path: Path, color_mode: str, height: int | None) -> np.ndarray:
    """The pixels of :func:`_read_line`."""
    return _read_line(path, color_mode, height).pixels


def _inverted(image: np.ndarray, path: str) -> np.ndarray:
    """The top of the image's range minus each value: 255 for 8 bits, 65535 for 16."""
    if image.dtype.kind != "u":
        raise ValueError(
            f"invert=True takes each value from the top of its range, but {path} holds "
            f"{image.dtype} values (a 32-bit file), which have no fixed top. Save the lines "
            "as 8- or 16-bit files, or invert them yourself."
        )
    return np.iinfo(image.dtype).max - image


def load_line_folder(
    folder,
    *,
    transcriptions=None,
    height: int | None = None,
    color_mode: str = "grayscale",
    invert: bool = False,
    return_X_y: bool = False,
):
    """Load images of text lines and what each one reads, for :class:`skrnn.RNNSequenceRecognizer`.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder that holds the images (and, usually, the transcription file). Image names
        in the transcription file are relative to it and may name sub-folders.
    transcriptions : str, os.PathLike or None, default=None
        The transcription file: a CSV with a header naming a file column (``file``,
        ``filename``, ``image``, ``path`` or ``name``) and a text column (``text``,
        ``transcription``, ``label`` or ``target``), or a text file with one
        ``file<TAB>text`` entry per line (a space instead of the tab also works; lines
        starting with ``#`` are comments). None looks in ``folder`` for ``labels.csv``,
        ``transcriptions.csv``, ``labels.txt`` or ``transcriptions.txt``.
    height : int or None, default=None
        Resize every image to this height, keeping its aspect ratio. None keeps the images
        as they are, which must then all be of one height.
    color_mode : {"grayscale", "rgb"}, default="grayscale"
        Read images as one channel or as three.
    invert : bool, default=False
        Return ``255 - image`` (``65535 - image`` for 16-bit files): dark text on a light page
        becomes bright ink on a dark ground.
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``images``: a list of arrays ``(H, W)`` (or ``(H, W, 3)``) of one height and their
        own widths, which the recogniser takes as they are, at one bit depth as
        :func:`~skrnn.datasets.load_image_folder` reads them (uint8 for 8-bit files);
        ``target``: an object array of the transcriptions; ``filenames``: the image paths.
        Or ``(images, target)`` with ``return_X_y=True``.

    Raises
    ------
    FileNotFoundError
        If there is no transcription file or it names an image that does not exist.
    ValueError
        If the images differ in height and ``height`` is None, or the transcription file
        cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image
    >>> from skrnn.datasets import load_line_folder
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name, width in (("a.png", 30), ("b.png", 44)):
    ...     Image.fromarray(np.zeros((12, width), np.uint8)).save(folder / name)
    >>> _ = (folder / "labels.csv").write_text("file,text\\na.png,hi\\nb.png,there\\n")
    >>> X, y = load_line_folder(folder, return_X_y=True)
    >>> [image.shape for image in X], y.tolist()
    ([(12, 30), (12, 44)], ['hi', 'there'])
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder.")
    if height is not None and (
        not isinstance(height, numbers.Integral) or isinstance(height, bool) or height < 1
    ):
        raise ValueError(f"height must be a positive int or None, got {height!r}.")
    if color_mode not in ("grayscale", "rgb"):
        raise ValueError(f'color_mode must be "grayscale" or "rgb", got {color_mode!r}.')
    source = _find_transcriptions(folder, transcriptions)
    pairs = _read_transcriptions(source)
    if not pairs:
        raise ValueError(f"{source} lists no images.")
    lines = ImageSet(f"line images in {folder}", same_size=False)
    texts = []
    for name, text in pairs:
        path = folder / name
        if not path.is_file() and path.suffix == "":  # entries may leave out the suffix
            found = [
                p for p in path.parent.glob(path.name + ".*") if p.suffix.lower() in _IMAGE_SUFFIXES
            ]
            path = found[0] if found else path
        if not path.is_file():
            raise FileNotFoundError(f"{source} names {name!r}, but {path} does not exist.")
        lines.add(_read_line(path, color_mode, height), path)
        texts.append(text)
    paths = [str(path) for path in lines.files]
    images = lines.at_one_depth()
    if invert:
        images = [_inverted(image, path) for image, path in zip(images, paths, strict=True)]
    heights = sorted({image.shape[0] for image in images})
    if len(heights) > 1:
        first = next(
            p for p, image in zip(paths, images, strict=True) if image.shape[0] != heights[0]
        )
        raise ValueError(
            f"The line images have {len(heights)} different heights ({heights[0]} to "
            f"{heights[-1]} pixels, e.g. {first}); a recogniser reads lines of one height. "
            f"Pass height=H to resize them all, e.g. height={heights[len(heights) // 2]}."
        )
    target = np.empty(len(texts), dtype=object)
    target[:] = texts
    if return_X_y:
        return images, target
    return Bunch(images=images, target=target, filenames=paths)
