"""``RNNImageGenerator``: an autoregressive recurrent model of images, pixel by pixel."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import logsumexp
from sklearn.base import DensityMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d
from torch.nn import functional as F

from ._base import MAX_AUTO_EPOCHS, BaseRNNEstimator
from ._data import ArrayDataset, as_batch_source, small_to_device
from ._docs import fill_parameter_docs
from ._labels import ClassLabelsMixin
from ._limits import check_generator_size
from ._pixelgrid import READERS, GridPixelModel
from ._pixelrnn import PixelRNN
from ._utils import seed_from
from ._validation import (
    check_hidden_size,
    check_image_shape,
    check_images,
    check_target_length,
)
from .sequence import raster_values

# reader="auto" reads images of at most this many values pixel by pixel, larger ones by rows:
# the pixel reader models the 8x8 digits best (a test NLL of 75.1 nats against 80.7 for the
# Row LSTM), the Row LSTM trains on 28x28 images 5-7 times as fast (benchmarks/README.md).
AUTO_PIXEL_VALUES = 256
# The "auto" sizes of each kind of reader, chosen on the digits (pixels) and binarized MNIST
# (rows): a per-pixel LSTM needs width and, on small data, dropout; the convolutional grid
# readers share their weights across the image and learn from far more values per image.
AUTO_SIZES = {
    "pixels": {"hidden_size": 256, "num_layers": 1, "embedding_dim": 64, "dropout": 0.4},
    "grid": {"hidden_size": 32, "num_layers": 2, "embedding_dim": 8, "dropout": 0.0},
}
# max_epochs="auto" trains at most the epochs that predict this many values.
MAX_AUTO_VALUES = 160_000_000
# Integer data with more distinct values than this needs an explicit n_levels.
MAX_INFERRED_LEVELS = 4096

# Values this close to a level (in units of the level spacing) count as that level.
_LEVEL_TOLERANCE = 1e-6


def _value_summary(images) -> tuple[float, float, bool, bool]:
    """Smallest and largest value of ``images``, whether all are integers and whether they
    take only those two values (binary images), read in slices."""
    low, high, integral, two_valued = np.inf, -np.inf, True, True
    step = max(1, (1 << 22) // max(1, int(np.prod(images.shape[1:]))))
    for start in range(0, len(images), step):
        chunk = np.asarray(images[start : start + step])
        chunk_low, chunk_high = float(chunk.min()), float(chunk.max())
        if two_valued:  # every value so far is low or high: is it still?
            values = {v for v in (low, high, chunk_low, chunk_high) if np.isfinite(v)}
            two_valued = len(values) <= 2 and bool(
                np.all((chunk == chunk_low) | (chunk == chunk_high))
            )
        low, high = min(low, chunk_low), max(high, chunk_high)
        if integral and chunk.dtype.kind == "f":
            integral = bool(np.all(np.mod(chunk, 1) == 0))
    return low, high, integral, two_valued


@fill_parameter_docs(
    cell=(
        "str or callable",
        """The recurrent cell: a name from :func:`skrnn.cells.list_cells` (``"rnn"``,
``"lstm"``, ``"gru"`` or a plugin) or a cell factory. It must read forward only. The default
is the LSTM, as in PixelRNN.""",
    ),
    dropout=(
        '"auto" or float',
        """Dropout on the recurrent layers' inputs, between layers and in the dense head (the
pixel reader) or on each layer's output (the grid readers). Pixel models overfit small data
sets quickly; this is their main regulariser. ``"auto"``: 0.4 for the pixel reader, 0 for the
grid readers.""",
    ),
    n_levels=(
        "int or None",
        """Number of discrete levels per value. None infers them from the training images (see
above); an int quantises the values into that many evenly spaced levels.""",
    ),
    hidden_size=(
        '"auto", int or tuple of int',
        """Units of the recurrent layers (the pixel reader; a tuple gives one layer per entry) or
units per image channel of every layer (the grid readers). ``"auto"``: 256 for the pixel reader,
32 for the grid readers.""",
    ),
    num_layers=(
        '"auto" or int',
        """Recurrent layers (of an int ``hidden_size``). ``"auto"``: 1 for the pixel reader, 2
for the grid readers.""",
    ),
    reader=(
        '{"auto", "pixels", "rows", "diagonal"}',
        """How the network reads an image. ``"pixels"``: one value per recurrent step (``H * W
* C`` sequential steps) with ``cell`` and the causal window of ``context_radius``.
``"rows"``: PixelRNN's Row LSTM, whose convolutional LSTM computes the states of a whole row
at once (``H`` steps; each state sees a triangle of the rows above). ``"diagonal"``:
PixelRNN's Diagonal BiLSTM, a whole diagonal at once from the left and from the right
(``H + W - 1`` steps each; each state sees every value before it). Both grid readers start
with a 7x7 masked convolution, stack ``num_layers`` layers of ``hidden_size`` units per image
channel with residual connections, keep every value's distribution causal with masked
convolutions, and take no ``cell`` or ``context_radius``. ``"auto"`` reads images of at most
256 values (16x16) by pixels, which models them best (on the 8x8 digits a test NLL of 75.1
nats against 80.7 by rows), and larger ones by rows, which trains on 28x28 images five to
seven times as fast (on binarized MNIST's 50,000 training images, 85.5 nats on valid after a
fit of 15-16 minutes on two cores).""",
    ),
    context_radius=(
        "int",
        """Reach of the causal window fed to each step: the ``context_radius`` rows above and
the pixels up to ``context_radius`` columns to each side (and to the left on the current row).
0 feeds only the previous value in raster order.""",
    ),
    embedding_dim=(
        '"auto" or int',
        """Size of the learnt embeddings of levels (and, for the pixel reader, of positions and
classes). ``"auto"``: 64 for the pixel reader, 8 for the grid readers.""",
    ),
    orderings=(
        "{1, 2, 4, 8}",
        """How many orders the model reads each image in: 1 is the raster order alone; 2 adds
the mirror image (read right to left), 4 also the image upside down (flipped, and turned by
half a turn), 8 also its transposes and quarter turns (square images only). The model learns
every ordering, each marked by a learnt embedding, reading every training image in a random
one at each epoch, and scores an image by the mean of its probabilities under them, an exact
mixture. This generalises better from few images (see the class description), at the cost of
longer training (``max_epochs="auto"`` trains ``orderings / 2`` times as many epochs) and
``orderings`` times the scoring time.""",
    ),
)
class RNNImageGenerator(DensityMixin, ClassLabelsMixin, BaseRNNEstimator):
    """Generate images pixel by pixel with an autoregressive recurrent network.

    The model reads each image in raster order, one value at a time, and predicts the discrete
    level of every value from the values before it, as PixelRNN does (van den Oord et al.,
    2016): the input at each step is the previous value together with the pixels of a causal
    window above and to the left (what the input-to-state convolution of PixelRNN's Row LSTM
    sees), a forward-only recurrent cell carries everything generated so far, and a softmax
    gives the probability of each level. The product of these softmaxes is a normalised
    distribution over images, so :meth:`score_samples` gives exact log-likelihoods and
    :meth:`sample` draws new images. With labels in :meth:`fit` the model is class-conditional.

    Pixel values are modelled as ``n_levels`` discrete levels. Binary images (boolean, or any
    dtype with only two distinct values, such as the 0/1 ``uint8`` images of binarized MNIST or
    0/255 masks) have those two levels: each value is a Bernoulli draw given the values
    before it (the softmax over two levels is the logistic of their difference). Other integer
    images use their own values: ``uint8`` images have 256 levels, other integer-valued images
    (such as the 0-16 digits of :func:`skrnn.datasets.load_digits_images`) the integers from
    ``min(0, X.min())`` to ``X.max()``. With ``n_levels`` given, or for non-integer values,
    the levels are ``n_levels`` evenly spaced values across that range (256 by default) and
    every value is quantised to the nearest one.

    Small images are read one value per recurrent step, larger ones a whole row per step
    (``reader="auto"``; PixelRNN's Row LSTM, or its Diagonal BiLSTM with ``reader="diagonal"``).
    On the bundled 8x8 digits the defaults (an LSTM of 256 units, dropout 0.4, 30 epochs) reach
    a test negative log-likelihood of about 75 nats per image on an 80/20 split, 30 % below
    independent per-pixel categoricals, in two to three minutes on one CPU core; an
    :class:`~skrnn.RNNImageClassifier` recognises about 98 % of their class-conditional samples
    (see ``benchmarks/generation.py``). ``orderings=8`` with ``dropout=0.2`` lowers that NLL
    by about 2.5 nats (33 % below the independent categoricals) for four times the fit time.
    On binarized MNIST (50,000 images of 28x28) the defaults (a Row LSTM of two layers of 32
    units, 4 epochs) reach 85.5 nats on the valid split in 15-16 minutes on two CPU cores, below
    NADE's 88.3 (``benchmarks/binarized_mnist.py``).

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    levels_ : ndarray of shape (``n_levels_``,)
        The value of each level, ascending.
    n_levels_ : int
        Number of levels.
    classes_ : ndarray of shape (n_classes,)
        The class labels, when fitted with ``y``.
    class_prior_ : ndarray of shape (n_classes,)
        Share of each class in the training labels, when fitted with ``y``; used to sample and
        score without labels.
    n_features_in_ : int
        Values per image (``H * W * C``).
    image_shape_ : tuple of int
        ``(H, W, C)`` of the training images.
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.module_`` is the torch module.
    history_ : list of dict
        Per-epoch training record (``train_loss``, the mean negative log-likelihood per value
        in nats, and ``valid_loss`` with early stopping). With ``orderings > 1`` the training
        loss is that of each image's random ordering, and ``valid_loss`` that of the raster
        order alone (one member of the mixture :meth:`score_samples` scores).
    n_iter_ : int
        Epochs trained.

    See Also
    --------
    sklearn.neighbors.KernelDensity, sklearn.mixture.GaussianMixture :
        Density estimators with the same ``score_samples`` / ``sample`` interface.

    Notes
    -----
    :meth:`sample` returns the images alone (like :class:`~sklearn.neighbors.KernelDensity`),
    not the ``(X, y)`` pair of :class:`~sklearn.mixture.GaussianMixture`; ``return_y=True``
    also returns the class of each image.

    Likelihoods are probabilities of the discrete levels (a probability mass, not a density
    over real values), in nats. The recurrent cell must read forward only; ``fit`` checks this
    for cells other than torch's own. Torch's cells carry their state while sampling; any other
    cell is re-run on the growing prefix at each step, which is slower but exact.

    References
    ----------
    A. van den Oord, N. Kalchbrenner and K. Kavukcuoglu, "Pixel Recurrent Neural Networks",
    ICML 2016.

    Examples
    --------
    >>> from skrnn import RNNImageGenerator
    >>> from skrnn.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> gen = RNNImageGenerator(hidden_size=16, max_epochs=1, random_state=0).fit(X[:200])
    >>> gen.n_levels_
    17
    >>> gen.sample(2, random_state=0).shape
    (2, 8, 8)
    >>> gen.score_samples(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        **BaseRNNEstimator._parameter_constraints,
        "n_levels": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "context_radius": [Interval(numbers.Integral, 0, None, closed="left")],
        "image_shape": [tuple, list, None],
        "orderings": [Options(numbers.Integral, {1, 2, 4, 8})],
        "reader": [StrOptions({*READERS, "auto"})],
        "hidden_size": [
            *BaseRNNEstimator._parameter_constraints["hidden_size"],
            StrOptions({"auto"}),
        ],
        "num_layers": [
            *BaseRNNEstimator._parameter_constraints["num_layers"],
            StrOptions({"auto"}),
        ],
        "dropout": [*BaseRNNEstimator._parameter_constraints["dropout"], StrOptions({"auto"})],
        "embedding_dim": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
    }
    # Model files written before ``reader`` existed hold pixel readers.
    _value_before_parameter_existed = {
        **BaseRNNEstimator._value_before_parameter_existed,
        "reader": "pixels",
    }

    @property
    def _module_class(self):
        return PixelRNN if self._reader() == "pixels" else GridPixelModel

    def _reader(self) -> str:
        """``reader``, with ``"auto"`` resolved on the training images' size."""
        if self.reader != "auto":
            return self.reader
        return "pixels" if int(np.prod(self.image_shape_)) <= AUTO_PIXEL_VALUES else "rows"

    def _size(self, name: str):
        """``name`` (hidden_size, num_layers, embedding_dim or dropout), with ``"auto"``
        resolved for the reader (see the class description)."""
        value = getattr(self, name)
        if not (isinstance(value, str) and value == "auto"):
            return value
        if name == "num_layers" and isinstance(self.hidden_size, (tuple, list)):
            return 1  # a tuple of sizes gives one layer per entry
        return AUTO_SIZES["pixels" if self._reader() == "pixels" else "grid"][name]

    def _layer_sizes(self) -> tuple:
        # "auto" sizes are resolved once the images are known; check the rest now.
        return tuple(
            1 if isinstance(value, str) and value == "auto" else value
            for value in (self.hidden_size, self.num_layers)
        )

    def __init__(
        self,
        cell="lstm",
        hidden_size="auto",
        num_layers="auto",
        dropout="auto",
        n_levels=None,
        reader="auto",
        context_radius=1,
        embedding_dim="auto",
        orderings=1,
        image_shape=None,
        max_epochs="auto",
        batch_size="auto",
        lr=3e-3,
        optimizer="adam",
        weight_decay=0.0,
        lr_schedule="onecycle",
        max_grad_norm=5.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-3,
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
        self.dropout = dropout
        self.n_levels = n_levels
        self.reader = reader
        self.context_radius = context_radius
        self.embedding_dim = embedding_dim
        self.orderings = orderings
        self.image_shape = image_shape
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
        self, X: ArrayLike, y: ArrayLike | None = None, sample_weight: ArrayLike | None = None
    ) -> RNNImageGenerator:
        """Learn the distribution of the images ``X`` (given the labels ``y``, if any).

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, H * W * C)
            Training images (flat rows need ``image_shape``). Their values are modelled as
            discrete levels (see the class description).
        y : array-like of shape (n,), default=None
            Class labels of any type. With labels the model learns ``p(image | label)``, and
            :meth:`sample` can be asked for images of a given class.
        sample_weight : array-like of shape (n,), default=None
            Per-image weights in the loss.

        Returns
        -------
        self : RNNImageGenerator
            The fitted generator.
        """
        return self._fit(X, y, sample_weight)

    def score_samples(self, X: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
        """Log-likelihood of each image, in nats.

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, H * W * C)
            Images of the fitted shape, with values among the fitted levels.
        y : array-like of shape (n,), default=None
            For a class-conditional generator: score ``log p(image | label)``. Without labels
            it scores ``log p(image)``, summing over the classes weighted by
            ``class_prior_``. Ignored by a generator fitted without labels.

        Returns
        -------
        log_likelihood : ndarray of shape (n,)
            The log-probability of each image, in nats.
        """
        check_is_fitted(self, "net_")
        images = self._check_X(X, reset=False)
        levels = self._quantise(images)
        if self._conditional and y is None:
            per_class = [
                self._log_likelihood(levels, np.full(len(levels), k)) + np.log(prior)
                for k, prior in enumerate(self.class_prior_)
            ]
            return logsumexp(np.stack(per_class), axis=0)
        labels = self._label_indices(y, len(levels)) if self._conditional else None
        return self._log_likelihood(levels, labels)

    def score(self, X: ArrayLike, y: ArrayLike | None = None) -> float:
        """Mean log-likelihood of the images ``X``, in nats (higher is better).

        Parameters
        ----------
        X : array-like of shape (n, H, W), (n, H, W, C) or (n, H * W * C)
            Images, as in :meth:`score_samples`.
        y : array-like of shape (n,), default=None
            Labels, as in :meth:`score_samples`.

        Returns
        -------
        score : float
            The mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X, y)))

    def sample(
        self,
        n_samples: int = 1,
        y=None,
        *,
        temperature: float = 1.0,
        random_state=None,
        return_y: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Draw new images, value by value.

        Parameters
        ----------
        n_samples : int, default=1
            Number of images.
        y : label or array-like of shape (n_samples,), default=None
            For a class-conditional generator: the class of each image, or one class for all.
            None draws the classes from ``class_prior_``.
        temperature : float, default=1.0
            Divides the logits before each draw: below 1 the images are more typical and less
            varied, above 1 more varied.
        random_state : int, RandomState instance or None, default=None
            Seeds the draws; an int gives the same images on every call (on the same device).
        return_y : bool, default=False
            Also return the class of each image (class-conditional generators only).

        Returns
        -------
        X : ndarray
            ``n_samples`` images in the layout of the training ``X`` (``(n, H, W)``,
            ``(n, H, W, C)`` or flat rows) whose values are among ``levels_``; of the
            training dtype when that was an integer type, else float64.
        y : ndarray of shape (n_samples,)
            The class of each image, only with ``return_y=True``.
        """
        check_is_fitted(self, "net_")
        if not isinstance(n_samples, numbers.Integral) or isinstance(n_samples, bool):
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
        if n_samples < 1:
            raise ValueError(f"n_samples must be at least 1, got {n_samples}.")
        if (
            not isinstance(temperature, numbers.Real)
            or not np.isfinite(temperature)
            or temperature <= 0
        ):
            raise ValueError(f"temperature must be a positive number, got {temperature!r}.")
        if return_y and not self._conditional:
            raise ValueError(
                "return_y=True needs a class-conditional generator; this one was fitted without y."
            )
        rng = check_random_state(random_state)
        if y is None:
            labels = (
                rng.choice(len(self.classes_), size=n_samples, p=self.class_prior_)
                if self._conditional
                else np.zeros(n_samples, dtype=np.int64)
            )
        else:
            if not self._conditional:
                raise ValueError(
                    "sample got y, but this generator was fitted without labels; fit it with "
                    "y to sample images of a given class."
                )
            if np.ndim(y) == 0:
                y = np.full(n_samples, y)
            labels = self._label_indices(y, n_samples, name="n_samples")
        device = self.net_.device
        generator = torch.Generator(device=device)
        generator.manual_seed(seed_from(rng))
        levels = self._run_inference(
            n_samples,
            self._inference_batch_size(self.n_features_in_),
            lambda start, stop: small_to_device(torch.as_tensor(labels[start:stop]), device),
            lambda module, batch: module.sample(
                batch, temperature=float(temperature), generator=generator
            ),
            dtype=np.int64,
        )
        images = self.levels_[levels].astype(self._sample_dtype)
        images = images.reshape((n_samples,) + self._input_layout)
        if return_y:
            return images, self.classes_[labels]
        return images

    # ----------------------------------------------------------------- levels and labels
    def _fit_levels(self, images):
        dtype = images.dtype
        if dtype == np.bool_:
            low, high, integral, binary = 0.0, 1.0, True, True
        else:
            low, high, integral, binary = _value_summary(images)
            if dtype == np.uint8 and not binary:
                low, high = 0.0, 255.0
            elif integral and not binary:
                low = min(low, 0.0)
        high = max(high, low + 1.0)  # constant images still get two levels
        if self.n_levels is not None:
            n_levels = int(self.n_levels)
        elif binary:  # two values, whatever they are: one Bernoulli per value
            n_levels = 2
        elif not integral:
            n_levels = 256
        else:
            n_levels = int(high - low) + 1
            if n_levels > MAX_INFERRED_LEVELS:
                raise ValueError(
                    f"X holds integers from {low:g} to {high:g}, which would make {n_levels} "
                    f"levels (at most {MAX_INFERRED_LEVELS} are inferred); pass n_levels to "
                    "quantise the values into fewer levels."
                )
        self.levels_ = np.linspace(low, high, n_levels)
        self.n_levels_ = n_levels
        self._exact_levels = (integral and n_levels == int(high - low) + 1) or (
            binary and n_levels == 2
        )
        integer_levels = bool(np.all(np.mod(self.levels_, 1) == 0))
        self._sample_dtype = dtype if dtype.kind in "biu" and integer_levels else np.float64

    def _quantise(self, images) -> np.ndarray:
        """Level indices ``(n, T)`` of ``images``, checked against the fitted levels."""
        low, high = self.levels_[0], self.levels_[-1]
        spacing = (high - low) / (self.n_levels_ - 1)
        tolerance = _LEVEL_TOLERANCE * spacing
        dtype = np.uint8 if self.n_levels_ <= 256 else np.int32
        levels = np.empty((len(images), self.n_features_in_), dtype=dtype)
        step = max(1, (1 << 22) // max(1, self.n_features_in_))
        name = type(self).__name__
        for start in range(0, len(images), step):
            values = raster_values(np.asarray(images[start : start + step], dtype=np.float64))
            smallest, largest = values.min(), values.max()
            if smallest < low - tolerance or largest > high + tolerance:
                raise ValueError(
                    f"X has values outside the levels this {name} was fitted with: its values "
                    f"run from {smallest:g} to {largest:g}, but the {self.n_levels_} levels run "
                    f"from {low:g} to {high:g}. Pass images on the scale of the training images."
                )
            position = (values - low) / spacing
            index = np.rint(position)
            if self._exact_levels and np.abs(position - index).max() > _LEVEL_TOLERANCE:
                bad = values[np.abs(position - index) > _LEVEL_TOLERANCE][0]
                raise ValueError(
                    f"X has values that are not among the {self.n_levels_} levels this {name} "
                    f"was fitted with (the integers {low:g} to {high:g}), for example {bad:g}. "
                    "Pass images on the scale of the training images, or fit with n_levels to "
                    "quantise the values."
                )
            levels[start : start + step] = np.clip(index, 0, self.n_levels_ - 1)
        return levels

    @property
    def _conditional(self) -> bool:
        return hasattr(self, "classes_")

    def _fit_classes(self, y, images) -> None:
        if y is None:
            for attribute in ("classes_", "class_prior_"):
                self.__dict__.pop(attribute, None)
            return
        y = column_or_1d(y, warn=True)
        check_target_length(images, y)
        check_classification_targets(y)
        self._learn_classes(y)
        counts = np.bincount(self._encode_labels(y), minlength=len(self.classes_))
        self.class_prior_ = counts / counts.sum()

    def _label_indices(self, y, n_images, *, name="X") -> np.ndarray:
        """Class indices of the labels ``y`` of ``n_images`` images (or samples to draw)."""
        y = column_or_1d(y, warn=True)
        if len(y) != n_images:
            if name == "X":
                raise ValueError(
                    f"X and y have different numbers of samples: X has {n_images}, y has {len(y)}."
                )
            raise ValueError(
                f"y has {len(y)} labels but n_samples={n_images}; pass one label per image or "
                "a single label for all."
            )
        return self._encode_labels(y).astype(np.int64)

    def _codes(self, levels, labels) -> np.ndarray:
        """What the torch module reads: the class index, then the level of every value."""
        labels = np.zeros(len(levels), dtype=np.int64) if labels is None else labels
        dtype = np.int64 if self._conditional and len(self.classes_) > 255 else levels.dtype
        codes = np.empty((len(levels), 1 + levels.shape[1]), dtype=dtype)
        codes[:, 0] = labels
        codes[:, 1:] = levels
        return codes

    def _probe_outputs(self, pixels: int) -> np.ndarray:
        # The log-probabilities of the first rows of an image of the lowest level and of one
        # of random levels, of the first class if any, read in the raster order.
        height, width, channels = self.image_shape_
        n_values = max(1, min(height, pixels // width)) * width * channels
        levels = np.zeros((2, n_values), dtype=np.int64)
        levels[1] = np.random.default_rng(0).integers(0, self.n_levels_, n_values)
        labels = np.zeros(2, dtype=np.int64) if self._conditional else None

        def log_probs(module, codes):
            return F.log_softmax(module.prefix_logits(codes).double(), dim=1)

        return self._probe(self._codes(levels, labels).astype(np.int64), log_probs, np.float64)

    # ----------------------------------------------------------------- inference
    def _log_likelihood(self, levels, labels) -> np.ndarray:
        device = self.net_.device

        def make_batch(start, stop):
            batch_labels = None if labels is None else labels[start:stop]
            codes = self._codes(levels[start:stop], batch_labels)
            return small_to_device(torch.as_tensor(codes.astype(np.int64)), device)

        return self._run_inference(
            len(levels),
            self._inference_batch_size(self.n_features_in_),
            make_batch,
            lambda module, codes: module.log_likelihood(codes),
            dtype=np.float64,
            fixed_size=True,
        )

    def _inference_batch_size(self, values_per_image):
        # Logits hold n_levels values per pixel; keep a batch's logits near 64 MB.
        per_image = self.n_levels_ * int(values_per_image) * 8
        return int(np.clip((1 << 26) // per_image, 1, self._largest_inference_batch()))

    # ----------------------------------------------------------------- hooks
    def _epochs(self, n_fit: int) -> int:
        """The base rule, times ``orderings / 2`` for ``"auto"`` (every epoch reads each image
        in one of the orderings, which all have to be learnt), and for ``"auto"`` at most as
        many epochs as predict ``MAX_AUTO_VALUES`` values: an epoch of 50,000 images of 28x28
        predicts 39 million values, and 4 of them teach a model more than 30 epochs of the
        1,437 digits' 92,000."""
        epochs = super()._epochs(n_fit)
        if self.max_epochs != "auto":
            return epochs
        epochs = self._for_every_ordering(epochs)
        values = max(n_fit, 1) * getattr(self, "n_features_in_", 0)
        return max(1, min(epochs, MAX_AUTO_VALUES // values)) if values else epochs

    def _expected_auto_epochs(self) -> int:
        return self._for_every_ordering(super()._expected_auto_epochs())

    def _for_every_ordering(self, epochs: int) -> int:
        """``epochs`` times ``orderings / 2``, at most ``MAX_AUTO_EPOCHS``."""
        return min(epochs * max(1, self.orderings // 2), MAX_AUTO_EPOCHS)

    def _check_X(self, X, *, reset):
        return check_images(self, X, reset=reset, image_shape=check_image_shape(self.image_shape))

    def _encode_targets(self, y, images, *, fitting, classes=None):
        """The class index of every image (None for an unconditional generator)."""
        if fitting:
            self._fit_classes(y, images)
        elif y is not None and not self._conditional:
            raise ValueError(
                "fit got y, but this generator was first fitted without labels; keep fitting "
                "without y, or set warm_start=False to start a class-conditional model."
            )
        elif y is None and self._conditional:
            raise ValueError(
                "This generator was fitted with labels; pass y to continue training it."
            )
        return self._label_indices(y, len(images)) if self._conditional else None

    def _check_fitted(self) -> None:
        super()._check_fitted()
        orderings = self.orderings if isinstance(self.orderings, numbers.Integral) else 1
        check_generator_size(self.image_shape_, int(orderings))
        levels, n_levels = self.levels_, self.n_levels_
        if (
            not isinstance(n_levels, numbers.Integral)
            or isinstance(n_levels, bool)
            or n_levels < 2
            or (self.n_levels is not None and n_levels != self.n_levels)
        ):
            raise ValueError(
                f"n_levels_ should be an int of at least 2 (n_levels if set), got {n_levels!r:.40}."
            )
        if (
            not isinstance(levels, np.ndarray)
            or levels.dtype != np.float64
            or levels.shape != (n_levels,)
            or not np.isfinite(levels).all()
            or not np.allclose(levels, np.linspace(levels[0], levels[-1], n_levels))
            or not levels[-1] > levels[0]
        ):
            raise ValueError(
                f"levels_ should be {n_levels} evenly spaced, increasing float64 values, got "
                f"{levels!r:.100}."
            )
        integral = bool(np.all(np.mod(levels, 1) == 0))
        if not isinstance(self._exact_levels, bool) or (
            self._exact_levels
            and not (integral and levels[-1] - levels[0] == n_levels - 1)
            and n_levels != 2
        ):
            raise ValueError(
                f"_exact_levels should be True only for two levels or levels that are "
                f"consecutive integers, "
                f"got {self._exact_levels!r:.40}."
            )
        try:
            dtype = np.dtype(self._sample_dtype)
        except (TypeError, ValueError):
            dtype = None
        if dtype is None or not (
            dtype == np.float64
            or (
                dtype.kind in "biu"
                and integral
                and levels[0] >= (0 if dtype.kind == "b" else np.iinfo(dtype).min)
                and levels[-1] <= (1 if dtype.kind == "b" else np.iinfo(dtype).max)
            )
        ):
            raise ValueError(
                f"_sample_dtype should be float64, or an integer dtype that holds every level, "
                f"got {self._sample_dtype!r:.40}."
            )
        if self._conditional:
            prior = getattr(self, "class_prior_", None)
            if (
                not isinstance(prior, np.ndarray)
                or prior.shape != self.classes_.shape
                or prior.dtype.kind != "f"
                or not np.isfinite(prior).all()
                or (prior < 0).any()
                or abs(prior.sum() - 1) > 1e-9
            ):
                raise ValueError(
                    f"class_prior_ should be the share of each of the {len(self.classes_)} "
                    f"classes, summing to 1, got {prior!r:.100}."
                )
        elif hasattr(self, "class_prior_"):
            raise ValueError("class_prior_ is set, but classes_ is not.")
        # The module's causal window table (a row of sources per step, see causal_sources)
        # is built before the weights can be compared with the model: bound it far above
        # what a trainable model needs (64x64 colour images with a window of radius 3 take
        # 28 sources x 12,288 steps), so that a crafted file cannot make it huge.
        radius = self.context_radius
        n_sources = 2 * radius * radius + 2 * radius + self.image_shape_[2]
        if n_sources > 1 << 12 or n_sources * self.n_features_in_ > 1 << 22:
            raise ValueError(
                f"context_radius={radius} on images of shape {self.image_shape_} makes a "
                f"causal window table of {n_sources} x {self.n_features_in_} steps, larger "
                "than any model a fit can train."
            )

    def _learn_inputs(self, images) -> None:
        self._fit_levels(images)

    def _make_dataset(self, images, labels, weights):
        # The module reads codes (the class, then the level of every value), not the images.
        codes = self._codes(self._quantise(images), labels)
        source = as_batch_source(codes, dtype=torch.int64)
        return ArrayDataset(source, np.ascontiguousarray(codes[:, 1:]), weights, dtype=torch.int64)

    def _module_params(self):
        reader = self._reader()
        units = check_hidden_size(self._size("hidden_size"), self._size("num_layers"))
        params = {
            "image_shape": self.image_shape_,
            "n_levels": self.n_levels_,
            "n_classes": len(self.classes_) if self._conditional else 0,
            "num_layers": self._size("num_layers"),
            "dropout": self._size("dropout"),
            "embedding_dim": self._size("embedding_dim"),
            "orderings": self.orderings,
        }
        if reader == "pixels":
            return {
                **params,
                "cell": self.cell,
                "hidden_size": units,
                "context_radius": self.context_radius,
            }
        self._check_grid_reader(reader, units)
        if isinstance(units, tuple):  # one size per layer, all equal
            params["num_layers"], units = len(units), units[0]
        return {**params, "reader": reader, "hidden_size": int(units)}

    def _check_grid_reader(self, reader: str, units) -> None:
        """Refuse what the row and diagonal readers, PixelRNN's own convolutional LSTMs,
        cannot take."""
        if isinstance(units, tuple) and len(set(units)) > 1:
            raise ValueError(
                f"reader={reader!r} has the same units in every layer, joined by residual "
                f"connections; hidden_size={self.hidden_size!r} gives layers of different "
                "sizes. Pass one int and num_layers."
            )
        for name, default in (("cell", "lstm"), ("context_radius", 1)):
            if getattr(self, name) != default:
                chosen = "" if self.reader == reader else f" (reader='auto' chose {reader!r})"
                raise ValueError(
                    f"{name}={getattr(self, name)!r} applies to reader='pixels' only; "
                    f"reader={reader!r}{chosen} reads with PixelRNN's convolutional LSTM and "
                    f"its masked convolutions. Leave {name} at {default!r}, or use "
                    "reader='pixels'."
                )

    def _criterion_params(self):
        return {"kind": "cross_entropy"}
