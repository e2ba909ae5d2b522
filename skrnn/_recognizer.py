"""``RNNSequenceRecognizer``: read a line of symbols from an image with a recurrent network and
CTC (Graves et al. 2006; CRNN, Shi et al. 2015).

A small convolutional front-end computes local features of every pixel, every ``stride``
columns of them become one step of a sequence read left to right (and right to left) by
recurrent cells from the registry, and a linear layer gives each step a probability for every
symbol and for the CTC *blank*. Training aligns the steps with the target string through the CTC
loss, so no cut points are needed; reading takes the most probable symbol of every step, merges
repeats and drops the blanks.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.nn import functional as F

from ._augment import AugmentMixin
from ._base import BaseRNNEstimator
from ._data import (
    ArrayDataset,
    as_batch_source,
    channel_statistics,
    read_rows,
    small_to_device,
    to_device,
)
from ._docs import fill_parameter_docs
from ._lazy import dask_aware
from ._limits import MAX_LINE_HEIGHT
from ._modules import RecurrentEncoder, Standardize
from ._random import Dropout
from ._utils import probe_images
from ._validation import check_head, check_images, check_input_statistics, format_shape
from .metrics import sequence_accuracy


class LineReader(nn.Module):
    """Images of text lines ``(B, H, W, C)`` to per-step log-probabilities ``(B, T, K)``.

    ``T = ceil(W / stride)``; class 0 is the CTC blank. The images are standardised, read by
    3x3 convolutions (each followed by ReLU and a max-pool that halves the height), every
    ``stride`` columns of the feature map (all rows, all channels) become one step, and the
    recurrent encoder and a linear layer give each step its log-probabilities.

    Parameters
    ----------
    height, n_channels : int
        Height and channels of the images.
    n_outputs : int
        Symbols plus one, for the blank.
    cell, hidden_size, num_layers, bidirectional, dropout
        The recurrent encoder, as in :class:`skrnn._modules.RecurrentEncoder`.
    conv : sequence of int
        Widths of the convolution layers; ``()`` reads the pixels themselves.
    stride : int
        Pixel columns per step.
    input_mean, input_std : sequence of float
        Per-channel statistics of the training images.

    Examples
    --------
    >>> import torch
    >>> from skrnn._recognizer import LineReader
    >>> reader = LineReader(height=10, n_channels=1, n_outputs=11, cell="gru", hidden_size=8,
    ...                     num_layers=1, bidirectional=True, dropout=0.0, conv=(4,), stride=2)
    >>> reader(torch.zeros(3, 10, 25, 1)).shape
    torch.Size([3, 13, 11])
    """

    def __init__(
        self,
        *,
        height: int,
        n_channels: int,
        n_outputs: int,
        cell,
        hidden_size,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        conv=(),
        stride: int = 1,
        input_mean=(0.0,),
        input_std=(1.0,),
    ):
        super().__init__()
        self.stride = int(stride)
        self.standardize = Standardize(input_mean, input_std)
        layers: list[nn.Module] = []
        channels, rows = n_channels, height
        for width in conv:
            layers += [nn.Conv2d(channels, int(width), 3, padding=1), nn.ReLU()]
            channels = int(width)
            if rows > 1:  # the height is summarised, the width (the reading axis) kept
                layers.append(nn.MaxPool2d((2, 1), ceil_mode=True))
                rows = (rows + 1) // 2
        self.local = nn.Sequential(*layers)
        self.encoder = RecurrentEncoder(
            self.stride * rows * channels, cell, hidden_size, num_layers, bidirectional, dropout
        )
        self.dropout = Dropout(dropout)
        self.output = nn.Linear(self.encoder.output_size, n_outputs)

    def forward(self, images):
        batch, _, width, _ = images.shape
        pixels = self.standardize(images).permute(0, 3, 1, 2)  # (B, C, H, W)
        pad = -width % self.stride
        if pad:  # zeros: the training mean after standardising
            pixels = F.pad(pixels, (0, pad))
        features = self.local(pixels)
        # Each step: `stride` columns of the feature map, all rows and channels.
        columns = features.permute(0, 3, 1, 2).reshape(batch, (width + pad) // self.stride, -1)
        outputs = self.dropout(self.encoder(columns))
        return torch.log_softmax(self.output(outputs).float(), dim=-1)


class LineDataset(ArrayDataset):
    """Line images padded to the widest line, served in batches cropped to the batch's widest.

    ``y`` holds the encoded targets: per line its steps, its length and its labels; the
    steps of a line say how wide it is.
    """

    def __init__(self, X, y, sample_weight=None, *, stride: int):
        super().__init__(X, y, sample_weight)
        self.stride = stride
        # The steps of every line, kept on the host: a batch's width is read from here even
        # when the targets live on the GPU, where reading them would wait for the device.
        self.steps = np.asarray(y)[:, 0].astype(np.int64)

    def batch(self, indices: np.ndarray, device_index=None, cast=True):
        X, y = super().batch(indices, device_index, cast)
        images = X["X"] if isinstance(X, dict) else X
        width = min(images.shape[2], int(self.steps[indices].max()) * self.stride)
        if width < images.shape[2]:
            images = images[:, :, :width]
            X = {**X, "X": images} if isinstance(X, dict) else images
        return X, y


def _is_sequence(item) -> bool:
    return isinstance(item, (list, tuple, np.ndarray)) and not isinstance(item, str)


def _sorted_symbols(symbols) -> list:
    try:
        return sorted(symbols)
    except TypeError:  # labels of several types
        return sorted(symbols, key=lambda s: (type(s).__name__, repr(s)))


def _as_alphabet(symbols: list) -> np.ndarray:
    """The symbols as a 1-D array: of their own dtype when they share one type (str, int),
    else of objects, so that no label is coerced into another (1 and "1" stay apart)."""
    if len({type(symbol) for symbol in symbols}) == 1:
        alphabet = np.array(symbols)
        if alphabet.ndim == 1 and alphabet.dtype.kind in "biufU":
            return alphabet
    alphabet = np.empty(len(symbols), dtype=object)
    alphabet[:] = symbols
    return alphabet


def _needed_steps(labels) -> int:
    """The fewest CTC steps that can emit ``labels``: one each, plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(labels[:-1], labels[1:], strict=True) if a == b)
    return len(labels) + repeats


@fill_parameter_docs(
    hidden_size=("int or tuple of int", "Units per recurrent layer and direction."),
    num_layers=("int", "Stacked recurrent layers (int ``hidden_size`` only)."),
    bidirectional=(
        "bool",
        """Read each line left to right and right to left and concatenate the two, so every
step sees the whole line.""",
    ),
    dropout=("float", "Dropout between recurrent layers and before the output layer."),
    conv=(
        "tuple of int",
        """Widths of 3x3 convolution layers (each with ReLU and a max-pool halving the
height) that compute local features of every pixel before the columns are read; ``()`` reads
the pixel values themselves.""",
    ),
    stride=(
        "int",
        """Pixel columns per recurrent step. A line of width ``w`` gives ``ceil(w / stride)``
steps, and CTC needs at least one step per symbol (two for a repeated symbol), so a line of
``n`` symbols must be at least about ``n * stride`` pixels wide; larger strides read faster.""",
    ),
    early_stopping=(
        "bool",
        """Hold out ``validation_fraction`` of the training lines, stop when the validation
loss has not improved for ``n_iter_no_change`` epochs, and restore the weights of the best
epoch.""",
    ),
    augment=(
        '"auto", bool or dict',
        """Random changes of every training batch, never at predict time, seeded by
``random_state``. False: none; True: ``{standard_augmentation}`` (small zooms and contrast
changes; no shifts that could push a symbol out of the line); ``"auto"``: True for lines at
least 16 pixels high, False for smaller ones; a dict chooses the options (``shift``,
``scale``, ``intensity``, ``vflip``). Horizontal flips are refused: a mirrored line reads
backwards.""",
    ),
)
class RNNSequenceRecognizer(AugmentMixin, BaseRNNEstimator):
    """Read a line of symbols (digits, letters, any labels) from an image, without cut points.

    The image is read column by column, left to right, by a recurrent network over local
    convolutional features; trained with the CTC loss (Graves et al. 2006), it learns by
    itself where each symbol is, as CRNN does (Shi et al. 2015). Lines may be of different
    widths and their targets of different lengths, including empty ones. Prediction takes the
    most probable symbol at every step, merges repeats and drops the blanks (greedy CTC
    decoding). ``score`` is the share of lines read exactly; see
    :func:`skrnn.metrics.character_error_rate` for a finer measure.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    alphabet_ : ndarray of shape (n_symbols,)
        The symbols seen in ``fit``, sorted: characters when ``y`` held strings, else the
        labels of the sequences. The network's outputs are the blank and these.
    n_features_in_ : int
        Values per training image (``H * W * C``, of the padded widest line).
    image_shape_ : tuple of int
        ``(H, W, C)`` of the training lines, ``W`` the widest.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module
        (``skrnn._recognizer.LineReader``).
    history_ : list of dict
        Per-epoch training record (``train_loss`` and, with early stopping, ``valid_loss``).
    n_iter_ : int
        Epochs trained.

    See Also
    --------
    skrnn.datasets.make_digit_strings : Lines of handwritten digits to read.
    skrnn.datasets.load_line_folder : Line images and their transcriptions from disk.
    skrnn.metrics.character_error_rate : Edit distance per reference symbol.

    Examples
    --------
    >>> from skrnn import RNNSequenceRecognizer
    >>> from skrnn.datasets import make_digit_strings
    >>> X, y = make_digit_strings(200, min_length=1, max_length=3, random_state=0)
    >>> reader = RNNSequenceRecognizer(hidden_size=16, max_epochs=2, random_state=0).fit(X, y)
    >>> reader.alphabet_.tolist()
    ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
    >>> reader.predict(X[:3]).shape
    (3,)
    >>> 0.0 <= reader.score(X, y) <= 1.0
    True
    """

    _parameter_constraints: dict = {
        **BaseRNNEstimator._parameter_constraints,
        "augment": AugmentMixin._augment_constraint,
        "bidirectional": ["boolean"],
        "conv": [tuple, list, None],
        "stride": [Interval(numbers.Integral, 1, None, closed="left")],
    }
    _module_class = LineReader
    # Chosen with benchmarks/recognition.py: 1,250 steps read 99.7 % of its test lines.
    _base_epochs = 8
    _min_updates = 1250
    _sample_noun = "Lines"
    # Small zooms and contrast changes; shifts could push the first or last symbol out of the
    # line, and flips would make it read backwards.
    _standard_augmentation = {"scale": 0.05, "intensity": 0.1}

    def __init__(
        self,
        cell="gru",
        hidden_size=64,
        num_layers=1,
        bidirectional=True,
        dropout=0.0,
        conv=(16, 32),
        stride=2,
        max_epochs="auto",
        batch_size="auto",
        lr=1e-2,
        optimizer="adam",
        weight_decay=0.0,
        lr_schedule="onecycle",
        max_grad_norm=5.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-3,
        augment="auto",
        device="auto",
        precision="float32",
        n_threads=None,
        random_state=None,
        verbose=0,
        warm_start=False,
        callbacks=None,
        checkpoint=None,
        distributed="auto",
    ):
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.conv = conv
        self.stride = stride
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.augment = augment
        self.device = device
        self.precision = precision
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.distributed = distributed

    # ----------------------------------------------------------------- public API
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> RNNSequenceRecognizer:
        """Train the network on line images ``X`` and what each one reads, ``y``.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, H, W, C), or list of arrays
            Images of one height: an array, or a list of ``(H, w)`` / ``(H, w, C)`` images of
            their own widths (each is padded on the right with its own median value, its
            background, and read to its own width).
        y : array-like of shape (n,)
            What each line reads: strings, or sequences (lists, tuples, 1-D arrays) of any
            hashable labels, of any length (empty ones too); a 2-D array gives one sequence
            per row, and a single label a sequence of one.
        sample_weight : array-like of shape (n,), default=None
            Per-line weights in the loss.

        Returns
        -------
        self : RNNSequenceRecognizer
            The fitted recogniser.
        """
        if y is None:
            raise ValueError(
                "RNNSequenceRecognizer requires y to be passed, but the target y is None; pass "
                "what each image reads (strings or sequences of labels)."
            )
        try:
            return self._fit(X, y, sample_weight)
        finally:
            self.__dict__.pop("_line_widths", None)  # only for this fit's targets

    @dask_aware(lambda self, X: ((), object))
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Read every line.

        Parameters
        ----------
        X : array-like of shape (n, H, W) or (n, H, W, C), or list of arrays
            Line images of the training height and channels, of any width.

        Returns
        -------
        read : ndarray of shape (n,), object
            What each line reads: strings when ``fit`` got strings, else tuples of labels.
        """
        check_is_fitted(self, "net_")
        images, widths = self._read_lines(X, reset=False)
        steps = -(-widths // self.stride)
        device, n_steps = self.net_.device, int(steps.max())

        def make_batch(start, stop):
            width = min(images.shape[2], int(steps[start:stop].max()) * self.stride)
            rows = read_rows(images, slice(start, stop))[:, :, :width]
            pixels = to_device(rows, torch.float32, device)
            return pixels, small_to_device(torch.as_tensor(steps[start:stop]), device)

        def compute(module, batch):
            pixels, lengths = batch
            best = module(pixels).argmax(dim=-1)  # (B, T)
            past = torch.arange(best.shape[1], device=best.device)[None] >= lengths[:, None]
            best = best.masked_fill(past, 0)
            return F.pad(best, (0, n_steps - best.shape[1]))

        batch_size = self._inference_batch_size(int(np.prod(images.shape[1:])))
        paths = self._run_inference(len(images), batch_size, make_batch, compute, np.int64)
        return self._decode(paths)

    def _probe_outputs(self, pixels: int) -> np.ndarray:
        # Greedy decoding hides NaN behind an argmax: check the log-probabilities of a blank
        # line and one of noise, of the training height and at most 64 columns wide (at least
        # one step of `stride` columns).
        height, width, channels = self.image_shape_
        width = min(width, 64, max(1, pixels // height))
        width += -width % self.stride
        return self._probe(probe_images((height, width, channels)))

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """The share of lines read exactly (:func:`skrnn.metrics.sequence_accuracy`).

        Parameters
        ----------
        X : array-like
            Line images, as in :meth:`predict`.
        y : array-like of shape (n,)
            What each line reads, as in :meth:`fit`.
        sample_weight : array-like of shape (n,), default=None
            Per-line weights.

        Returns
        -------
        score : float
            The (weighted) share of lines whose every symbol is read right.

        Raises
        ------
        ValueError
            If ``y`` holds symbols outside ``alphabet_``: this recogniser can never emit them.
        """
        check_is_fitted(self, "net_")
        truth = self._as_sequences(y)
        self._check_known_symbols(truth)
        predicted = self.predict(X)
        if len(predicted) != len(truth):
            raise ValueError(
                f"X and y have different numbers of samples: X has {len(predicted)}, y has "
                f"{len(truth)}."
            )
        return sequence_accuracy(self._to_outputs(truth), predicted, sample_weight=sample_weight)

    # ----------------------------------------------------------------- inputs
    def _read_lines(self, X, *, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        """Validate ``X``; return the lines as one array ``(n, H, W, C)``, padded on the right
        to the widest, and each line's own width."""
        name = type(self).__name__
        if isinstance(X, (list, tuple)) and len(X) and all(hasattr(x, "shape") for x in X):
            X, widths = self._pad_lines(X)
        else:
            widths = None
        if not reset and hasattr(X, "ndim") and X.ndim in (3, 4):
            height = self.image_shape_[0]
            if X.shape[1] != height:
                raise ValueError(
                    f"X has lines {X.shape[1]} pixels high, but this {name} was fitted on "
                    f"lines {height} pixels high; resize them to that height (e.g. "
                    f"load_line_folder(..., height={height}))."
                )
        images = check_images(self, X, reset=reset, fixed_size=False)
        if reset:
            _check_line_height(images.shape[1], "X has lines")
        if widths is None:
            widths = np.full(len(images), images.shape[2], dtype=np.int64)
        return images, widths

    def _pad_lines(self, lines) -> tuple[np.ndarray, np.ndarray]:
        """A list of images of one height and their own widths as one padded array."""
        arrays = []
        for i, line in enumerate(lines):
            array = np.asarray(line)
            if array.ndim not in (2, 3) or array.dtype.kind not in "biuf":
                raise ValueError(
                    f"X[{i}] should be an image (H, W) or (H, W, C) of numbers, got an array "
                    f"of shape {format_shape(array.shape)} and dtype {array.dtype}."
                )
            arrays.append(array if array.ndim == 3 else array[..., None])
        first = arrays[0].shape
        for i, array in enumerate(arrays):
            if array.shape[0] != first[0] or array.shape[2] != first[2]:
                what = "pixels high" if array.shape[0] != first[0] else "channels"
                at = 0 if what == "pixels high" else 2
                raise ValueError(
                    f"X[{i}] is {array.shape[at]} {what} but X[0] is {first[at]}: the lines "
                    "must all have one height and one number of channels. Resize them to one "
                    "height (load_line_folder(..., height=H) does)."
                )
        widths = np.array([array.shape[1] for array in arrays], dtype=np.int64)
        dtype = np.result_type(*arrays)
        padded = np.empty((len(arrays), first[0], int(widths.max()), first[2]), dtype=dtype)
        for line, array in zip(padded, arrays, strict=True):
            line[:, : array.shape[1]] = array
            # The line's background (its median value) fills the rest: blank page.
            line[:, array.shape[1] :] = np.median(array.reshape(-1, first[2]), axis=0)
        return padded, widths

    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        images, widths = self._read_lines(X, reset=reset)
        self._line_widths = widths  # read by _encode_targets during this fit
        return images

    # ----------------------------------------------------------------- targets
    def _as_sequences(self, y) -> list:
        """``y`` as a list of strings, or of tuples of labels."""
        if not isinstance(y, (list, tuple, np.ndarray)) and hasattr(y, "__array__"):
            y = np.asarray(y)  # pandas, array-likes
        if isinstance(y, str) or not hasattr(y, "__len__"):
            raise ValueError(
                f"y must hold one target per image (strings or sequences of labels), got "
                f"{type(y).__name__} {y!r:.60}."
            )
        if isinstance(y, np.ndarray) and y.ndim == 2:
            return [tuple(row) for row in y.tolist()]
        if isinstance(y, np.ndarray) and y.ndim != 1:
            raise ValueError(
                f"y should be 1-D (one target per image) or 2-D (one sequence per row), got "
                f"shape {format_shape(y.shape)}."
            )
        items = y.tolist() if isinstance(y, np.ndarray) else list(y)
        strings = [isinstance(item, str) for item in items]
        if any(strings) and not all(strings):
            i = strings.index(False) if strings[0] else strings.index(True)
            raise ValueError(
                f"y mixes strings and other targets (y[0] is {items[0]!r:.40}, y[{i}] is "
                f"{items[i]!r:.40}); pass only strings or only sequences of labels."
            )
        if items and all(strings):
            return items
        sequences = []
        for i, item in enumerate(items):
            if _is_sequence(item):
                item = item.tolist() if isinstance(item, np.ndarray) else item
                sequence = tuple(item)
            elif item is None or isinstance(item, float) and not np.isfinite(item):
                raise ValueError(f"y[{i}] is {item!r}; every target must be a sequence.")
            else:  # a single label: a sequence of one
                sequence = (item,)
            for symbol in sequence:
                try:
                    hash(symbol)
                except TypeError:
                    raise ValueError(
                        f"y[{i}] holds {symbol!r:.40}, which is not hashable; labels must be "
                        "hashable (ints, strings, ...)."
                    ) from None
            sequences.append(sequence)
        return sequences

    def _check_known_symbols(self, sequences) -> None:
        known = set(self.alphabet_.tolist())
        unknown = {symbol for sequence in sequences for symbol in sequence} - known
        if unknown:
            raise ValueError(
                f"y holds symbols {_sorted_symbols(unknown)[:10]!r} that are not in the "
                f"alphabet_ {self.alphabet_.tolist()!r:.200} this {type(self).__name__} was "
                "fitted with; it can never emit them."
            )

    def _encode_targets(self, y, images, *, fitting, classes=None):
        sequences = self._as_sequences(y)
        if len(sequences) != len(images):
            raise ValueError(
                f"X and y have different numbers of samples: X has {len(images)}, y has "
                f"{len(sequences)}."
            )
        if fitting:
            symbols = {symbol for sequence in sequences for symbol in sequence}
            if not symbols:
                raise ValueError(
                    "Every target in y is empty, so there is nothing to learn to read; give "
                    "the recogniser lines with their text."
                )
            self._reads_strings = isinstance(sequences[0], str)
            self.alphabet_ = _as_alphabet(_sorted_symbols(symbols))
        elif isinstance(sequences[0], str) != self._reads_strings:
            kind = "strings" if self._reads_strings else "sequences of labels"
            raise ValueError(f"This {type(self).__name__} was fitted on {kind}; y must be too.")
        self._check_known_symbols(sequences)
        index = {symbol: i + 1 for i, symbol in enumerate(self.alphabet_.tolist())}
        widths = self._line_widths
        steps = -(-widths // self.stride)
        longest = max(1, max(len(sequence) for sequence in sequences))
        encoded = np.zeros((len(sequences), 2 + longest), dtype=np.int64)
        for i, sequence in enumerate(sequences):
            needed = _needed_steps(sequence)
            if needed > steps[i]:
                repeats = needed - len(sequence)
                because = f" and {repeats} blank(s) between repeated symbols" if repeats else ""
                raise ValueError(
                    f"y[{i}] ({sequence!r:.40}: {len(sequence)} symbols{because}) needs at "
                    f"least {needed} steps, but image X[{i}] is {widths[i]} pixels wide, which "
                    f"gives {steps[i]} steps with stride={self.stride}. The image must be at "
                    f"least {(needed - 1) * self.stride + 1} pixels wide: pad it on the right, "
                    "or lower stride."
                )
            encoded[i, 0] = steps[i]
            encoded[i, 1] = len(sequence)
            encoded[i, 2 : 2 + len(sequence)] = [index[symbol] for symbol in sequence]
        return encoded

    def _to_outputs(self, sequences) -> np.ndarray:
        """Sequences as :meth:`predict` returns them: an object array of str or tuples."""
        out = np.empty(len(sequences), dtype=object)
        out[:] = [s if isinstance(s, str) else tuple(s) for s in sequences]
        return out

    def _decode(self, paths: np.ndarray) -> np.ndarray:
        """Best paths ``(n, T)`` to what they read: repeats merged, then blanks dropped."""
        previous = np.pad(paths[:, :-1], ((0, 0), (1, 0)))
        emitted = (paths != 0) & (paths != previous)
        symbols = self.alphabet_.tolist()
        out = np.empty(len(paths), dtype=object)
        for i, (path, keep) in enumerate(zip(paths, emitted, strict=True)):
            read = [symbols[k - 1] for k in path[keep].tolist()]
            out[i] = "".join(read) if self._reads_strings else tuple(read)
        return out

    # ----------------------------------------------------------------- hooks
    def _check_params(self) -> None:
        super()._check_params()
        check_head(self.conv, "conv")
        if isinstance(self.augment, dict) and self.augment.get("hflip"):
            raise ValueError(
                "augment={'hflip': True} mirrors lines, which then read backwards; leave "
                "hflip out for a recogniser."
            )

    def _learn_inputs(self, images) -> None:
        self._input_mean, self._input_std = channel_statistics(images)

    def _make_dataset(self, images, targets, weights) -> LineDataset:
        return LineDataset(as_batch_source(images), targets, weights, stride=self.stride)

    def _module_params(self) -> dict:
        return {
            "height": self.image_shape_[0],
            "n_channels": self.image_shape_[2],
            "n_outputs": len(self.alphabet_) + 1,
            "cell": self.cell,
            "hidden_size": self._hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "conv": check_head(self.conv, "conv"),
            "stride": self.stride,
            "input_mean": self._input_mean,
            "input_std": self._input_std,
        }

    def _criterion_params(self) -> dict:
        return {"kind": "ctc"}

    def _check_fitted(self) -> None:
        super()._check_fitted()
        alphabet = self.alphabet_
        if (
            not isinstance(alphabet, np.ndarray)
            or alphabet.ndim != 1
            or not len(alphabet)
            or len(set(alphabet.tolist())) != len(alphabet)
        ):
            raise ValueError(
                f"alphabet_ should be a 1-D array of distinct symbols, got {alphabet!r:.100}."
            )
        if not isinstance(self._reads_strings, bool) or (
            self._reads_strings and alphabet.dtype.kind != "U"
        ):
            raise ValueError(
                f"_reads_strings should be a bool (True only with an alphabet_ of characters), "
                f"got {self._reads_strings!r:.40}."
            )
        check_input_statistics(self._input_mean, self._input_std, self.image_shape_[2])
        _check_line_height(self.image_shape_[0], "image_shape_ describes lines")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def _check_line_height(height: int, what: str) -> None:
    """Refuse lines too high for a recogniser, which reads each column whole: with a few
    thousand rows a column, one step of a model loaded from a file could need gigabytes."""
    if height > MAX_LINE_HEIGHT:
        raise ValueError(
            f"{what} {height} pixels high, but a recogniser reads lines of at most "
            f"{MAX_LINE_HEIGHT} pixels (text lines are read at 32 to 128). Resize them, e.g. "
            "load_line_folder(..., height=64)."
        )
