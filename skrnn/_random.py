"""The random draws of a fit, from generators of its own.

Torch's dropout, ``randperm`` and ``rand`` draw from torch's process-wide generators unless
they are given one. Two fits in threads that seeded those and drew from them would share one
stream, in an order that depends on timing. So a fit draws from a :class:`FitRandom` instead:
one torch generator per device it meets, all seeded from the fit's seed, set for the thread
that runs the fit (a context variable: each thread has its own). skrnn's dropout, shuffling,
augmentation and the generator's random orderings ask :func:`fit_generator` for theirs. Outside a
fit it returns None, which torch reads as its own generator, so the modules behave as torch's
do when they are used alone.

Two things still draw from torch's process-wide generator:

- The initial weights: every layer's ``reset_parameters`` draws from it, plugins' layers too.
  A network is built under :func:`seeded`, which holds a process lock for that short while.
- A network holding one of torch's own dropout modules, or a torch recurrent layer that drops
  out between its layers other than inside :class:`skrnn.cells.TorchRecurrent` (a plugin
  cell's, say). Such a fit holds the lock while it trains, so it is still exact, but it does
  not overlap other fits (:meth:`FitRandom.training`).
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["Dropout", "FitRandom", "fit_generator", "fit_random", "seeded"]

_CURRENT: contextvars.ContextVar[FitRandom | None] = contextvars.ContextVar(
    "skrnn_fit_random", default=None
)

# Held by every body that seeds torch's process-wide generators and draws from them (building
# a network, or training one that draws from them): two such bodies at once in threads would
# draw from one stream. Reentrant, for a fit that builds a net inside a fit.
_PROCESS_RNG_LOCK = threading.RLock()

# Torch's dropout modules, which draw their masks from its process-wide generator.
_TORCH_DROPOUTS = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
)

# A module class that sets this attribute to True draws the dropout of its children (torch
# recurrent layers it stacks) from the fit's generator itself: skrnn.cells.TorchRecurrent.
OWN_DRAWS = "draws_from_fit_generator"

# Checkpoint keys of a fit's generators: ``rng.fit.<device>``.
_STATE_PREFIX = "rng.fit."


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the body with torch's process-wide generators seeded, leaving the caller's state
    untouched; such bodies run one at a time in a process (a lock)."""
    devices = [device] if device.type == "cuda" else []
    with _PROCESS_RNG_LOCK, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def torch_state(device) -> dict[str, torch.Tensor]:
    """The states of torch's process-wide generators on the CPU and on ``device``."""
    tensors = {"rng.cpu": torch.get_rng_state()}
    if torch.device(device).type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    return tensors


def restore_torch_state(tensors: dict[str, torch.Tensor], device) -> None:
    """Set torch's process-wide generators to the states :func:`torch_state` gave."""
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    if torch.device(device).type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)


def _device_key(device) -> torch.device:
    """``device`` with its index ("cuda" is the current GPU), so that one device has one key."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


class FitRandom:
    """The generators of one fit: one per device, each seeded from ``seed`` when first asked
    for.

    Parameters
    ----------
    seed : int
        The fit's seed.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.exclusive = False  # True while the fit draws from torch's generators too
        self._generators: dict[torch.device, torch.Generator] = {}

    def generator(self, device) -> torch.Generator:
        """This fit's generator on ``device``."""
        key = _device_key(device)
        found = self._generators.get(key)
        if found is None:
            found = self._generators[key] = torch.Generator(device=key)
            found.manual_seed(self.seed)
        return found

    def reseed(self, seed: int) -> None:
        """Start every generator (and torch's, in an exclusive fit) anew from ``seed``."""
        self.seed = int(seed)
        for found in self._generators.values():
            found.manual_seed(self.seed)
        if self.exclusive:
            torch.manual_seed(self.seed)

    def state(self, device) -> dict[str, torch.Tensor]:
        """The generators' states as tensors (for a checkpoint), with torch's own on the CPU
        and on ``device`` in an exclusive fit."""
        self.generator("cpu")  # always saved, so that a resumed fit draws what this one would
        tensors = {f"{_STATE_PREFIX}{key}": g.get_state() for key, g in self._generators.items()}
        return {**tensors, **(torch_state(device) if self.exclusive else {})}

    def restore(self, tensors: dict[str, torch.Tensor], device) -> None:
        """Set the generators to the states :meth:`state` gave."""
        for name, value in tensors.items():
            if name.startswith(_STATE_PREFIX):
                self.generator(name[len(_STATE_PREFIX) :]).set_state(value)
        if self.exclusive:
            restore_torch_state(tensors, device)

    @contextlib.contextmanager
    def training(self, module: nn.Module, device: torch.device) -> Iterator[None]:
        """The training of ``module``: alongside other fits, or, if it draws from torch's
        process-wide generator (:func:`draws_from_torch`), alone, with that seeded."""
        if not draws_from_torch(module):
            yield
            return
        with seeded(self.seed, device):
            self.exclusive = True
            try:
                yield
            finally:
                self.exclusive = False


@contextlib.contextmanager
def fit_random(seed: int) -> Iterator[FitRandom]:
    """Give the body (a fit, in this thread) generators of its own, seeded from ``seed``."""
    random = FitRandom(seed)
    token = _CURRENT.set(random)
    try:
        yield random
    finally:
        _CURRENT.reset(token)


def current() -> FitRandom | None:
    """The generators of the fit running in this thread, or None."""
    return _CURRENT.get()


def fit_generator(device) -> torch.Generator | None:
    """The running fit's generator on ``device``; None (torch's own) outside a fit."""
    random = _CURRENT.get()
    return None if random is None else random.generator(device)


def draws_from_torch(module: nn.Module) -> bool:
    """Whether training ``module`` draws from torch's process-wide generator: it holds one of
    torch's dropout modules with a rate above 0, or a torch recurrent layer that drops out
    between its layers and is not the child of a module that draws that dropout itself (one
    whose class sets ``draws_from_fit_generator``, as :class:`skrnn.cells.TorchRecurrent`
    does)."""
    vouched = {
        id(child)
        for part in module.modules()
        if getattr(type(part), OWN_DRAWS, False)
        for child in part.children()
    }
    for part in module.modules():
        if isinstance(part, _TORCH_DROPOUTS) and not isinstance(part, Dropout) and part.p > 0:
            return True
        if (
            isinstance(part, nn.RNNBase)
            and id(part) not in vouched
            and part.num_layers > 1
            and part.dropout > 0
        ):
            return True
    return False


class Dropout(nn.Dropout):
    """:class:`torch.nn.Dropout` whose masks come from the running fit's generator.

    Published as ``skrnn.cells.Dropout`` for plugin cells: a cell that drops out with it (and
    stacks torch's layers in :class:`skrnn.cells.TorchRecurrent`) keeps fits in threads
    overlapping and exact. Outside a fit (or at a rate of 0 or 1) it is torch's dropout.

    Parameters
    ----------
    p : float, default=0.5
        The probability of zeroing each value.
    inplace : bool, default=False
        Zero in place (outside a fit only, as torch's dropout does).

    Examples
    --------
    >>> import torch
    >>> from skrnn._random import fit_random
    >>> from skrnn.cells import Dropout
    >>> layer = Dropout(0.5)
    >>> with fit_random(0):
    ...     a = layer(torch.ones(2, 4))
    >>> with fit_random(0):
    ...     b = layer(torch.ones(2, 4))
    >>> bool(torch.equal(a, b)), sorted(set(a.flatten().tolist()))
    (True, [0.0, 2.0])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with values zeroed at rate ``p`` and the rest scaled by ``1 / (1 - p)`` in
        training; ``x`` itself in evaluation.

        Parameters
        ----------
        x : torch.Tensor
            Any tensor.

        Returns
        -------
        dropped : torch.Tensor
            Of the shape of ``x``.
        """
        found = fit_generator(x.device) if self.training and 0 < self.p < 1 else None
        if found is None:
            return super().forward(x)
        return dropped(x, self.p, found)


def dropped(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """``x`` with values zeroed at rate ``p`` (masks from ``generator``) and the rest scaled
    by ``1 / (1 - p)``, as torch's dropout in training."""
    keep = torch.empty_like(x).bernoulli_(1 - p, generator=generator)
    return x * keep.div_(1 - p)
