"""The registry of recurrent cells.

A *cell factory* is any callable ``factory(input_size, hidden_size, num_layers, bidirectional,
dropout)`` that returns an :class:`torch.nn.Module` mapping a batch of sequences ``(B, T, F)``
to the outputs at every time step ``(B, T, D * hidden_size)``, where ``D`` is 2 for a
bidirectional cell and 1 otherwise. Any registered name is a valid value of the ``cell``
parameter of every skrnn estimator, and so of a grid search over cells. ``fit`` calls a factory
once for each layer of the model it builds. Only the built-in cells are also sized beforehand on
torch's meta device, so that weights larger than the memory are refused before they are
allocated; a model of a factory's cells is refused only when its allocation fails.

Built-in cells are ``"rnn"`` (the Elman cell ``h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)``),
``"lstm"`` and ``"gru"``; all three run torch's fused kernels. Other packages add cells through
the entry-point group ``skrnn.cells``::

    # pyproject.toml of a plugin package
    [project.entry-points."skrnn.cells"]
    mycell = "my_package.cells:make_my_cell"

Entry points are loaded lazily, the first time a name is not found among the registered cells
or :func:`list_cells` is called. A plugin that fails to load is skipped with a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Protocol

import torch
from torch import nn
from torch.func import functional_call

from ._precision import float32_instead, in_float32
from ._random import Dropout, dropped, fit_generator

ENTRY_POINT_GROUP = "skrnn.cells"


class CellFactory(Protocol):
    """What a cell factory looks like (see the module docstring)."""

    def __call__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
    ) -> nn.Module: ...


__all__ = [
    "ENTRY_POINT_GROUP",
    "CellFactory",
    "Dropout",
    "TorchRecurrent",
    "build_cell",
    "cell_name",
    "get_cell",
    "list_cells",
    "make_gru",
    "make_lstm",
    "make_rnn",
    "register_cell",
]

_CELLS: dict[str, CellFactory] = {}
_BUILTINS: tuple[str, ...] = ("rnn", "lstm", "gru")
_plugins_loaded = False


def register_cell(
    name: str, factory: CellFactory | None = None, *, overwrite: bool = False
) -> Callable:
    """Register a cell factory under ``name``; usable directly or as a decorator.

    Parameters
    ----------
    name : str
        The name estimators accept as ``cell=name``.
    factory : callable, optional
        The cell factory. Leave it out to use ``register_cell`` as a decorator.
    overwrite : bool, default=False
        Replace a cell already registered under ``name`` instead of raising.

    Returns
    -------
    callable
        The factory (so the decorator leaves the decorated function as it was).

    Examples
    --------
    >>> from torch import nn
    >>> from skrnn.cells import register_cell, get_cell
    >>> @register_cell("tanh_rnn_example", overwrite=True)
    ... def make(input_size, hidden_size, num_layers, bidirectional, dropout):
    ...     return get_cell("rnn")(input_size, hidden_size, num_layers, bidirectional, dropout)
    >>> get_cell("tanh_rnn_example") is make
    True
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A cell name must be a non-empty string, got {name!r}.")

    def decorator(func: CellFactory) -> CellFactory:
        if not callable(func):
            raise TypeError(f"A cell factory must be callable, got {type(func).__name__}.")
        if name in _CELLS and _CELLS[name] is not func and not overwrite:
            raise ValueError(
                f"A cell named {name!r} is already registered; pass overwrite=True to replace it."
            )
        _CELLS[name] = func
        return func

    return decorator if factory is None else decorator(factory)


def _load_plugins(force: bool = False) -> None:
    """Register the cells that installed packages publish in the ``skrnn.cells`` group, once."""
    global _plugins_loaded
    if _plugins_loaded and not force:
        return
    _plugins_loaded = True
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in _CELLS and not force:
            continue
        try:
            factory = entry_point.load()
            register_cell(entry_point.name, factory, overwrite=True)
        except Exception as exc:  # a broken plugin must never break skrnn itself
            warnings.warn(
                f"skrnn could not load the cell plugin {entry_point.name!r} "
                f"({entry_point.value}): {type(exc).__name__}: {exc}. It is skipped.",
                RuntimeWarning,
                stacklevel=3,
            )


def list_cells() -> list[str]:
    """The names of every available cell: the built-ins first, then plugins, alphabetically.

    Returns
    -------
    names : list of str
        Every value the ``cell`` parameter accepts by name.

    Examples
    --------
    >>> from skrnn.cells import list_cells
    >>> list_cells()[:3]
    ['rnn', 'lstm', 'gru']
    """
    _load_plugins()
    others = sorted(name for name in _CELLS if name not in _BUILTINS)
    return [name for name in _BUILTINS if name in _CELLS] + others


def get_cell(cell: str | CellFactory) -> CellFactory:
    """Return the cell factory for a registered name, or ``cell`` itself if it is callable.

    Parameters
    ----------
    cell : str or callable
        A registered cell name, or a cell factory.

    Returns
    -------
    factory : callable
        The cell factory.

    Raises
    ------
    ValueError
        If no cell of that name is registered; the message lists the names that are.
    TypeError
        If ``cell`` is neither a string nor callable.
    """
    if callable(cell):
        return cell
    if not isinstance(cell, str):
        raise TypeError(
            f"cell must be a registered cell name or a cell factory, got {type(cell).__name__}."
        )
    if cell not in _CELLS:
        _load_plugins()
    if cell not in _CELLS:
        raise ValueError(
            f"Unknown cell {cell!r}. Available cells: {', '.join(list_cells())}. "
            f"Packages add cells through the {ENTRY_POINT_GROUP!r} entry-point group."
        )
    return _CELLS[cell]


def build_cell(
    cell: str | CellFactory,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    bidirectional: bool,
    dropout: float,
) -> nn.Module:
    """Call a cell's factory and check that it returned a torch module.

    Parameters
    ----------
    cell : str or callable
        A registered cell name, or a cell factory.
    input_size : int
        Features per time step of the input sequences.
    hidden_size : int
        Units per direction of each layer.
    num_layers : int
        Stacked layers.
    bidirectional : bool
        Read the sequences in both directions.
    dropout : float
        Dropout between stacked layers.

    Returns
    -------
    module : torch.nn.Module
        Maps ``(B, T, input_size)`` to ``(B, T, D * hidden_size)``.

    Raises
    ------
    TypeError
        If the factory returned something other than an :class:`torch.nn.Module`.

    Examples
    --------
    >>> from skrnn.cells import build_cell
    >>> type(build_cell("gru", 3, 8, 1, True, 0.0)).__name__
    'TorchRecurrent'
    """
    factory = get_cell(cell)
    module = factory(input_size, hidden_size, num_layers, bidirectional, dropout)
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"The cell factory {getattr(factory, '__name__', factory)!r} returned a "
            f"{type(module).__name__}; a cell factory must return a torch.nn.Module that maps "
            "(B, T, F) to (B, T, D * hidden_size)."
        )
    return module


def cell_name(cell: str | CellFactory) -> str | None:
    """The registered name of a cell, or ``None`` for an unregistered factory.

    Parameters
    ----------
    cell : str or callable
        A cell name or a cell factory.

    Returns
    -------
    name : str or None
        ``cell`` itself for a name; the name a factory is registered under, or None.

    Examples
    --------
    >>> from skrnn.cells import cell_name, get_cell
    >>> cell_name(get_cell("lstm"))
    'lstm'
    """
    if isinstance(cell, str):
        return cell
    return next((name for name, factory in _CELLS.items() if factory is cell), None)


class TorchRecurrent(nn.Module):
    """One of torch's fused recurrent layers, returning only the per-step outputs.

    Parameters
    ----------
    layer : nn.RNN, nn.LSTM or nn.GRU
        A layer built with ``batch_first=True``.
    """

    # It draws the dropout between the layer's stacked layers from the fit's generator.
    draws_from_fit_generator = True

    def __init__(self, layer: nn.RNNBase):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        """The layer's outputs at every step.

        In a skrnn fit, the dropout between stacked layers draws from the fit's own
        generator (:mod:`skrnn._random`): the layers then run one at a time, each a fused
        call, with masks drawn between them. Under bfloat16 autocast on a device that cannot
        run this kind of layer in bfloat16 (:mod:`skrnn._precision`), it computes in float32.

        Parameters
        ----------
        x : torch.Tensor of shape (B, T, F)
            Input sequences.

        Returns
        -------
        outputs : torch.Tensor of shape (B, T, D * hidden_size)
        """
        if float32_instead(self.layer, x):
            return in_float32(self._layers, x)
        return self._layers(x)

    def _layers(self, x):
        layer = self.layer
        drops = self.training and layer.num_layers > 1 and layer.dropout > 0
        found = fit_generator(x.device) if drops else None
        if found is None:
            output, _ = layer(x)
            return output
        return self._layer_by_layer(x, found)

    def _layer_by_layer(self, x, found: torch.Generator):
        """The stacked layers one at a time, each a one-layer copy of the layer's kind on the
        meta device (no memory, no random draws) called with that layer's weights."""
        layer = self.layer
        for index in range(layer.num_layers):
            if index > 0:
                x = dropped(x, layer.dropout, found)
            one = self._one_layer(x.shape[-1])
            weights = {
                name: getattr(layer, name.replace("_l0", f"_l{index}"))
                for name in one._flat_weights_names
            }
            x, _ = functional_call(one, weights, (x,))
        return x

    def _one_layer(self, input_size: int) -> nn.RNNBase:
        """A one-layer, meta-device copy of the layer's kind for inputs of ``input_size``,
        kept per cell (a call swaps its weights in, so cells do not share them)."""
        kept = self.__dict__.setdefault("_one_layers", {})
        if input_size not in kept:
            layer = self.layer
            kind = {"nonlinearity": layer.nonlinearity} if isinstance(layer, nn.RNN) else {}
            if isinstance(layer, nn.LSTM):
                kind = {"proj_size": layer.proj_size}
            kept[input_size] = type(layer)(
                input_size,
                layer.hidden_size,
                num_layers=1,
                bias=layer.bias,
                batch_first=layer.batch_first,
                bidirectional=layer.bidirectional,
                device="meta",
                **kind,
            )
        return kept[input_size]

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_one_layers", None)  # rebuilt when needed
        return state


def _torch_cell(layer_class: type[nn.RNNBase], **extra) -> CellFactory:
    def factory(input_size, hidden_size, num_layers, bidirectional, dropout):
        return TorchRecurrent(
            layer_class(
                input_size,
                hidden_size,
                num_layers=num_layers,
                bidirectional=bidirectional,
                dropout=dropout if num_layers > 1 else 0.0,
                batch_first=True,
                **extra,
            )
        )

    factory.__name__ = f"make_{layer_class.__name__.lower()}"
    factory.__qualname__ = factory.__name__
    factory.__doc__ = f"""A cell of torch's fused :class:`torch.nn.{layer_class.__name__}` layers.

    Parameters
    ----------
    input_size : int
        Features per time step.
    hidden_size : int
        Units per direction of each layer.
    num_layers : int
        Stacked layers, in one fused call.
    bidirectional : bool
        Read the sequences in both directions.
    dropout : float
        Dropout between stacked layers.

    Returns
    -------
    cell : TorchRecurrent
        Maps ``(B, T, input_size)`` to ``(B, T, D * hidden_size)``.
    """
    return factory


# Module-level names keep the factories picklable.
make_rnn = register_cell("rnn", _torch_cell(nn.RNN, nonlinearity="tanh"))
make_lstm = register_cell("lstm", _torch_cell(nn.LSTM))
make_gru = register_cell("gru", _torch_cell(nn.GRU))
