"""The generator's grid readers: PixelRNN's Row LSTM and Diagonal BiLSTM.

:class:`skrnn._pixelrnn.PixelRNN` reads an image one value per recurrent step, ``H * W * C``
sequential steps. The readers here follow the PixelRNN paper (van den Oord et al., 2016):
a recurrent layer computes the states of a whole row (Row LSTM, ``H`` steps) or of a whole
diagonal (Diagonal BiLSTM, ``H + W - 1`` steps per direction) at once, with convolutions, and
masked convolutions keep every value's distribution causal:

* the first layer is a 7x7 convolution with mask A: the value at ``(i, j, c)`` sees the
  values of the rows above, of the pixels to its left and the earlier channels of its own
  pixel, never itself;
* every later convolution that reads the current row has mask B (the same, plus the features
  of its own channel at its own pixel, which lower layers made causal);
* the recurrences only read states of values that come before.

The features of each layer are split into one group per image channel (``hidden_size`` units
per channel), and the masks let group ``c`` read groups ``< c`` (mask A) or ``<= c`` (mask B) at
the same pixel, so colour images are modelled channel by channel, as in the paper. Layers are
joined by residual connections; two 1x1 convolutions with mask B end in logits over the
levels of every value.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._pixelrnn import OrderedReader
from ._random import Dropout

READERS = ("pixels", "rows", "diagonal")


def causal_mask(out_groups, in_groups, kernel, kind: str) -> torch.Tensor:
    """The mask of a convolution whose output at ``(i, j)`` may read only what comes before.

    Parameters
    ----------
    out_groups, in_groups : sequence of int
        The image channel of each output and each input feature.
    kernel : tuple of int
        ``(kh, kw)``, both odd.
    kind : {"A", "B"}
        At the kernel's centre, output group ``g`` reads input groups ``< g`` (A) or ``<= g``
        (B). Rows above the centre are read whole, the centre row up to the centre, rows
        below not at all.

    Returns
    -------
    mask : torch.Tensor of shape (len(out_groups), len(in_groups), kh, kw)

    Examples
    --------
    >>> causal_mask([0], [0], (3, 3), "A")[0, 0].tolist()
    [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    kh, kw = kernel
    mask = torch.zeros(len(out_groups), len(in_groups), kh, kw)
    mask[:, :, : kh // 2] = 1.0
    mask[:, :, kh // 2, : kw // 2] = 1.0
    out_groups = torch.as_tensor(list(out_groups))[:, None]
    in_groups = torch.as_tensor(list(in_groups))[None, :]
    centre = in_groups < out_groups if kind == "A" else in_groups <= out_groups
    mask[:, :, kh // 2, kw // 2] = centre.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A convolution whose weights are multiplied by a fixed :func:`causal_mask`."""

    def __init__(self, in_groups, out_groups, kernel, kind: str):
        kh, kw = kernel
        super().__init__(len(in_groups), len(out_groups), (kh, kw), padding=(kh // 2, kw // 2))
        self.register_buffer(
            "mask", causal_mask(out_groups, in_groups, kernel, kind), persistent=False
        )

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def _groups(channels: int, per_group: int, repeats: int = 1) -> list[int]:
    """The image channel of each of ``repeats * channels * per_group`` features."""
    return [c for _ in range(repeats) for c in range(channels) for _ in range(per_group)]


def _lstm_update(gates, cell, size: int):
    """One LSTM update from the stacked pre-activations ``(B, 4 * size, ...)``."""
    i, f, o, g = gates.split(size, dim=1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell), cell


class RowLSTM(nn.Module):
    """PixelRNN's Row LSTM layer: the states of a whole row at once, row after row.

    Maps features ``(B, F, H, W)`` to ``(B, F, H, W)``. The input-to-state part is a 1x3
    convolution with mask B over each row; the state-to-state part a 1-D convolution of width
    3 over the previous row's states, so each state sees a triangle of the rows above.
    """

    def __init__(self, channels: int, per_group: int):
        super().__init__()
        self.size = channels * per_group
        groups = _groups(channels, per_group)
        self.input_to_state = MaskedConv2d(groups, _groups(channels, per_group, 4), (1, 3), "B")
        self.state_to_state = nn.Conv1d(self.size, 4 * self.size, 3, padding=1)

    def forward(self, x):
        batch, _, height, width = x.shape
        # Every row's input-to-state part at once, then one tensor per row: unbind's gradient
        # is one stack, where indexing a row at a time would fill a full-size zero gradient
        # per row (most of a training step).
        inputs = self.input_to_state(x).unbind(dim=2)  # H of (B, 4F, W)
        state = x.new_zeros(batch, self.size, width)
        cell = x.new_zeros(batch, self.size, width)
        rows = []
        for i in range(height):
            gates = inputs[i] + self.state_to_state(state)
            state, cell = _lstm_update(gates, cell, self.size)
            rows.append(state)
        return torch.stack(rows, dim=2)


def skew(x):
    """``(B, F, H, W)`` to ``(B, F, H, H + W - 1)``: row ``i`` moved ``i`` columns right, so
    that each column of the result is a diagonal of the image."""
    batch, features, height, width = x.shape
    padded = F.pad(x, (0, height))  # (B, F, H, W + H)
    flat = padded.reshape(batch, features, height * (width + height))[
        ..., : height * (width + height - 1)
    ]
    return flat.reshape(batch, features, height, width + height - 1)


def unskew(x, width: int):
    """The inverse of :func:`skew`: ``(B, F, H, H + W - 1)`` back to ``(B, F, H, W)``."""
    batch, features, height, skewed = x.shape
    flat = F.pad(x.reshape(batch, features, height * skewed), (0, height))
    return flat.reshape(batch, features, height, skewed + 1)[..., :width]


class DiagonalLSTM(nn.Module):
    """One direction of PixelRNN's Diagonal BiLSTM: the states of a whole diagonal at once.

    On the skewed features, column after column: the input-to-state part is a 1x1
    convolution with mask B, the state-to-state part a convolution over the previous
    diagonal's states of the pixel above and the pixel to the left, so each state sees every
    value above and to its left.
    """

    def __init__(self, channels: int, per_group: int):
        super().__init__()
        self.size = channels * per_group
        groups = _groups(channels, per_group)
        self.input_to_state = MaskedConv2d(groups, _groups(channels, per_group, 4), (1, 1), "B")
        self.state_to_state = nn.Conv1d(self.size, 4 * self.size, 2)

    def forward(self, x):
        batch, _, height, width = x.shape
        # One tensor per diagonal (see RowLSTM.forward).
        inputs = skew(self.input_to_state(x)).unbind(dim=-1)  # H + W - 1 of (B, 4F, H)
        state = x.new_zeros(batch, self.size, height)
        cell = x.new_zeros(batch, self.size, height)
        columns = []
        for diagonal in inputs:
            # Row i of the new diagonal reads rows i - 1 and i of the previous one: the pixel
            # above and the pixel to the left of (i, j).
            gates = diagonal + self.state_to_state(F.pad(state, (1, 0)))
            state, cell = _lstm_update(gates, cell, self.size)
            columns.append(state)
        return unskew(torch.stack(columns, dim=-1), width)


class DiagonalBiLSTM(nn.Module):
    """PixelRNN's Diagonal BiLSTM layer: a diagonal LSTM from the left and one from the right,
    the second moved down one row so that it reads only rows above (the pixels to the right on
    the current row come later)."""

    def __init__(self, channels: int, per_group: int):
        super().__init__()
        self.forward_lstm = DiagonalLSTM(channels, per_group)
        self.backward_lstm = DiagonalLSTM(channels, per_group)

    def forward(self, x):
        left = self.forward_lstm(x)
        right = self.backward_lstm(x.flip(-1)).flip(-1)
        return left + F.pad(right, (0, 0, 1, 0))[:, :, :-1]


class GridPixelModel(OrderedReader):
    """Autoregressive pixel model on the image grid: logits over levels for every value.

    The same interface as :class:`skrnn._pixelrnn.PixelRNN`: codes ``(B, 1 + T)`` (the class
    index, then the level of every value in raster order) to logits ``(B, K, T)`` where logit
    ``[:, :, t]`` depends only on the class and the levels before ``t``.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W, C)``.
    n_levels : int
        Levels per value ``K``.
    n_classes : int
        Classes of a class-conditional model, 0 for an unconditional one.
    reader : {"rows", "diagonal"}
        Row LSTM or Diagonal BiLSTM layers.
    hidden_size : int
        Units per image channel in every layer.
    num_layers : int
        Recurrent layers.
    dropout : float
        Dropout on each layer's output, before the residual sum.
    embedding_dim : int
        Size of the embedding of each value's level.
    orderings : int
        Orders of the grid's symmetries the model reads (see :class:`PixelRNN`).
    """

    def __init__(
        self,
        *,
        image_shape,
        n_levels,
        n_classes,
        reader,
        hidden_size,
        num_layers,
        dropout,
        embedding_dim,
        orderings=1,
    ):
        super().__init__()
        height, width, channels = (int(s) for s in image_shape)
        self.shape = (height, width, channels)
        self.reader = reader
        self.n_levels = int(n_levels)
        self._init_orderings(self.shape, orderings)
        self.register_buffer(
            "level_offsets", torch.arange(channels) * self.n_levels, persistent=False
        )
        features = channels * int(hidden_size)
        hidden_groups = _groups(channels, int(hidden_size))
        self.levels = nn.Embedding(channels * self.n_levels, embedding_dim)
        self.first = MaskedConv2d(_groups(channels, embedding_dim), hidden_groups, (7, 7), "A")
        self.label = nn.Embedding(n_classes, features) if n_classes else None
        self.ordering = nn.Embedding(self.n_orderings, features) if self.n_orderings > 1 else None
        layer = RowLSTM if reader == "rows" else DiagonalBiLSTM
        self.layers = nn.ModuleList(layer(channels, int(hidden_size)) for _ in range(num_layers))
        self.dropout = Dropout(dropout)
        self.head = MaskedConv2d(hidden_groups, hidden_groups, (1, 1), "B")
        self.output = MaskedConv2d(hidden_groups, _groups(channels, self.n_levels), (1, 1), "B")

    def _logits_in_order(self, levels, labels, orderings):
        """Logits ``(B, K, T)`` of the levels ``(B, T)`` read in each image's ordering (raster
        order of the image as that ordering shows it), or of the first rows alone, from their
        levels (``T`` a whole number of rows)."""
        _, width, channels = self.shape
        height = levels.shape[1] // (width * channels)
        batch = len(levels)
        codes = (levels.reshape(batch, -1, channels) + self.level_offsets).reshape(batch, -1)
        embedded = self.levels(codes).reshape(batch, height, width, -1)  # channels, then units
        x = self.first(embedded.permute(0, 3, 1, 2))
        for table, index in ((self.label, labels), (self.ordering, orderings)):
            if table is not None and index is not None:
                x = x + table(index)[:, :, None, None]
        for layer in self.layers:
            x = x + self.dropout(layer(x))
        logits = self.output(torch.relu(self.head(torch.relu(x))))  # (B, C * K, H, W)
        logits = logits.reshape(batch, channels, self.n_levels, height, width)
        return logits.permute(0, 2, 3, 4, 1).reshape(batch, self.n_levels, -1)

    @torch.no_grad()
    def sample(self, labels, *, temperature=1.0, generator=None):
        """Draw images value by value; returns levels ``(B, T)`` in raster order.

        Each value is drawn from a pass of the network over the rows generated so far: the
        rows below cannot change it, so the pass stops at the value's row.
        """
        height, width, channels = self.shape
        n_images, device = len(labels), labels.device
        orderings = self._sampled_orderings(n_images, device, generator)
        levels = torch.zeros(n_images, height * width * channels, dtype=torch.long, device=device)
        per_row = width * channels
        for t in range(levels.shape[1]):
            rows = t // per_row + 1
            logits = self._logits_in_order(levels[:, : rows * per_row], labels, orderings)
            probs = F.softmax(logits[:, :, t].float() / temperature, dim=1)
            levels[:, t] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        if orderings is not None:
            levels = levels.gather(1, self.inverse_perms[orderings])
        return levels
