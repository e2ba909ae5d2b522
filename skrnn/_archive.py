"""Reading the zip archives of JSON and safetensors behind model files and checkpoints, bounded.

Model files (:mod:`skrnn._persistence`) and checkpoints (:mod:`skrnn._checkpoint`) are zip
archives of a few named entries: JSON, and tensors in the safetensors format. Whatever such an
archive declares, reading it allocates little more than its own size: the zip directory's
entries and sizes are checked before anything is read (exactly the expected entries, none
larger than its limit in :mod:`skrnn._limits`, none that inflates a hundredfold, none beyond
the end of the file), entries are read in bounded chunks whatever size they declare, and the
safetensors header is checked to describe exactly the bytes of its entry before any tensor is
read.

Every function takes ``refuse``, which turns a description of the problem (a sentence such
as ``"its entry model.json cannot be read (...)."``) into the exception to raise, so that model
files and checkpoints each word their own errors.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable

import torch

from ._json import loads
from ._limits import COMPRESSION_RATIO_FLOOR, MAX_COMPRESSION_RATIO, MAX_HEADER_BYTES

Refuse = Callable[[str], Exception]

# Entries are read this much at a time, so no declared size is ever allocated at once.
_READ_CHUNK = 1 << 20

# safetensors' dtype names, and the size of one element of each.
SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_ITEM_SIZES = {
    name: torch.empty((), dtype=dtype).element_size() for dtype, name in SAFETENSORS_DTYPES.items()
}


def open_archive(file, refuse: Refuse, what: str) -> zipfile.ZipFile:
    """The zip archive in ``file`` (a path or a binary file object).

    ``what`` says how such files are written, for the message when ``file`` is no zip.
    """
    try:
        return zipfile.ZipFile(file)
    except Exception:  # BadZipFile, and whatever else a damaged directory makes zipfile raise
        raise refuse(
            "it is not a zip archive (the file may be truncated, or be another kind of file "
            f"such as a pickle). {what}"
        ) from None


def check_entries(
    archive: zipfile.ZipFile, limits: dict[str, int], refuse: Refuse, *, only: str | None = None
) -> dict[str, zipfile.ZipInfo]:
    """The directory records of the entries named in ``limits`` (each at most that many
    bytes), once the archive holds exactly those entries, once each, and the sizes they
    declare are plausible.

    With ``only`` (one of those names), that entry alone is checked and the archive may hold
    others: a file's format version is read before the rest, which a newer version may change.
    """
    infos = archive.infolist()
    names = [info.filename for info in infos]
    wanted = list(limits) if only is None else [only]
    if any(names.count(name) != 1 for name in wanted) or (
        only is None and len(names) != len(limits)
    ):
        raise refuse(
            f"it holds the entries {sorted(names)[:10]!r:.300}, but such a file holds exactly "
            f"{sorted(limits)}, once each."
        )
    infos = [info for info in infos if info.filename in wanted]
    archive_size = archive.fp.seek(0, os.SEEK_END)
    for info in infos:
        if info.header_offset + info.compress_size > archive_size:
            raise refuse(
                f"its entry {info.filename} declares {info.compress_size} bytes that the file "
                "does not hold (it may be truncated)."
            )
        if info.file_size > limits[info.filename]:
            raise refuse(
                f"its entry {info.filename} declares {info.file_size} bytes, more than the "
                f"{limits[info.filename]} such an entry may hold."
            )
        if (
            info.file_size > COMPRESSION_RATIO_FLOOR
            and info.file_size > MAX_COMPRESSION_RATIO * info.compress_size
        ):
            raise refuse(
                f"its entry {info.filename} would inflate from {info.compress_size} to "
                f"{info.file_size} bytes, which no skrnn file does (a zip bomb?)."
            )
    return {info.filename: info for info in infos}


def read_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    refuse: Refuse,
    *,
    limit: int,
    offset: int = 0,
    whole: bool = True,
) -> bytes:
    """At most ``limit`` bytes of an entry from ``offset``, read in chunks, whatever size the
    entry declares. With ``whole``, the rest of the entry, which must not hold more."""
    chunks, size, most = [], 0, limit + 1 if whole else limit
    try:
        with archive.open(info) as entry:
            if offset:
                entry.read(offset)
            while size < most:
                chunk = entry.read(min(_READ_CHUNK, most - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except Exception as exc:  # CRC and zlib errors, truncation, unknown compression, encryption
        raise refuse(
            f"its entry {info.filename} cannot be read ({type(exc).__name__}: {exc})."
        ) from None
    if size > limit:
        raise refuse(f"its entry {info.filename} holds more than {limit} bytes.")
    return b"".join(chunks)


def json_object(data: bytes, refuse: Refuse, name: str) -> dict:
    """The JSON object that the entry ``name`` holds in ``data``."""
    try:
        value = loads(data)
    except ValueError as exc:
        raise refuse(f"its {name} is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise refuse(f"its {name} is not a JSON object.")
    return value


def safetensors_layout(
    archive, info, refuse: Refuse, what: str
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The dtype and shape of every tensor that the safetensors header of an entry declares,
    checked to describe exactly the bytes of the entry, before any of them is read.

    The format is an 8-byte little-endian header length, a JSON header that gives each tensor's
    dtype, shape and byte range, and the tensors' bytes, back to back. ``what`` names the
    tensors in messages (``"its weights"``).
    """

    def invalid(problem):
        return refuse(f"{what} are not a valid safetensors file: {problem}.")

    start = read_entry(archive, info, refuse, limit=8, whole=False)
    if len(start) < 8:
        raise invalid("they are shorter than a header")
    length = int.from_bytes(start, "little")
    if not 2 <= length <= min(MAX_HEADER_BYTES, info.file_size - 8):
        raise invalid(f"they declare a header of {length} bytes in {info.file_size}")
    header = read_entry(archive, info, refuse, limit=length, offset=8, whole=False)
    if len(header) < length:
        raise invalid("they end inside the header")
    try:
        header = loads(header)
    except ValueError as exc:
        raise invalid(f"the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise invalid("the header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(value, str) for value in metadata.values()
    ):
        raise invalid("the header's __metadata__ is not a mapping of strings")
    layout, ranges = {}, []
    for name, entry in header.items():
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            dtype not in _ITEM_SIZES
            or not isinstance(shape, list)
            or not all(type(size) is int and size >= 0 for size in shape)
            or not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(offset) is int for offset in offsets)
            or not 0 <= offsets[0] <= offsets[1]
            or offsets[1] - offsets[0] != _ITEM_SIZES[dtype] * math.prod(shape)
        ):
            raise invalid(f"the tensor {name!r:.80} is declared as {entry!r:.200}")
        layout[name] = (dtype, tuple(shape))
        ranges.append(offsets)
    end = 0
    for begin, stop in sorted(ranges):
        if begin != end:
            raise invalid("the tensors' byte ranges overlap or leave gaps")
        end = stop
    if 8 + length + end != info.file_size:
        raise invalid(
            f"the header describes {8 + length + end} bytes, but the entry holds {info.file_size}"
        )
    return layout


def read_whole_entry(archive, info, refuse: Refuse) -> bytes:
    """All the bytes of an entry, exactly as many as its directory record declares (checked
    against the entry limits by :func:`check_entries`)."""
    data = read_entry(archive, info, refuse, limit=info.file_size)
    if len(data) != info.file_size:
        raise refuse(f"its entry {info.filename} ends early.")
    return data


def load_tensors(data: bytes, refuse: Refuse, what: str) -> dict[str, torch.Tensor]:
    """The tensors of safetensors ``data``."""
    import safetensors.torch

    try:
        return safetensors.torch.load(data)
    except Exception as exc:
        raise refuse(f"{what} cannot be read ({type(exc).__name__}: {exc}).") from None


def tensor_layout(state: dict) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The safetensors dtype name and the shape of every tensor of a state dict."""
    return {
        name: (SAFETENSORS_DTYPES.get(tensor.dtype, str(tensor.dtype)), tuple(tensor.shape))
        for name, tensor in state.items()
    }
