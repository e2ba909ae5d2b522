"""The largest sizes skrnn reads from a model file or a checkpoint, in one place.

A model file (:mod:`skrnn._persistence`) or a checkpoint (:mod:`skrnn._checkpoint`) may come
from anyone, and its checksums are no signature: whoever edits it can recompute them. Every
size such a file carries is therefore bounded here before anything of that size is allocated:

* the zip entries and the sizes they declare (``MAX_*_BYTES``, ``MAX_COMPRESSION_RATIO``), and
  the safetensors header of the tensors (``MAX_HEADER_BYTES``), read by
  :mod:`skrnn._archive`;
* the image shape a model was fitted on (:func:`check_image_size`): at most ``MAX_IMAGE_SIDE``
  values along each axis and ``MAX_IMAGE_VALUES`` in all, and line images of at most
  ``MAX_LINE_HEIGHT`` rows for the recogniser, and at most ``MAX_GENERATOR_VALUES`` values in
  all of a generator's orderings (:func:`check_generator_size`);
* the work of the check that a loaded model gives finite outputs (:func:`probe_pixels`): it
  reads a crop of at most ``PROBE_PIXELS`` pixels, fewer for a large model.

Every other size is bounded by these: hidden sizes, layers, embedding sizes, head and
convolution widths, the vocabulary and the number of classes describe tensors that the
weights must hold (and the safetensors header must account for every byte of them), and the
classes, levels and alphabet are arrays of model.json.
"""

from __future__ import annotations

import math

# A manifest is a few hundred bytes and a model.json (or a checkpoint's state) a few KB: its
# largest parts are the training history and the class labels.
MAX_MANIFEST_BYTES = 64 << 10
MAX_JSON_BYTES = 8 << 20
# The tensors are exactly as large as the model that the parameters describe; this bounds
# them before the parameters are read.
MAX_TENSOR_BYTES = 64 << 30
# The JSON header of safetensors: about 100 bytes a tensor.
MAX_HEADER_BYTES = 1 << 20
# JSON and float weights deflate to a half or a tenth of their size; an entry that claims to
# grow more than this when inflated (and to more than the floor) is a zip bomb.
MAX_COMPRESSION_RATIO = 100
COMPRESSION_RATIO_FLOOR = 64 << 10

# Images of a few thousand pixels a side are common; a sequence (or flat rows read one value a
# step) may be a million steps long. A 16384 x 16384 image is 2**28 values.
MAX_IMAGE_SIDE = 1 << 20
MAX_IMAGE_VALUES = 1 << 28
# The recogniser reads each column of a line whole: lines are 32 to 128 pixels high.
MAX_LINE_HEIGHT = 1 << 12

# A generator holds every ordering of an image's values as two int64 permutations, built with
# the network before any weight is read (the grid readers' weights do not grow with the image):
# at most MAX_GENERATOR_VALUES values in all orderings, 2 x 16 MiB (512 x 512 grey images in 8
# orderings, 1024 x 1024 in 2; PixelRNN's largest images were 64 x 64 x 3).
MAX_GENERATOR_VALUES = 1 << 21

# The check of a loaded model's outputs reads a crop of at most PROBE_PIXELS pixels (32 x 32),
# and at most PROBE_WORK // (the model's weight values) of them, so that it takes about as long
# as reading a small model and never much longer than reading the weights of a large one.
PROBE_PIXELS = 1 << 10
PROBE_WORK = 1 << 24


def check_image_size(shape, name: str = "image_shape_") -> None:
    """Raise :class:`ValueError` if an ``(H, W, C)`` shape is larger than a model may read.

    Parameters
    ----------
    shape : tuple of int
        Positive ints.
    name : str, default="image_shape_"
        What the shape is, for the message.
    """
    if max(shape) > MAX_IMAGE_SIDE or math.prod(shape) > MAX_IMAGE_VALUES:
        raise ValueError(
            f"{name}={tuple(shape)!r:.80} is larger than a model file may describe: at most "
            f"{MAX_IMAGE_SIDE:,} values along an axis and {MAX_IMAGE_VALUES:,} in an image."
        )


def check_generator_size(shape, orderings: int) -> None:
    """Raise :class:`ValueError` if a generator of images of ``shape`` read in ``orderings``
    orderings would hold more than ``MAX_GENERATOR_VALUES`` values of permutations."""
    values = math.prod(shape) * orderings
    if values > MAX_GENERATOR_VALUES:
        raise ValueError(
            f"image_shape_={tuple(shape)!r:.80} with orderings={orderings} is larger than a "
            f"generator's file may describe: at most {MAX_GENERATOR_VALUES:,} values in all "
            f"orderings, got {values:,}."
        )


def probe_pixels(n_weight_values: int) -> int:
    """How many pixels the output check of a model of ``n_weight_values`` weights reads.

    Examples
    --------
    >>> probe_pixels(1_000), probe_pixels(1_000_000), probe_pixels(10**9)
    (1024, 16, 1)
    """
    return max(1, min(PROBE_PIXELS, PROBE_WORK // max(1, n_weight_values)))
