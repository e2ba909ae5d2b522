"""The torch modules behind the estimators: recurrent encoders, readouts and heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._random import Dropout
from .cells import build_cell
from .sequence import embeddings_as_channels, images_to_sequences, sequence_shape


def layer_sizes(hidden_size, num_layers: int) -> list[int]:
    """The hidden size of each recurrent layer: an int repeated ``num_layers`` times, or a tuple."""
    if isinstance(hidden_size, (tuple, list)):
        return [int(h) for h in hidden_size]
    return [int(hidden_size)] * int(num_layers)


class RecurrentEncoder(nn.Module):
    """Recurrent layers from the cell registry, mapping ``(B, T, F)`` to ``(B, T, D * h_last)``.

    An int ``hidden_size`` builds one cell of ``num_layers`` layers (so torch's fused
    multi-layer kernels are used); a tuple builds one single-layer cell per entry, so layers
    may differ in size, with dropout between them.
    """

    def __init__(self, input_size, cell, hidden_size, num_layers, bidirectional, dropout):
        super().__init__()
        directions = 2 if bidirectional else 1
        if isinstance(hidden_size, (tuple, list)):
            layers, size = [], input_size
            for i, hidden in enumerate(hidden_size):
                if i:
                    layers.append(Dropout(dropout))
                layers.append(build_cell(cell, size, int(hidden), 1, bidirectional, 0.0))
                size = directions * int(hidden)
            self.layers = nn.Sequential(*layers)
        else:
            self.layers = build_cell(
                cell, input_size, int(hidden_size), num_layers, bidirectional, dropout
            )
        self.output_size = directions * layer_sizes(hidden_size, num_layers)[-1]
        self.bidirectional = bidirectional

    def forward(self, x):
        return self.layers(x)


def readout(outputs, how: str, bidirectional: bool):
    """Summarise per-step outputs ``(B, T, D * h)`` into one vector per sequence.

    ``"last"`` takes the final state of each direction: the last step of the forward half and
    the first step of the backward half, so a bidirectional reader has seen the whole sequence
    in both halves. ``"mean"`` and ``"max"`` pool over time.
    """
    if how == "mean":
        return outputs.mean(dim=1)
    if how == "max":
        return outputs.amax(dim=1)
    if not bidirectional:
        return outputs[:, -1]
    half = outputs.shape[-1] // 2
    return torch.cat([outputs[:, -1, :half], outputs[:, 0, half:]], dim=-1)


def dense_head(in_features: int, head: Sequence[int], n_outputs: int, dropout: float):
    """Hidden Linear+ReLU layers of the sizes in ``head``, then the output layer."""
    layers: list[nn.Module] = []
    for width in head:
        layers += [Dropout(dropout), nn.Linear(in_features, int(width)), nn.ReLU()]
        in_features = int(width)
    layers += [Dropout(dropout), nn.Linear(in_features, n_outputs)]
    return nn.Sequential(*layers)


class Standardize(nn.Module):
    """Per-channel standardisation with statistics learnt from the training images.

    Kept inside the module so predictions, saved models and any input scale (uint8, 0-16
    digits, floats) behave the same without a separate scaler.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", 1.0 / torch.as_tensor(std, dtype=torch.float32))

    def forward(self, images):
        return (images - self.mean) * self.scale


class SequenceModel(nn.Module):
    """Images ``(B, H, W, C)`` → sequences → recurrent encoder → readout → dense head.

    With ``n_tokens`` set, the input holds integer ids (token sequences ``(B, T)`` arrive as
    ``(B, T, 1, 1)`` images; pixel levels as they are) that an embedding turns into vectors
    before the image is read as a sequence.
    """

    def __init__(
        self,
        *,
        image_shape,
        order,
        patch_size,
        n_outputs,
        cell,
        hidden_size,
        num_layers,
        bidirectional,
        dropout,
        readout,
        head=(),
        input_mean=(0.0,),
        input_std=(1.0,),
        n_tokens=None,
        embedding_dim=None,
    ):
        super().__init__()
        self.order = order
        self.patch_size = patch_size
        self.readout = readout
        self.bidirectional = bidirectional
        if n_tokens is not None:
            # Each value (a token id, or a pixel level) becomes a vector of embedding_dim.
            self.embedding = nn.Embedding(n_tokens, embedding_dim)
            self.standardize = None
            height, width, channels = image_shape
            image_shape = (height, width, channels * embedding_dim)
        else:
            self.embedding = None
            self.standardize = Standardize(input_mean, input_std)
        input_size = sequence_shape(image_shape, order, patch_size)[1]
        self.encoder = RecurrentEncoder(
            input_size, cell, hidden_size, num_layers, bidirectional, dropout
        )
        self.head = dense_head(self.encoder.output_size, head or (), n_outputs, dropout)

    def sequences(self, images):
        """The (embedded or standardised) sequences ``(B, T, F)`` the encoder reads."""
        if self.embedding is not None:
            images = embeddings_as_channels(self.embedding(images.long()))
        else:
            images = self.standardize(images)
        return images_to_sequences(images, self.order, self.patch_size)

    def forward(self, images):
        outputs = self.encoder(self.sequences(images))
        return self.head(readout(outputs, self.readout, self.bidirectional))
