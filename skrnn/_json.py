"""The JSON codec of model files: parameters and fitted attributes as plain JSON.

:func:`encode` turns what an estimator holds (numbers, strings, tuples, lists, dicts, numpy
arrays and scalars with their dtype, dtypes, torch devices, random states, torch optimizer
classes) into JSON data in which everything that is not plain JSON is tagged with a
``"$kind"``; :func:`decode` turns exactly that back, and raises :class:`ValueError` on anything
it did not write. Nothing is ever imported or called by name from the data: an optimizer is
looked up among ``torch.optim``'s own classes and a cell among the registered cells.
"""

from __future__ import annotations

import json
import math
import numbers

import numpy as np
import torch

from .cells import get_cell

# numpy dtype kinds stored in arrays and scalars: bool, ints, floats, str, object (of those).
_ARRAY_KINDS = frozenset("biufUO")
# A string array may be padded beyond its longest string up to this size in all.
_PADDED_STRING_BYTES = 1 << 10
# More dimensions than any saved array has (numpy itself allows 32 or 64).
_MAX_DIMENSIONS = 32


def _encode_float(value: float):
    value = float(value)
    if math.isfinite(value):
        return value
    return {"$kind": "float", "value": repr(value)}  # 'nan', 'inf', '-inf'


def _encode_array(array: np.ndarray, where: str):
    dtype = array.dtype
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(
            f"{where} is an array of dtype {dtype}, which a model file cannot hold; expected "
            "booleans, integers, floats or strings."
        )
    flat = array.ravel().tolist()
    if dtype.kind == "f":
        data = [_encode_float(value) for value in flat]
    elif dtype.kind == "O":
        data = [encode(value, f"{where}[{i}]", primitive=True) for i, value in enumerate(flat)]
    else:
        data = flat
    return {"$kind": "ndarray", "dtype": dtype.str, "shape": list(array.shape), "data": data}


def encode(value, where: str, *, primitive: bool = False):
    """Turn ``value`` into JSON data that :func:`decode` turns back into it.

    Parameters
    ----------
    value : object
        What to encode.
    where : str
        What ``value`` is, for error messages (e.g. ``"the parameter hidden_size"``).
    primitive : bool, default=False
        Allow only numbers, strings, booleans and None (the items of object arrays).

    Returns
    -------
    data : object
        JSON-compatible data.

    Raises
    ------
    TypeError
        If ``value`` holds something a model file cannot hold.
    """
    if value is None or isinstance(value, (bool, str)) and not isinstance(value, np.generic):
        return value
    if isinstance(value, np.generic):
        if value.dtype.kind not in _ARRAY_KINDS - {"O"}:
            raise TypeError(f"{where} is a numpy {value.dtype} value, which cannot be saved.")
        item = value.item()
        data = _encode_float(item) if value.dtype.kind == "f" else item
        return {"$kind": "scalar", "dtype": value.dtype.str, "value": data}
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, float):
        return _encode_float(value)
    if primitive:
        raise TypeError(
            f"{where} is a {type(value).__name__}; object arrays in a model file may hold only "
            "strings, numbers, booleans and None."
        )
    if isinstance(value, tuple):
        items = [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return {"$kind": "tuple", "items": items}
    if isinstance(value, list):
        return [encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        items = [
            [encode(key, f"{where} key"), encode(item, f"{where}[{key!r}]")]
            for key, item in value.items()
        ]
        return {"$kind": "dict", "items": items}
    if isinstance(value, np.ndarray):
        return _encode_array(value, where)
    if isinstance(value, np.dtype):
        return {"$kind": "dtype", "value": value.str}
    if isinstance(value, type) and issubclass(value, np.generic):
        return {"$kind": "dtype_type", "value": np.dtype(value).str}
    if isinstance(value, torch.device):
        return {"$kind": "device", "value": str(value)}
    if isinstance(value, np.random.RandomState):
        return {"$kind": "random_state", "state": encode(value.get_state(), where)}
    if isinstance(value, type) and issubclass(value, torch.optim.Optimizer):
        if getattr(torch.optim, value.__name__, None) is not value:
            raise TypeError(
                f"{where}={value.__module__}.{value.__qualname__} is not one of torch.optim's "
                "optimizers, so a model file cannot name it; pass one of torch.optim's classes "
                "or a name such as 'adam'."
            )
        return {"$kind": "optimizer", "name": value.__name__}
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which a model file "
        "cannot hold: it stores numbers, strings, tuples, lists, dicts and numpy arrays only."
    )


def _decode_float(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
        raise ValueError(f"{where} should be a number, found {type(value).__name__}")
    if isinstance(value, dict):
        if value.get("$kind") != "float" or value.get("value") not in ("nan", "inf", "-inf"):
            raise ValueError(f"{where} should be a number, found {value!r:.80}")
        return float(value["value"])
    return float(value)


def _decode_dtype(text, where) -> np.dtype:
    try:
        dtype = np.dtype(text) if isinstance(text, str) and len(text) < 16 else None
    except TypeError:
        dtype = None
    if (
        dtype is None
        or dtype.kind not in _ARRAY_KINDS
        or dtype.fields is not None
        or dtype.subdtype is not None
    ):
        raise ValueError(f"{where} has an unsupported dtype {text!r:.40}")
    return dtype


def _check_string_width(dtype: np.dtype, items, where) -> None:
    """Refuse a string dtype much wider than the strings it holds.

    A dtype such as ``<U99999999`` takes a few bytes of JSON but would make every item
    hundreds of megabytes. Arrays whose dtype is at most four times as wide as their longest
    string, or that take at most ``_PADDED_STRING_BYTES`` in all, are what saving writes.
    """
    if dtype.kind != "U":
        return
    longest = max((len(item) for item in items if isinstance(item, str)), default=0)
    natural = 4 * max(longest, 1) * max(len(items), 1)
    if dtype.itemsize * max(len(items), 1) > max(4 * natural, _PADDED_STRING_BYTES):
        raise ValueError(
            f"{where} has the string dtype {dtype.str}, far wider than its longest string "
            f"({longest} characters)"
        )


def _decode_array(value, where) -> np.ndarray:
    dtype = _decode_dtype(value.get("dtype"), where)
    shape, data = value.get("shape"), value.get("data")
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_DIMENSIONS
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        or not isinstance(data, list)
        or math.prod(shape) != len(data)
    ):
        raise ValueError(f"{where} is an array whose shape does not match its data")
    _check_string_width(dtype, data, where)
    if dtype.kind == "f":
        data = [_decode_float(item, where) for item in data]
    elif dtype.kind == "O":
        items = [decode(item, where, primitive=True) for item in data]
        array = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            array[i] = item
        return array.reshape(shape)
    elif dtype.kind == "U":
        if not all(isinstance(item, str) for item in data):
            raise ValueError(f"{where} is a string array holding non-strings")
    elif not all(isinstance(item, (int, bool)) for item in data):
        raise ValueError(f"{where} is an integer or boolean array holding other values")
    return np.asarray(data, dtype=dtype).reshape(shape)


def _decode_scalar(value, where):
    dtype = _decode_dtype(value.get("dtype"), where)
    if dtype.kind == "O":
        raise ValueError(f"{where} is an object scalar")
    item = value.get("value")
    if dtype.kind == "f":
        item = _decode_float(item, where)
    elif not isinstance(item, (int, bool, str)):
        raise ValueError(f"{where} holds a {type(item).__name__}")
    _check_string_width(dtype, [item], where)
    return np.asarray(item, dtype=dtype)[()]


def decode(value, where: str, *, primitive: bool = False):
    """The inverse of :func:`encode`.

    Parameters
    ----------
    value : object
        JSON data written by :func:`encode`.
    where : str
        Where ``value`` was found, for error messages.
    primitive : bool, default=False
        Accept only numbers, strings, booleans and None.

    Returns
    -------
    value : object

    Raises
    ------
    ValueError
        On anything :func:`encode` did not write.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and not primitive:
        return [decode(item, where) for item in value]
    if not isinstance(value, dict):
        raise ValueError(f"{where} holds an unexpected {type(value).__name__}")
    kind = value.get("$kind")
    if kind == "float":
        return _decode_float(value, where)
    if kind == "scalar":
        return _decode_scalar(value, where)
    if primitive:
        raise ValueError(f"{where} holds an unexpected {kind!r:.40} entry")
    if kind == "tuple" and isinstance(value.get("items"), list):
        return tuple(decode(item, where) for item in value["items"])
    if kind == "dict" and isinstance(value.get("items"), list):
        pairs = value["items"]
        if not all(isinstance(pair, list) and len(pair) == 2 for pair in pairs):
            raise ValueError(f"{where} is a malformed mapping")
        return {decode(key, where, primitive=True): decode(item, where) for key, item in pairs}
    if kind == "ndarray":
        return _decode_array(value, where)
    if kind == "dtype":
        return _decode_dtype(value.get("value"), where)
    if kind == "dtype_type":
        return _decode_dtype(value.get("value"), where).type
    if kind == "device" and isinstance(value.get("value"), str):
        try:
            return torch.device(value["value"])
        except (RuntimeError, TypeError):
            raise ValueError(f"{where} names an unknown device {value['value']!r:.40}") from None
    if kind == "random_state":
        state = decode(value.get("state"), where)
        random_state = np.random.RandomState()
        try:
            random_state.set_state(state)
        except (TypeError, ValueError, KeyError, IndexError, OverflowError):
            raise ValueError(f"{where} is not the state of a numpy RandomState") from None
        return random_state
    if kind == "optimizer":
        optimizer = getattr(torch.optim, str(value.get("name")), None)
        if not (isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer)):
            raise ValueError(f"{where} names an unknown optimizer {value.get('name')!r:.40}")
        return optimizer
    if kind == "cell" and isinstance(value.get("name"), str):
        return get_cell(value["name"])
    raise ValueError(f"{where} holds an unknown entry {kind!r:.40}")


def dumps(data) -> bytes:
    """Strict, sorted, UTF-8 JSON of ``data`` (no NaN or infinity: :func:`encode` tags them).

    Parameters
    ----------
    data : object
        JSON data, as :func:`encode` returns it.

    Returns
    -------
    text : bytes
    """
    return json.dumps(data, allow_nan=False, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _reject_constant(name):
    raise ValueError(f"the JSON holds the non-standard constant {name}")


def loads(data: bytes):
    """Parse strict JSON; NaN and infinity constants are refused.

    Parameters
    ----------
    data : bytes
        UTF-8 JSON text.

    Returns
    -------
    value : object

    Raises
    ------
    ValueError
        If ``data`` is not valid UTF-8 JSON (or nests too deeply).
    """
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("the JSON nests too deeply") from None
