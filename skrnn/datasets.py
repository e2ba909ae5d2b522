"""Data sets that ship with skrnn or that it makes: nothing is downloaded."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

# Image folders on disk; re-exported here so every data set has one home.
from ._folders import load_image_folder, load_segmentation_folder
from ._lines import load_line_folder

__all__ = [
    "SHAPE_NAMES",
    "load_digits_images",
    "load_image_folder",
    "load_line_folder",
    "load_segmentation_folder",
    "make_digit_strings",
    "make_sentiment_sequences",
    "make_shapes",
]


def load_digits_images(*, n_class: int = 10, return_X_y: bool = False):
    """scikit-learn's bundled handwritten digits as ``(n, 8, 8)`` images.

    The pixel values are the original 0-16 ink counts as float64, so the images keep their 17
    discrete levels.

    Parameters
    ----------
    n_class : int, default=10
        Number of classes to return (digits ``0`` to ``n_class - 1``).
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``images`` (and its alias ``data``) of shape (n, 8, 8), ``target`` (n,),
        ``target_names``, ``DESCR``. Or ``(images, target)`` with ``return_X_y=True``.

    Examples
    --------
    >>> from skrnn.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X.shape, y.shape
    ((1797, 8, 8), (1797,))
    """
    from sklearn.datasets import load_digits

    digits = load_digits(n_class=n_class)
    images = digits.images.astype(np.float64)
    if return_X_y:
        return images, digits.target
    return Bunch(
        data=images,
        images=images,
        target=digits.target,
        target_names=digits.target_names,
        DESCR=digits.DESCR,
    )


SHAPE_NAMES = ("background", "circle", "rectangle", "triangle")


def _shape_mask(kind: int, center, size: float, rng, yy, xx) -> np.ndarray:
    """The pixels covered by one shape of ``kind`` (1 circle, 2 rectangle, 3 triangle)."""
    cy, cx = center
    if kind == 1:
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= size**2
    if kind == 2:
        half_h, half_w = size * rng.uniform(0.6, 1.0, size=2)
        return (np.abs(yy - cy) <= half_h) & (np.abs(xx - cx) <= half_w)
    # An equilateral triangle at a random rotation, a little larger than the other shapes so
    # that the three have similar areas.
    angles = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2.0, 4.0]) * np.pi / 3
    radius = 1.5 * size
    vy, vx = cy + radius * np.sin(angles), cx + radius * np.cos(angles)
    inside = np.ones(yy.shape, dtype=bool)
    for i in range(3):
        j = (i + 1) % 3
        # Counter-clockwise vertices: the inside is to the left of every edge.
        cross = (vx[j] - vx[i]) * (yy - vy[i]) - (vy[j] - vy[i]) * (xx - vx[i])
        inside &= cross >= 0
    return inside


def make_shapes(
    n_samples: int = 100,
    *,
    image_size: int | tuple[int, int] = 32,
    max_shapes: int = 3,
    noise: float = 0.1,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Make a synthetic segmentation data set: noisy images of shapes and their label masks.

    Each image holds between one and ``max_shapes`` shapes (circles, axis-aligned rectangles
    and rotated triangles) of random sizes at random, non-touching positions, over a
    background of random level, plus Gaussian noise. Every shape gets its own random
    intensity drawn from the same range whatever its kind, so brightness separates shapes
    from the background but says nothing about their class: a segmenter must recognise the
    form. The mask labels each pixel with its shape's class, 0 for background.

    Parameters
    ----------
    n_samples : int, default=100
        Number of images.
    image_size : int or tuple of int, default=32
        Height and width of the images (an int for square images).
    max_shapes : int, default=3
        Largest number of shapes per image (each image has between 1 and ``max_shapes``).
    noise : float, default=0.1
        Standard deviation of the Gaussian noise added to every pixel.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible data sets.

    Returns
    -------
    images : ndarray of shape (n_samples, H, W)
        float64 images, values roughly in [0, 1].
    masks : ndarray of shape (n_samples, H, W)
        int64 label masks: 0 = background, 1 = circle, 2 = rectangle, 3 = triangle. The
        module constant ``SHAPE_NAMES`` names the labels: ``SHAPE_NAMES[label]``.

    Examples
    --------
    >>> from skrnn.datasets import SHAPE_NAMES, make_shapes
    >>> X, Y = make_shapes(n_samples=10, image_size=24, random_state=0)
    >>> X.shape, Y.shape
    ((10, 24, 24), (10, 24, 24))
    >>> [SHAPE_NAMES[label] for label in sorted(set(Y.ravel().tolist()))]
    ['background', 'circle', 'rectangle', 'triangle']
    """
    import numbers

    from sklearn.utils import check_random_state

    from ._validation import check_int_pair

    if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
    image_size = check_int_pair(image_size, "image_size", minimum=8)
    if not isinstance(max_shapes, numbers.Integral) or max_shapes < 1:
        raise ValueError(f"max_shapes must be a positive int, got {max_shapes!r}.")
    if not isinstance(noise, numbers.Real) or noise < 0:
        raise ValueError(f"noise must be a non-negative number, got {noise!r}.")

    rng = check_random_state(random_state)
    height, width = int(image_size[0]), int(image_size[1])
    # Pixel centres, so shape edges fall between pixels consistently at any position.
    yy, xx = np.mgrid[0:height, 0:width] + 0.5
    short_side = min(height, width)
    images = np.empty((n_samples, height, width))
    masks = np.zeros((n_samples, height, width), dtype=np.int64)
    for i in range(n_samples):
        image = np.full((height, width), rng.uniform(0.0, 0.2))
        mask = masks[i]
        for _ in range(rng.randint(1, max_shapes + 1)):
            kind = rng.randint(1, len(SHAPE_NAMES))
            for _attempt in range(20):
                size = rng.uniform(0.1, 0.2) * short_side
                margin = 1.5 * size
                center = (
                    rng.uniform(margin, height - margin),
                    rng.uniform(margin, width - margin),
                )
                covered = _shape_mask(kind, center, size, rng, yy, xx)
                # Keep a gap of one pixel so that no two shapes touch.
                grown = covered.copy()
                grown[1:] |= covered[:-1]
                grown[:-1] |= covered[1:]
                grown[:, 1:] |= covered[:, :-1]
                grown[:, :-1] |= covered[:, 1:]
                if covered.any() and not (mask[grown] != 0).any():
                    mask[covered] = kind
                    image[covered] = rng.uniform(0.4, 1.0)
                    break
        images[i] = image + noise * rng.standard_normal((height, width))
    return images, masks


def make_sentiment_sequences(
    n_samples: int = 600,
    *,
    length: int = 50,
    n_tokens: int = 10000,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 'reviews': integer word-id sequences labelled by their majority sentiment.

    Each sequence holds ``length`` word ids: filler words drawn from ``[20, n_tokens)`` plus ten
    sentiment words, eight agreeing with the label and two against it. Words 1-5 are positive,
    6-10 negative. A model must find the sentiment words wherever they are, as in a text
    classifier over an embedding.

    Parameters
    ----------
    n_samples : int, default=600
        Number of sequences.
    length : int, default=50
        Words per sequence (at least 10).
    n_tokens : int, default=10000
        Size of the vocabulary (more than 20).
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible data sets.

    Returns
    -------
    X : ndarray of shape (n_samples, length)
        int64 word ids in ``[1, n_tokens)``.
    y : ndarray of shape (n_samples,)
        The sentiment: 0 negative, 1 positive.

    Examples
    --------
    >>> from skrnn.datasets import make_sentiment_sequences
    >>> X, y = make_sentiment_sequences(100, random_state=0)
    >>> X.shape, sorted(set(y.tolist()))
    ((100, 50), [0, 1])
    """
    from sklearn.utils import check_random_state

    if length < 10 or n_tokens <= 20 or n_samples < 1:
        raise ValueError(
            f"make_sentiment_sequences needs n_samples >= 1, length >= 10 and n_tokens > 20; "
            f"got n_samples={n_samples}, length={length}, n_tokens={n_tokens}."
        )
    rng = check_random_state(random_state)
    tokens = rng.randint(20, n_tokens, size=(n_samples, length)).astype(np.int64)
    target = rng.randint(0, 2, size=n_samples)
    for review, label in zip(tokens, target, strict=True):
        marks = rng.choice(length, size=10, replace=False)
        agree, disagree = (1, 6) if label else (6, 1)
        review[marks[:8]] = rng.randint(agree, agree + 5, size=8)
        review[marks[8:]] = rng.randint(disagree, disagree + 5, size=2)
    return tokens, target


def _glyphs(glyphs) -> tuple[np.ndarray, np.ndarray]:
    """``make_digit_strings``' ``glyphs``, checked: float64 images ``(n, h, w)`` and their
    one-character labels."""
    if not isinstance(glyphs, (tuple, list)) or len(glyphs) != 2:
        raise ValueError(
            "glyphs must be a pair (images, labels): images of shape (n, h, w) and one label "
            f"per image; got {type(glyphs).__name__}."
        )
    images, labels = glyphs
    try:
        images = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"glyphs' images must be numbers: {error}") from None
    labels = np.asarray(labels)
    if images.ndim != 3 or images.shape[0] == 0 or 0 in images.shape[1:]:
        raise ValueError(
            f"glyphs' images must have shape (n, h, w) with n, h, w >= 1; got {images.shape}."
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"glyphs need one label per image: {len(images)} images, labels of shape "
            f"{labels.shape}."
        )
    if not np.isfinite(images).all() or images.min() < 0:
        raise ValueError("glyphs' images must be finite and non-negative (ink high, background 0).")
    labels = np.array([str(label) for label in labels.tolist()], dtype=object)
    if any(len(label) != 1 for label in labels):
        wrong = next(label for label in labels if len(label) != 1)
        raise ValueError(
            f"glyphs' labels must each be one character (a line's string joins them); got "
            f"{wrong!r}."
        )
    return images, labels


def make_digit_strings(
    n_samples: int = 1000,
    *,
    min_length: int = 1,
    max_length: int = 8,
    spacing: tuple[int, int] = (-1, 3),
    jitter: int = 1,
    noise: float = 0.5,
    variable_width: bool = False,
    return_spans: bool = False,
    glyphs=None,
    random_state=None,
):
    """Make lines of handwritten digits to read: images of digit strings and the strings.

    Each line puts ``min_length`` to ``max_length`` digits drawn from scikit-learn's bundled
    8x8 handwritten digits (or from ``glyphs``) side by side, left to right, with a random gap
    (or a slight overlap) between neighbours, a random vertical offset of each digit and
    Gaussian noise, on a canvas ``h + 2 * jitter`` pixels high for glyphs ``h`` high. Nothing
    says where one digit ends and the next begins: a recogniser must find the cut points
    itself.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of lines.
    min_length, max_length : int, default=1 and 8
        Shortest and longest string; every length in between is equally likely.
    spacing : tuple of int, default=(-1, 3)
        ``(low, high)``: the columns between neighbouring digits are drawn from this range;
        a negative value makes them overlap (where their ink adds up to at most the glyphs'
        largest value, 16 for the bundled digits).
    jitter : int, default=1
        Each digit moves up or down by up to this many pixels.
    noise : float, default=0.5
        Standard deviation of the Gaussian noise on every pixel, in the glyphs' units (ink
        counts 0-16 for the bundled digits); pixel values are clipped at 0.
    variable_width : bool, default=False
        False: every image has the width of the longest possible line, the text starting
        near the left edge and blank on the right. True: each image is as wide as its own
        text (plus a margin), and ``X`` is a list of images of different widths.
    return_spans : bool, default=False
        Also return where each digit lies: the cut points a recogniser does not get.
    glyphs : tuple (images, labels) or None, default=None
        The glyphs to draw from, each line's digits drawn uniformly among them: ``images`` of
        shape ``(n, h, w)`` (non-negative numbers, ink high, background 0) and ``labels`` of
        shape ``(n,)``, whose ``str`` is each glyph's symbol (digits 0-9, or any one-character
        label). None: scikit-learn's bundled 8x8 digits. Real handwriting, such as MNIST's
        28x28 digits cropped to their middle 20 columns, gives lines ``28 + 2 * jitter`` high
        that read like a real scanned line; draw the training and test lines from different
        glyphs to judge a recogniser on handwriting it never saw.
    random_state : int, RandomState instance or None, default=None
        Seed for reproducible data sets.

    Returns
    -------
    X : ndarray of shape (n_samples, h + 2 * jitter, width) or list of ndarray
        float64 images with the glyphs' values (ink counts roughly in 0-16 for the bundled
        digits; a list of ``(h + 2 * jitter, w)`` images with ``variable_width=True``). The
        width is that of the longest possible line: ``4 + w * max_length + max(high, 0) *
        (max_length - 1)``.
    y : ndarray of shape (n_samples,)
        The digit strings, e.g. ``"4071"``.
    spans : list of list of tuple of int
        Only with ``return_spans``: for each line, the ``(start, stop)`` columns of each digit.

    Examples
    --------
    >>> from skrnn.datasets import make_digit_strings
    >>> X, y = make_digit_strings(5, min_length=2, max_length=4, random_state=0)
    >>> X.shape, [len(text) for text in y]
    ((5, 10, 45), [2, 2, 4, 2, 4])
    >>> X, y = make_digit_strings(3, variable_width=True, random_state=0)
    >>> [image.shape[0] for image in X]
    [10, 10, 10]
    >>> import numpy as np
    >>> bars = np.zeros((2, 5, 3)); bars[0, :, 1] = 1; bars[1, 2] = 1   # "1" and "-"
    >>> X, y = make_digit_strings(3, min_length=2, max_length=3, spacing=(0, 1), jitter=0,
    ...                           noise=0, glyphs=(bars, ["1", "-"]), random_state=0)
    >>> X.shape, list(y)
    ((3, 5, 15), ['--', '-11', '11'])
    """
    import numbers

    from sklearn.utils import check_random_state

    from ._validation import is_int

    if not is_int(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
    if not (is_int(min_length) and is_int(max_length) and 0 <= min_length <= max_length):
        raise ValueError(
            f"min_length and max_length must be ints with 0 <= min_length <= max_length, got "
            f"{min_length!r} and {max_length!r}."
        )
    if (
        not isinstance(spacing, (tuple, list))
        or len(spacing) != 2
        or not all(is_int(s) for s in spacing)
        or not -4 <= spacing[0] <= spacing[1]
    ):
        raise ValueError(
            f"spacing must be a pair (low, high) of ints with -4 <= low <= high, got {spacing!r}."
        )
    if not is_int(jitter) or jitter < 0:
        raise ValueError(f"jitter must be a non-negative int, got {jitter!r}.")
    if not isinstance(noise, numbers.Real) or noise < 0:
        raise ValueError(f"noise must be a non-negative number, got {noise!r}.")

    digits, labels = load_digits_images(return_X_y=True) if glyphs is None else _glyphs(glyphs)
    _, glyph_height, glyph_width = digits.shape
    if spacing[0] < -glyph_width:
        raise ValueError(
            f"spacing={spacing!r} overlaps neighbours by more than a glyph's width "
            f"({glyph_width} columns)."
        )
    rng = check_random_state(random_state)
    ink = float(digits.max()) or 1.0
    low, high = int(spacing[0]), int(spacing[1])
    height, margin = glyph_height + 2 * jitter, 2
    widest = 2 * margin + glyph_width * max_length + max(high, 0) * max(max_length - 1, 0)
    images, strings, all_spans = [], [], []
    for _ in range(n_samples):
        length = rng.randint(min_length, max_length + 1)
        chosen = rng.randint(len(digits), size=length)
        gaps = rng.randint(low, high + 1, size=max(length - 1, 0))
        start = rng.randint(0, margin + 1)
        canvas = np.zeros((height, widest))
        spans = []
        for i, index in enumerate(chosen):
            if i:
                start += glyph_width + int(gaps[i - 1])
            top = rng.randint(0, 2 * jitter + 1)
            window = canvas[top : top + glyph_height, start : start + glyph_width]
            np.minimum(window + digits[index], ink, out=window)
            spans.append((start, start + glyph_width))
        end = spans[-1][1] if spans else 0
        if variable_width:
            canvas = canvas[:, : max(end + margin, glyph_width)]
        if noise:
            canvas = np.clip(canvas + noise * rng.standard_normal(canvas.shape), 0.0, None)
        images.append(canvas)
        strings.append("".join(str(labels[i]) for i in chosen))
        all_spans.append(spans)
    X = images if variable_width else np.stack(images)
    y = np.array(strings, dtype=object)
    return (X, y, all_spans) if return_spans else (X, y)
