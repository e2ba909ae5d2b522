"""Predictions written to files: a CSV, an ``.npz``, or one PNG mask per image.

Each writer is a context manager that yields ``write(first, predicted, proba, names)``, which
takes the predictions of one chunk of images: ``first`` is the index of its first image,
``proba`` the class probabilities (None without them) and ``names`` the images' files (None for
images that came from an array). ``skrnn predict`` streams its chunks into one of them.

Every file is written whole or not at all (:func:`skrnn._utils.open_atomically`): predictions
that stop half-way leave the file that was there before, and a folder of masks holds only
whole ones.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ._utils import open_atomically, write_atomically

# What a writer yields: write(first, predicted, proba or None, names or None).
Write = Callable[[int, np.ndarray, "np.ndarray | None", "list[str] | None"], None]
# The largest label a grey PNG holds (16 bits).
PNG_MAX_LABEL = 65535


@contextlib.contextmanager
def csv_rows(
    output: Path | None, classes, *, with_files: bool, with_proba: bool
) -> Iterator[Write]:
    """Rows ``index[, filename], prediction[, proba_<class>...]`` to ``output``, or to stdout
    when it is None; the file replaces ``output`` only once every row is written."""
    if output is None:
        target = contextlib.nullcontext(sys.stdout)
    else:
        target = open_atomically(output, "w", newline="")
    with target as handle:
        writer = csv.writer(handle)
        header = ["index"] + (["filename"] if with_files else []) + ["prediction"]
        header += [f"proba_{label}" for label in classes] if with_proba else []
        writer.writerow(header)

        def write(first, predicted, proba, names):
            for i, label in enumerate(predicted):
                row = [first + i] + ([names[i]] if with_files else []) + [label]
                row += [f"{p:.6g}" for p in proba[i]] if with_proba else []
                writer.writerow(row)

        yield write


@contextlib.contextmanager
def npz_arrays(output: Path, classes, *, with_files: bool, with_proba: bool) -> Iterator[Write]:
    """``predictions`` (and ``proba`` with ``classes``, ``filenames``) in an ``.npz`` at
    ``output``, written when the body ends; the predictions are kept in memory until then.

    Raises
    ------
    ValueError
        From ``write``, when a chunk's masks have another size than the first chunk's: masks
        of different sizes do not fit in one array.
    """
    kept: dict[str, list] = {"predictions": [], "proba": [], "filenames": []}

    def write(first, predicted, proba, names):
        if kept["predictions"] and predicted.shape[1:] != kept["predictions"][0].shape[1:]:
            sizes = [
                shape[::-1] for shape in (kept["predictions"][0].shape[1:], predicted.shape[1:])
            ]
            raise ValueError(
                "the images have different sizes ({}x{} and {}x{}, width x height), so their "
                "masks do not fit in one array; read them at one size, or write each mask to "
                "a file of its own".format(*sizes[0], *sizes[1])
            )
        kept["predictions"].append(predicted)
        if with_proba:
            kept["proba"].append(proba)
        if with_files:
            kept["filenames"] += names

    yield write
    arrays = {"predictions": np.concatenate(kept["predictions"] or [np.empty(0)])}
    if with_proba and kept["proba"]:
        arrays["proba"], arrays["classes"] = np.concatenate(kept["proba"]), np.asarray(classes)
    if with_files:
        arrays["filenames"] = np.asarray(kept["filenames"])
    with open_atomically(output, "wb") as file:
        np.savez_compressed(file, **arrays)


def mask_file_name(image_file) -> str:
    """The name of the PNG mask of an image file: its stem, as the mask folders pair them."""
    return f"{Path(image_file).stem}.png"


def check_png_labels(classes, palette=None) -> None:
    """Refuse labels that PNG masks cannot hold: with a ``palette`` (the colours of label 0,
    1, ...), labels it has no colour for; without one, labels that are not grey levels of 8 or
    16 bits (0 to 65535).

    Raises
    ------
    ValueError
        Saying which labels cannot be written, and what would.
    """
    labels = np.asarray(classes)
    if palette is not None:
        outside = labels[(labels < 0) | (labels >= len(palette))]
        if outside.size:
            raise ValueError(
                f"the model predicts the labels {labels.tolist()!s:.80}, but the palette has "
                f"colours for the labels 0 to {len(palette) - 1} only; give a colour for each "
                "label"
            )
        if len(palette) > 256:
            raise ValueError(
                f"a palette PNG holds at most 256 colours, but the palette has {len(palette)}"
            )
    elif labels.size and (labels.min() < 0 or labels.max() > PNG_MAX_LABEL):
        raise ValueError(
            f"the model predicts labels from {labels.min()} to {labels.max()}, but a PNG mask "
            f"holds labels from 0 to {PNG_MAX_LABEL}; write the masks to an .npz file instead"
        )


def mask_png(mask: np.ndarray, *, sixteen_bit: bool = False, palette=None) -> bytes:
    """One label mask ``(H, W)`` as the bytes of a PNG file.

    The labels are the pixel values: grey levels (16-bit ones with ``sixteen_bit``), or with a
    ``palette`` (the colours of label 0, 1, ...) the indices of a palette PNG, which the mask
    folders read back as the same labels (and as the palette's colours with ``palette``).
    """
    from PIL import Image

    if palette is not None:
        image = Image.fromarray(mask.astype(np.uint8))
        image.putpalette(np.asarray(palette, dtype=np.uint8).ravel().tolist())
    else:
        image = Image.fromarray(mask.astype(np.uint16 if sixteen_bit else np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def png_masks(folder: Path, classes, *, count: int, palette=None) -> Iterator[Write]:
    """One PNG mask per image in ``folder`` (created if need be), each written as it comes.

    A mask is named after its image (:func:`mask_file_name`), or by the image's index,
    zero-padded to the width of ``count - 1``, for images that came from an array. The labels
    are written as :func:`mask_png` says (which needs Pillow); call :func:`check_png_labels`
    first.
    """
    folder.mkdir(exist_ok=True)
    sixteen_bit = len(classes) > 0 and int(np.max(classes)) > 255
    digits = len(str(max(count - 1, 0)))

    def write(first, predicted, proba, names):
        for i, mask in enumerate(predicted):
            name = mask_file_name(names[i]) if names is not None else f"{first + i:0{digits}d}.png"
            # a link in the folder is replaced, never followed: it could point at an input
            png = mask_png(mask, sixteen_bit=sixteen_bit, palette=palette)
            write_atomically(folder / name, png, follow_links=False)

    yield write
