"""The ``precision`` parameter: the dtype autocast computes in, and what a device can run in it.

Under CPU autocast torch runs an LSTM in bfloat16 through oneDNN, whose bfloat16 recurrent
kernels need AVX-512 (emulated there, native with ``avx512_bf16`` or AMX). On a CPU without
AVX-512 (an AMD EPYC before Zen 4, say) oneDNN cannot build the kernel and torch raises "could
not create a primitive descriptor for the LSTM forward propagation primitive". Which layer kinds
a device can run in bfloat16 is therefore probed, once per process, device and kind, on a layer
of two units; where the probe fails, that kind of layer computes in float32 (the rest of the
network stays in bfloat16), with one :class:`~skrnn.exceptions.PrecisionWarning` saying so.
Nothing else depends on the CPU: the default precision is float32 everywhere, and no setting
chooses bfloat16 for the user.
"""

from __future__ import annotations

import contextlib
import threading
import warnings

import torch
from torch import nn

from .exceptions import PrecisionWarning

# The ``precision`` parameter: the dtype autocast computes in (None: plain float32).
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}

_lock = threading.Lock()
_runs: dict[tuple[str, type], bool] = {}  # (device, layer kind) -> the probe's answer
_warned: set[tuple[str, type]] = set()


def autocast(device, precision: str):
    """The autocast context of ``precision`` on ``device`` (a no-op for float32)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def bfloat16_runs(kind: type[nn.RNNBase], device) -> bool:
    """Whether ``device`` runs torch's ``kind`` of recurrent layer (forward and backward) under
    bfloat16 autocast; probed once per process, device and kind."""
    key = (str(torch.device(device)), kind)
    with _lock:
        if key not in _runs:
            _runs[key] = _probe(kind, torch.device(device))
        return _runs[key]


def _probe(kind: type[nn.RNNBase], device: torch.device) -> bool:
    # Built on the meta device and filled with constants: the probe draws no random numbers,
    # so torch's global generator is left as it was.
    layer = kind(2, 2, batch_first=True, device="meta").to_empty(device=device)
    for parameter in layer.parameters():
        nn.init.constant_(parameter, 0.1)
    x = torch.ones(1, 2, 2, device=device, requires_grad=True)
    try:
        with (
            torch.inference_mode(False),
            torch.enable_grad(),
            torch.autocast(device_type=device.type, dtype=torch.bfloat16),
        ):
            output, _ = layer(x)
        output.float().sum().backward()
    except RuntimeError:
        return False
    return True


def autocast_dtype(device_type: str) -> torch.dtype | None:
    """The dtype autocast computes in on ``device_type`` now, or None where it is off."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    if device_type == "cpu":  # pragma: no cover - torch < 2.4
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    if device_type == "cuda":  # pragma: no cover - torch < 2.4
        return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None
    return None  # pragma: no cover


def float32_instead(layer: nn.RNNBase, x: torch.Tensor) -> bool:
    """Whether ``layer`` must run in float32 on ``x``: bfloat16 autocast is on, and the
    device cannot run this kind of layer in bfloat16 (warned once per device and kind)."""
    device_type = x.device.type
    if autocast_dtype(device_type) != torch.bfloat16:
        return False
    kind = type(layer)
    if bfloat16_runs(kind, x.device):
        return False
    key = (str(x.device), kind)
    with _lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        warnings.warn(_fallback_message(kind.__name__, x.device), PrecisionWarning, stacklevel=2)
    return True


def _fallback_message(name: str, device: torch.device) -> str:
    if device.type == "cpu":
        capability = torch.backends.cpu.get_cpu_capability()
        why = (
            f"this CPU (torch sees {capability}) cannot run torch's {name} in bfloat16: its "
            "kernel needs AVX-512"
        )
    else:
        why = f"{device} cannot run torch's {name} in bfloat16"
    return (
        f"precision='bfloat16': {why}, so the {name} layers compute in float32 and the rest "
        "of the network in bfloat16. Set precision='float32' to compute everything in float32 "
        "and silence this warning."
    )


def in_float32(run, x: torch.Tensor):
    """``run(x)`` with autocast off and ``x`` in float32."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return run(x.float())
