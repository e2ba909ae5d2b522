"""The torch model behind :class:`skrnn.RNNImageGenerator`: an autoregressive pixel RNN.

An image ``(H, W, C)`` is read in raster order, one value (sub-pixel) per time step, so
``T = H * W * C``. The input at step ``t`` describes only values that come *before* ``t``:

* the previous value in raster order (the classic "input shifted by one"),
* the same channel of the pixels in a causal window above and to the left (the rows above,
  ``context_radius`` pixels to each side, and the pixels to the left on the same row), which is
  what the input-to-state convolution of PixelRNN's Row LSTM sees,
* the earlier channels of the same pixel,

each embedded by level, plus a learnt embedding of the position ``t`` and, for class-conditional
models, of the class. A forward-only recurrent cell from the registry carries everything
generated so far, and a small dense head turns its output (with the step's input) into logits
over the ``n_levels`` levels of value ``t``: free per-level scores plus the log-probabilities of
a mixture of discretised logistics over the ordered levels (as in PixelCNN++), so neighbouring
levels start out alike. Dropout on the cell's inputs is the main regulariser. Nothing at step
``t`` depends on values ``>= t``, so the product of the per-step softmaxes is a normalised
distribution over images.

With ``orderings > 1`` the model also reads each image in the other orders given by the
symmetries of its grid (its mirror images and half turn and, for square images, its quarter
turns and transposes): a learnt embedding of the ordering joins each step's input, training
reads every image in a random one of these orders, and an image's probability is the mean of
its probabilities under them. Each term is a normalised distribution over images (an ordering
only rearranges the values), so the mean is one too: a mixture whose components share their
weights and see the same images from different sides.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._modules import RecurrentEncoder, dense_head, layer_sizes
from ._random import Dropout, fit_generator
from .cells import TorchRecurrent
from .sequence import causal_sources


def check_causal(encoder: nn.Module, input_size: int, name) -> None:
    """Raise if the encoder's output at a step changes when a *later* step's input changes.

    Built-in torch cells run forward only; a plugin cell might not (a bidirectional reader, an
    attention layer), and would let each pixel see itself and the pixels after it.
    """
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, input_size, generator=generator)
    changed = x.clone()
    changed[:, -1] = torch.randn(2, input_size, generator=generator)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            before, after = encoder(x), encoder(changed)
    finally:
        encoder.train(was_training)
    if not torch.allclose(before[:, :-1], after[:, :-1], atol=1e-6):
        raise ValueError(
            f"The cell {name!r} is not causal: its output at a time step depends on later "
            "steps, which would let each pixel see itself. RNNImageGenerator needs a cell that "
            "reads forward only (for example 'rnn', 'lstm' or 'gru')."
        )


# The symmetries of the pixel grid, in the order ``orderings`` takes them: 2 adds the mirror
# image, 4 the vertical flip and the half turn, 8 the transposes and the quarter turns (square
# grids only). Each maps an (H, W, ...) array to the array read in that ordering.
GRID_SYMMETRIES = (
    lambda a: a,
    lambda a: a[:, ::-1],
    lambda a: a[::-1, :],
    lambda a: a[::-1, ::-1],
    lambda a: a.swapaxes(0, 1),
    lambda a: a.swapaxes(0, 1)[:, ::-1],
    lambda a: a.swapaxes(0, 1)[::-1, :],
    lambda a: a.swapaxes(0, 1)[::-1, ::-1],
)


def ordering_permutations(image_shape, orderings: int) -> np.ndarray:
    """The raster steps read in each ordering: ``(orderings, H * W * C)``.

    Row ``g`` lists, for every step of ordering ``g``, the step of the plain raster order that
    it reads, so ``levels[:, perms[g]]`` is the image read in ordering ``g``. The channels of a
    pixel keep their order.

    >>> ordering_permutations((2, 2, 1), 2).tolist()
    [[0, 1, 2, 3], [1, 0, 3, 2]]
    """
    height, width, channels = image_shape
    if orderings > 4 and height != width:
        raise ValueError(
            f"orderings={orderings} includes the quarter turns of the image, which need a "
            f"square image; these images are {height}x{width}. Use orderings of 1, 2 or 4."
        )
    index = np.arange(height * width * channels).reshape(height, width, channels)
    perms = np.stack([GRID_SYMMETRIES[g](index).reshape(-1) for g in range(orderings)])
    # Rows compared by their bytes: np.unique(perms, axis=0) sorts them, seconds for a
    # megapixel image.
    if len({perm.tobytes() for perm in perms}) < orderings:
        distinct = max(n for n in (1, 2, 4) if len({perm.tobytes() for perm in perms[:n]}) == n)
        raise ValueError(
            f"orderings={orderings} would read images of {height}x{width} pixels in the same "
            f"order twice (an image one pixel wide or high reads the same when mirrored, and "
            f"flat rows without image_shape are {height}x1 images). Use orderings={distinct}, "
            "or pass image_shape for flat rows."
        )
    return perms


def discretised_logistic_log_probs(params, n_levels: int, n_components: int):
    """Log-probabilities ``(..., K)`` of ``K`` ordered levels under a logistic mixture.

    ``params (..., 3 * M)`` holds the mixture logits, means and log-scales of ``M`` logistics
    on ``[-1, 1]``, where the levels sit evenly spaced; each level receives the mass of its bin
    and the end levels the tails (as in PixelCNN++). Computed from log-sigmoids, so it stays
    finite however sharp a component gets.
    """
    mix, mean, log_scale = params.split(n_components, dim=-1)
    centres = torch.linspace(-1.0, 1.0, n_levels, device=params.device, dtype=params.dtype)
    inv_scale = torch.exp(-log_scale.clamp(min=-7.0))[..., None, :]
    half_bin = 1.0 / (n_levels - 1)
    upper = (centres[:, None] + half_bin - mean[..., None, :]) * inv_scale  # (..., K, M)
    lower = (centres[:, None] - half_bin - mean[..., None, :]) * inv_scale
    # log(sigmoid(u) - sigmoid(l)) = logsigmoid(u) + logsigmoid(-l) + log(1 - exp(l - u))
    width = torch.log(-torch.expm1(-(2.0 * half_bin) * inv_scale))
    inner = F.logsigmoid(upper) + F.logsigmoid(-lower) + width
    first = F.logsigmoid(upper[..., :1, :])
    last = F.logsigmoid(-lower[..., -1:, :])
    per_component = torch.cat([first, inner[..., 1:-1, :], last], dim=-2)
    return torch.logsumexp(per_component + F.log_softmax(mix, dim=-1)[..., None, :], dim=-1)


class OrderedReader(nn.Module):
    """What the generator's networks share about orderings: the permutations that read an
    image in each of its ``n_orderings`` orders (buffers ``perms`` and ``inverse_perms``), the
    ordering of each image in a batch, and the likelihood as the mean over the orderings.

    A subclass calls :meth:`_init_orderings` and sets ``self.ordering`` (an embedding of the
    ordering, or None for one ordering); its ``_logits_in_order(levels, labels, orderings)``
    gives logits ``(B, K, t)`` of levels ``(B, t)`` read in their ordering, all of an image's
    values or its first ones.
    """

    def _init_orderings(self, image_shape, orderings: int) -> None:
        self.n_orderings = int(orderings)
        perms = ordering_permutations(tuple(image_shape), self.n_orderings)
        self.register_buffer("perms", torch.as_tensor(perms), persistent=False)
        self.register_buffer(
            "inverse_perms", torch.as_tensor(np.argsort(perms, axis=1)), persistent=False
        )

    def _orderings_of(self, codes, orderings):
        """``orderings`` if given; else, for a model of several orderings, a random one per
        image in training and the raster order otherwise; None for a model of one."""
        if orderings is None and self.ordering is not None:
            if self.training:
                return torch.randint(
                    self.n_orderings,
                    (len(codes),),
                    device=codes.device,
                    generator=fit_generator(codes.device),
                )
            return torch.zeros(len(codes), dtype=torch.long, device=codes.device)
        return orderings

    def _sampled_orderings(self, n_images: int, device, generator):
        """One ordering per image to sample in, uniformly (the mixture the model scores)."""
        if self.ordering is None:
            return None
        return torch.randint(self.n_orderings, (n_images,), device=device, generator=generator)

    def forward(self, codes, orderings=None):
        """Logits ``(B, K, T)`` of every value, in raster order.

        Each image is read in its ordering from ``orderings`` ``(B,)``; without them, a model
        of several orderings reads each training image in a random one (so every epoch sees
        the images from new sides) and reads in the raster order otherwise.
        """
        codes = codes.long()
        labels, levels = codes[:, 0], codes[:, 1:]
        orderings = self._orderings_of(codes, orderings)
        if orderings is not None:
            levels = levels.gather(1, self.perms[orderings])
        logits = self._logits_in_order(levels, labels, orderings)
        if orderings is not None:  # back to the raster order the targets are in
            back = self.inverse_perms[orderings][:, None].expand(-1, logits.shape[1], -1)
            logits = logits.gather(2, back)
        return logits

    def prefix_logits(self, codes):
        """Logits ``(B, K, t)`` of the first ``t`` values of images read in the raster order,
        from codes ``(B, 1 + t)`` (the class, then those values; whole rows for the grid
        readers): what a check of a loaded model reads, a crop of any image however large."""
        codes = codes.long()
        orderings = None
        if self.ordering is not None:
            orderings = torch.zeros(len(codes), dtype=torch.long, device=codes.device)
        return self._logits_in_order(codes[:, 1:], codes[:, 0], orderings)

    def log_likelihood(self, codes):
        """Log-probability (nats) of each image in ``codes`` ``(B, 1 + T)``, as float64: the
        mean of its probabilities under the model's orderings."""
        levels = codes[:, 1:].long()
        per_ordering = []
        for g in range(self.n_orderings):
            orderings = None
            if self.ordering is not None:
                orderings = torch.full((len(codes),), g, dtype=torch.long, device=codes.device)
            log_probs = F.log_softmax(self(codes, orderings).double(), dim=1)
            per_ordering.append(log_probs.gather(1, levels[:, None]).squeeze(1).sum(dim=1))
        return torch.logsumexp(torch.stack(per_ordering), dim=0) - np.log(self.n_orderings)


class PixelRNN(OrderedReader):
    """Autoregressive pixel model: logits over levels for every value of an image.

    The input is a code array ``(B, 1 + T)``: the class index (0 for unconditional models)
    followed by the level of every value in raster order. The output is logits ``(B, K, T)``
    where logit ``[:, :, t]`` depends only on the class and the levels before ``t``.

    The logits are free per-level scores plus the log-probabilities of a small mixture of
    discretised logistics over the ordered levels. The softmax can still express any
    distribution, but the mixture gives neighbouring levels similar probabilities from the
    start, which matters when there are many levels and few images.
    """

    n_components = 5

    def __init__(
        self,
        *,
        image_shape,
        n_levels,
        n_classes,
        cell,
        hidden_size,
        num_layers,
        dropout,
        embedding_dim,
        context_radius,
        orderings=1,
    ):
        super().__init__()
        self.n_levels = int(n_levels)
        self._init_orderings(image_shape, orderings)
        sources = causal_sources(tuple(image_shape), int(context_radius))
        self.n_steps, n_sources = sources.shape
        # Index n_steps of the padded level array holds the "outside" token.
        sources = np.where(sources < 0, self.n_steps, sources)
        self.register_buffer("sources", torch.as_tensor(sources), persistent=False)
        self.register_buffer(
            "source_offsets", torch.arange(n_sources) * (self.n_levels + 1), persistent=False
        )
        self.context = nn.Embedding(n_sources * (self.n_levels + 1), embedding_dim)
        self.position = nn.Embedding(self.n_steps, embedding_dim)
        self.label = nn.Embedding(n_classes, embedding_dim) if n_classes else None
        self.ordering = (
            nn.Embedding(self.n_orderings, embedding_dim) if self.n_orderings > 1 else None
        )
        # The step input is a sum of embeddings; scale them so that the sum starts at unit size.
        n_terms = n_sources + 1 + int(bool(n_classes)) + int(self.ordering is not None)
        for embedding in (self.context, self.position, self.label, self.ordering):
            if embedding is not None:
                nn.init.normal_(embedding.weight, std=n_terms**-0.5)
        self.input_dropout = Dropout(dropout)
        self.encoder = RecurrentEncoder(
            embedding_dim, cell, hidden_size, num_layers, False, dropout
        )
        if not self._stateful_layers():
            check_causal(self.encoder, embedding_dim, cell)
        width = layer_sizes(hidden_size, num_layers)[-1]
        self.head = dense_head(
            self.encoder.output_size + embedding_dim,
            (width,),
            3 * self.n_components + self.n_levels,
            dropout,
        )

    def logits(self, features):
        """Logits over levels ``(..., K)`` from the head's input features."""
        out = self.head(features)
        ordinal = out[..., : 3 * self.n_components]
        free = out[..., 3 * self.n_components :]
        return free + discretised_logistic_log_probs(ordinal, self.n_levels, self.n_components)

    # ----------------------------------------------------------------- training and scoring
    def step_inputs(self, padded_levels, steps, labels, orderings=None):
        """The input vectors of ``steps`` from the levels ``(B, T + 1)`` (last: outside), read
        in the ``orderings`` ``(B,)`` of each image (None: the raster order)."""
        sources = self.sources[steps]
        if padded_levels.shape[1] <= self.n_steps:  # the first values alone: "outside" is last
            sources = sources.clamp(max=padded_levels.shape[1] - 1)
        neighbours = padded_levels[:, sources] + self.source_offsets
        inputs = self.context(neighbours).sum(dim=-2) + self.position(steps)
        for table, index in ((self.label, labels), (self.ordering, orderings)):
            if table is not None and index is not None:
                vector = table(index)
                inputs = inputs + (vector[:, None] if inputs.dim() == 3 else vector)
        return inputs

    def _logits_in_order(self, levels, labels, orderings):
        """Logits ``(B, K, t)`` of the levels ``(B, t)`` (the first ``t`` values, or all),
        read in each image's ordering."""
        padded = F.pad(levels, (0, 1), value=self.n_levels)
        steps = torch.arange(levels.shape[1], device=levels.device)
        inputs = self.step_inputs(padded, steps, labels, orderings)
        outputs = self.encoder(self.input_dropout(inputs))
        return self.logits(torch.cat([outputs, inputs], dim=-1)).transpose(1, 2)

    # ----------------------------------------------------------------- sampling
    def _stateful_layers(self):
        """The torch recurrent layers of the encoder, or None if it holds another kind of cell."""
        layers = self.encoder.layers
        parts = list(layers) if isinstance(layers, nn.Sequential) else [layers]
        if not all(isinstance(part, (TorchRecurrent, nn.Dropout)) for part in parts):
            return None
        layers = [part.layer for part in parts if isinstance(part, TorchRecurrent)]
        # A bidirectional layer reads ahead; leave it to check_causal, which rejects it.
        return None if any(layer.bidirectional for layer in layers) else layers

    @torch.no_grad()
    def sample(self, labels, *, temperature=1.0, generator=None):
        """Draw images value by value; returns levels ``(B, T)`` in raster order.

        A model of several orderings draws each image's ordering uniformly (the mixture it
        scores), generates the image in that order and puts the values back in raster order.
        Torch's own cells carry their state from step to step. Any other cell is run again on
        the growing prefix at every step (quadratic in ``T``, but it works for every cell).
        """
        n_images = len(labels)
        device = labels.device
        orderings = self._sampled_orderings(n_images, device, generator)
        padded = torch.full(
            (n_images, self.n_steps + 1), self.n_levels, dtype=torch.long, device=device
        )
        layers = self._stateful_layers()
        states = [None] * len(layers) if layers is not None else None
        prefix = []
        for t in range(self.n_steps):
            step = torch.tensor(t, device=device)
            inputs = self.step_inputs(padded, step, labels, orderings)
            if layers is not None:
                output = inputs[:, None]
                for i, layer in enumerate(layers):
                    output, states[i] = layer(output, states[i])
                output = output[:, 0]
            else:
                prefix.append(inputs)
                output = self.encoder(torch.stack(prefix, dim=1))[:, -1]
            logits = self.logits(torch.cat([output, inputs], dim=-1)).float()
            probs = F.softmax(logits / temperature, dim=-1)
            padded[:, t] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        levels = padded[:, :-1]
        if orderings is not None:
            levels = levels.gather(1, self.inverse_perms[orderings])
        return levels
