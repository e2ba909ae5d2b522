"""ReNet-style 2-D recurrent sweeps: the torch modules behind :class:`skrnn.RNNSegmenter`.

A ReNet layer (Visin et al., 2015) reads a grid of feature vectors with recurrent cells in
four directions: down and up every column, then left and right along every row of the
column outputs, so after one layer every position has seen the whole image. ReSeg (Visin et
al., 2016) stacks such layers over non-overlapping patches and upsamples the result back to
the full resolution for per-pixel classification.

All the columns (or rows) of a batch are folded into the batch dimension, so each sweep is a
single call of the cell: one fused cuDNN / oneDNN kernel for the built-in cells, whatever the
image size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._modules import Standardize, layer_sizes
from ._random import Dropout
from .cells import build_cell
from .sequence import grid_lines, grid_to_images, lines_to_grid, patch_grid


class ReNetLayer(nn.Module):
    """One ReNet layer: sweeps along the columns, then along the rows, of a feature grid.

    Maps ``(B, H, W, F)`` to ``(B, H, W, D * hidden_size)`` where ``D`` is 2 with
    ``bidirectional`` sweeps (down+up, then left+right, concatenated) and 1 otherwise (down,
    then right).

    Parameters
    ----------
    input_size : int
        Features per grid position ``F``.
    cell : str or callable
        A cell name from :func:`skrnn.cells.list_cells` or a cell factory.
    hidden_size : int
        Units of each sweep's cell.
    bidirectional : bool
        Sweep each column and row in both directions.

    Examples
    --------
    >>> import torch
    >>> from skrnn._renet import ReNetLayer
    >>> layer = ReNetLayer(3, "gru", hidden_size=8, bidirectional=True)
    >>> layer(torch.zeros(2, 5, 7, 3)).shape
    torch.Size([2, 5, 7, 16])
    """

    def __init__(self, input_size: int, cell, hidden_size: int, bidirectional: bool):
        super().__init__()
        directions = 2 if bidirectional else 1
        self.vertical = build_cell(cell, input_size, hidden_size, 1, bidirectional, 0.0)
        self.horizontal = build_cell(
            cell, directions * hidden_size, hidden_size, 1, bidirectional, 0.0
        )
        self.output_size = directions * hidden_size

    def forward(self, grid):
        batch = grid.shape[0]
        # Every column of every image becomes one sequence of length H ...
        columns = self.vertical(grid_lines(grid, "columns"))
        columns = lines_to_grid(columns, batch, "columns")
        # ... then every row of the column outputs one sequence of length W.
        return lines_to_grid(self.horizontal(grid_lines(columns, "rows")), batch, "rows")


class ReSegModel(nn.Module):
    """Images ``(B, H, W, C)`` to per-pixel class logits ``(B, K, H, W)``.

    The image is standardised and, with ``conv``, 3x3 convolutions compute local features of
    every pixel, which are kept beside its values (ReSeg likewise sweeps convolutional
    features). The result is padded to a multiple of ``patch_size``, cut into non-overlapping
    patches and read by a stack of ReNet layers; a transposed convolution whose kernel and
    stride are the patch size upsamples it back to the pixel grid. Each pixel's upsampled
    features, together with its own values and local features (a skip connection that keeps
    edges sharp inside a patch), then go through a per-pixel classifier (hidden ``head``
    layers and a linear output).

    Parameters
    ----------
    n_channels : int
        Channels ``C`` of the input images.
    n_outputs : int
        Number of classes ``K``.
    cell : str or callable
        The recurrent cell of every sweep.
    hidden_size : int or tuple of int
        Units per sweep; a tuple gives one ReNet layer per entry.
    num_layers : int
        Number of ReNet layers when ``hidden_size`` is an int.
    bidirectional : bool
        Sweep in both directions along each axis.
    dropout : float
        Dropout between ReNet layers and before the per-pixel classifier.
    patch_size : tuple of int
        ``(ph, pw)``; ``(1, 1)`` sweeps over single pixels.
    upsample_size : int
        Features per pixel after the transposed convolution.
    head : sequence of int
        Widths of hidden per-pixel layers (1x1 convolutions with ReLU) before the output.
    conv : sequence of int
        Widths of 3x3 convolutions (with ReLU) computing local features before the sweeps;
        ``()`` gives the module of files saved before this parameter existed.
    input_mean, input_std : sequence of float
        Per-channel statistics of the training images.

    Examples
    --------
    >>> import torch
    >>> from skrnn._renet import ReSegModel
    >>> model = ReSegModel(n_channels=1, n_outputs=3, cell="lstm", hidden_size=8, num_layers=2,
    ...                    bidirectional=True, dropout=0.0, patch_size=(2, 2))
    >>> model(torch.rand(4, 9, 10, 1)).shape
    torch.Size([4, 3, 9, 10])
    """

    def __init__(
        self,
        *,
        n_channels: int,
        n_outputs: int,
        cell,
        hidden_size,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        patch_size: Sequence[int] = (1, 1),
        upsample_size: int = 32,
        head: Sequence[int] = (),
        conv: Sequence[int] = (),
        input_mean: Sequence[float] = (0.0,),
        input_std: Sequence[float] = (1.0,),
    ):
        super().__init__()
        self.patch_size = tuple(int(p) for p in patch_size)
        ph, pw = self.patch_size
        self.standardize = Standardize(input_mean, input_std)
        local: list[nn.Module] = []
        channels = n_channels
        for width in conv:
            local += [nn.Conv2d(channels, int(width), 3, padding=1), nn.ReLU()]
            channels = int(width)
        self.local = nn.Sequential(*local)
        if local:  # the pixels' own values stay beside their local features
            channels += n_channels
        layers: list[nn.Module] = []
        size = ph * pw * channels
        for i, hidden in enumerate(layer_sizes(hidden_size, num_layers)):
            if i:
                layers.append(Dropout(dropout))
            layer = ReNetLayer(size, cell, hidden, bidirectional)
            layers.append(layer)
            size = layer.output_size
        self.sweeps = nn.Sequential(*layers)
        self.dropout = Dropout(dropout)
        self.upsample = nn.ConvTranspose2d(
            size, upsample_size, kernel_size=(ph, pw), stride=(ph, pw)
        )
        classifier: list[nn.Module] = []
        width = upsample_size + channels
        for hidden in head:
            classifier += [nn.Conv2d(width, int(hidden), 1), nn.ReLU()]
            width = int(hidden)
        classifier.append(nn.Conv2d(width, n_outputs, 1))
        self.classifier = nn.Sequential(*classifier)

    def forward(self, images):
        height, width = images.shape[1:3]
        pixels = self.standardize(images)
        if len(self.local):
            local = self.local(pixels.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            pixels = torch.cat([pixels, local], dim=-1)
        # Padded with zeros (the training mean after standardising) so patches tile the image.
        patches = patch_grid(pixels, self.patch_size)
        features = self.dropout(self.sweeps(patches))
        # The transposed convolution and the 1x1 convolutions are computed as matrix products
        # on channel-last pixels (the same weights): on the CPU, the convolutions' backward
        # pass over every pixel was a third of a training step on 180x240 photos.
        upsampled = torch.relu(self._upsample(features)[:, :height, :width])
        pixel_features = torch.cat([upsampled, pixels], dim=-1)
        for layer in self.classifier:
            if isinstance(layer, nn.Conv2d):
                pixel_features = F.linear(pixel_features, layer.weight[:, :, 0, 0], layer.bias)
            else:
                pixel_features = layer(pixel_features)
        return pixel_features.permute(0, 3, 1, 2)

    def _upsample(self, grid):
        """The transposed convolution (kernel = stride = patch) on a grid ``(B, R, C, F)``:
        each grid vector becomes the ``ph x pw`` pixels of its patch."""
        ph, pw = self.patch_size
        weight = self.upsample.weight  # (F, out, ph, pw)
        # Patch vectors in the order of patch_grid: (ph, pw, out).
        matrix = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)
        patch_pixels = grid @ matrix + self.upsample.bias.repeat(ph * pw)
        return grid_to_images(patch_pixels, self.patch_size)
