"""An IndRNN cell for skrnn: ``h_t = relu(W x_t + u * h_{t-1} + b)`` with a vector ``u``."""

from __future__ import annotations

import torch
from torch import nn

# skrnn's dropout draws its masks from the fit's own generator, so that fits in threads overlap
# and stay exact (torch's would make each such fit train alone).
from skrnn.cells import Dropout

__all__ = ["IndRNN", "make_indrnn"]


class IndRNNLayer(nn.Module):
    """One direction of one IndRNN layer over ``(B, T, F)``."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input = nn.Linear(input_size, hidden_size)
        # Recurrent weights in (0, 1) keep the relu recurrence from exploding at the start.
        self.recurrent = nn.Parameter(torch.empty(hidden_size).uniform_(0.0, 1.0))

    def forward(self, x):
        projected = self.input(x)  # every time step at once; only the recurrence loops
        state = projected.new_zeros(projected.shape[0], projected.shape[2])
        outputs = []
        for t in range(projected.shape[1]):
            state = torch.relu(projected[:, t] + self.recurrent * state)
            outputs.append(state)
        return torch.stack(outputs, dim=1)


class IndRNN(nn.Module):
    """Stacked, optionally bidirectional IndRNN layers, in skrnn's cell contract."""

    def __init__(self, input_size, hidden_size, num_layers=1, bidirectional=False, dropout=0.0):
        super().__init__()
        directions = 2 if bidirectional else 1
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        size = input_size
        for _ in range(num_layers):
            self.forward_layers.append(IndRNNLayer(size, hidden_size))
            if bidirectional:
                self.backward_layers.append(IndRNNLayer(size, hidden_size))
            size = directions * hidden_size
        self.dropout = Dropout(dropout)

    def forward(self, x):
        for i, forward_layer in enumerate(self.forward_layers):
            if i:
                x = self.dropout(x)
            out = forward_layer(x)
            if self.backward_layers:
                backward = self.backward_layers[i](x.flip(1)).flip(1)
                out = torch.cat([out, backward], dim=-1)
            x = out
        return x


def make_indrnn(input_size, hidden_size, num_layers, bidirectional, dropout):
    """skrnn cell factory for :class:`IndRNN`."""
    return IndRNN(input_size, hidden_size, num_layers, bidirectional, dropout)
