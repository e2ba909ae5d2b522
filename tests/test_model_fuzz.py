"""Model files that cannot hurt: whatever a file holds, ``skrnn.load`` either returns an estimator
that predicts, or raises :class:`~skrnn.exceptions.ModelFileError`.

A seeded mutator turns a small fitted model of each estimator into thousands of damaged or
crafted files: bit flips, truncations, junk, swapped, renamed, duplicated or recompressed zip
members, zip bombs, edits of model.json and of the safetensors header with checksums that match
again, and edited weights. Every file must load and predict finite results of the right shape,
or be refused with ModelFileError; no other exception, no file written, memory bounded. Below
the fuzz, one regression test per kind of file it found that got through.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import io
import json
import math
import os
import random
import resource
import struct
import time
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
import torch

import skrnn
from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSegmenter
from skrnn.exceptions import ModelFileError


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Thousands of tiny predictions: with more threads than one, OpenMP's spin-waiting makes
    them many times slower on a busy machine (5 minutes instead of 10 s, measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

N_MUTANTS = 2000
SEED = 16_2

TINY = dict(hidden_size=4, max_epochs=1, batch_size=8, random_state=0, device="cpu")
RNG = np.random.default_rng(0)
X = RNG.random((12, 6, 6)).astype(np.float32)
MASKS = (X > 0.5).astype(np.int32)
LEVELS = (X[:, :4, :4] * 4).astype(np.int64)

KINDS = ["classifier", "regressor", "segmenter", "generator"]


def _fit(kind):
    if kind == "classifier":
        return RNNImageClassifier(**TINY, class_weight="balanced").fit(X, np.array(list("abc") * 4))
    if kind == "regressor":
        return RNNImageRegressor(**{**TINY, "hidden_size": (4, 3)}).fit(X, RNG.random((12, 2)))
    if kind == "segmenter":
        return RNNSegmenter(**TINY, conv=(2,), head=(3,), ignore_label=9).fit(X, MASKS)
    return RNNImageGenerator(**TINY, embedding_dim=4).fit(LEVELS, np.arange(12) % 2)


@pytest.fixture(scope="module", params=KINDS)
def model(request):
    """A tiny fitted estimator and its model file, as bytes."""
    estimator = _fit(request.param)
    buffer = io.BytesIO()
    estimator.save(buffer)
    return estimator, buffer.getvalue()


# --------------------------------------------------------------------------- the mutator
def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@functools.lru_cache(maxsize=4)
def _original_entries(data: bytes) -> dict[str, bytes]:
    return _entries(data)


def _zip(members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``(name, data)`` pairs (names may repeat) or ``(name, data, compression)``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data, *kind in members:
                archive.writestr(name, data, kind[0] if kind else compression)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _resealed(entries: dict[str, bytes]) -> bytes:
    """The entries as a model file whose manifest checksums match them again."""
    entries = dict(entries)
    manifest = json.loads(entries["manifest.json"])
    manifest["sha256"] = {
        name: _sha(entries[name]) for name in ("model.json", "weights.safetensors")
    }
    entries["manifest.json"] = json.dumps(manifest).encode()
    return _zip(
        [
            ("manifest.json", entries["manifest.json"]),
            ("model.json", entries["model.json"]),
            ("weights.safetensors", entries["weights.safetensors"], zipfile.ZIP_STORED),
        ]
    )


# Stands for JSON nested too deeply to build as Python data; replaced in the JSON text.
_DEEP = "$deep$"


def _dumps(data) -> bytes:
    depth = 5000
    return json.dumps(data).replace(f'"{_DEEP}"', "[" * depth + "0" + "]" * depth).encode()


def _odd_value(rng: random.Random, old):
    """A value of the wrong type, size or sign, or a malformed tagged value."""
    choices = [
        None, True, False, 0, -1, 1, 2, 3, 7, -(10**9), 10**9, 2**31 - 1, 2**63, 10**30,
        1e308, -0.5, 0.5, 1.5, "", "x" * rng.choice([3, 1000, 100_000]), "auto", "rows",
        "cpu", "meta", "cuda", "checkpoint.ckpt", [], {}, [1], [0], [1, 2, 3], [[1, 2], [3]],
        ["a", "b"],
        {"$kind": "float", "value": "nan"}, {"$kind": "float", "value": "inf"},
        {"$kind": "float", "value": "-inf"}, {"$kind": "tuple", "items": []},
        {"$kind": "tuple", "items": [0, 0, 0]}, {"$kind": "tuple", "items": [10**6, 10**6, 1]},
        {"$kind": "tuple", "items": [6, 6, 1, 1]}, {"$kind": "tuple", "items": [-6, 6, 1]},
        {"$kind": "tuple", "items": ["a"]}, {"$kind": "dict", "items": [[1, 2]]},
        {"$kind": "ndarray", "dtype": "<f8", "shape": [2], "data": [1.0, 2.0]},
        {"$kind": "ndarray", "dtype": "<f8", "shape": [1, 2], "data": [1.0, 2.0]},
        {"$kind": "ndarray", "dtype": "<f8", "shape": [3], "data": [0.0, 0.0, 0.0]},
        {"$kind": "ndarray", "dtype": "<i8", "shape": [2], "data": [1, 1]},
        {"$kind": "ndarray", "dtype": "<i8", "shape": [2], "data": [1, 0]},
        {"$kind": "ndarray", "dtype": "<U99999999", "shape": [2], "data": ["a", "b"]},
        {"$kind": "ndarray", "dtype": "|O", "shape": [2], "data": [1, "a"]},
        {"$kind": "ndarray", "dtype": "<c16", "shape": [1], "data": [1]},
        {"$kind": "ndarray", "dtype": "<f8", "shape": [10**12, 0], "data": []},
        {"$kind": "scalar", "dtype": "<U99999999", "value": "a"},
        {"$kind": "scalar", "dtype": "<f4", "value": 1e300},
        {"$kind": "dtype", "value": "<U9999999"}, {"$kind": "dtype", "value": "<M8"},
        {"$kind": "dtype_type", "value": "|b1"}, {"$kind": "device", "value": "nonsense"},
        {"$kind": "device", "value": "meta"}, {"$kind": "random_state", "state": [1, 2]},
        {"$kind": "optimizer", "name": "Optimizer"}, {"$kind": "optimizer", "name": "SGD"},
        {"$kind": "cell", "name": "lstm"}, {"$kind": "cell", "name": "unknown"},
        {"$kind": "nothing"},
    ]
    choices.append(_DEEP)
    if isinstance(old, bool):
        choices += [not old]
    elif isinstance(old, int):
        choices += [old + 1, old - 1, -old, old * 1000, 0]
    elif isinstance(old, float):
        choices += [old * 1e30, -old, 0.0, old + 1e-3]
    elif isinstance(old, dict) and old.get("$kind") == "tuple":
        items = old["items"]
        choices += [{"$kind": "tuple", "items": items + items[:1]}]
        if items and isinstance(items[0], int):
            choices += [{"$kind": "tuple", "items": [i + 1 for i in items]}]
    elif isinstance(old, dict) and old.get("$kind") == "ndarray":
        data = old["data"]
        for change in ("shape", "dtype", "data"):
            edited = copy.deepcopy(old)
            if change == "shape":
                edited["shape"] = [len(data) + 1]
            elif change == "dtype":
                edited["dtype"] = rng.choice(["<f4", "<i8", "|b1", "<U3", "|O", "<u1"])
            elif data:
                edited["data"][rng.randrange(len(data))] = rng.choice(
                    [data[0], -1, 10**20, {"$kind": "float", "value": "nan"}, "z", None]
                )
            choices.append(edited)
        choices.append({**old, "data": data[::-1]})
        choices.append({**old, "data": data[:-1], "shape": [max(len(data) - 1, 0)]})
    return copy.deepcopy(rng.choice(choices))


def _paths(value, path=()):
    """Every place in decoded JSON data: tuples of keys and indices."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, path + (i,))


def _edit_json(rng: random.Random, model: dict) -> dict:
    model = copy.deepcopy(model)
    paths = [p for p in _paths(model) if p]
    # Most edits hit the parameters and fitted attributes, where values are read.
    focus = [p for p in paths if p[0] in ("params", "fitted") and len(p) <= 4]
    path = rng.choice(focus if focus and rng.random() < 0.85 else paths)
    parent = model
    for key in path[:-1]:
        parent = parent[key]
    key = path[-1]
    action = rng.random()
    if action < 0.12 and isinstance(parent, dict):
        del parent[key]
    elif action < 0.18 and isinstance(parent, dict):
        parent["zz_" + str(key)] = parent[key]  # an unknown key beside it
    elif action < 0.19 and path[0] == "params":
        model["params"]["checkpoint"] = "written-by-a-fit.ckpt"  # a parameter never saved
    elif action < 0.22 and isinstance(parent, dict) and path[0] == "fitted":
        parent[rng.choice(["predict", "__dict__", "net_", "_device", "__class__",
                           "_forward", "patch_size_", "_conditional", "fit"])] = parent[key]
    else:
        parent[key] = _odd_value(rng, parent[key])
    return model


def _header(weights: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", weights[:8])
    return json.loads(weights[8 : 8 + length]), weights[8 + length :]


def _with_header(header: dict, data: bytes, length=None) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def _edit_weights(rng: random.Random, weights: bytes) -> bytes:
    header, data = _header(weights)
    names = [name for name in header if name != "__metadata__"]
    name = rng.choice(names)
    entry = header[name]
    action = rng.randrange(9)
    if action == 0:  # a huge tensor, with or without the offsets to match
        entry["shape"] = [rng.choice([10**5, 10**10, 2**62])] + entry["shape"][1:]
        if rng.random() < 0.5:
            entry["data_offsets"][1] = entry["data_offsets"][0] + 4 * math.prod(entry["shape"])
    elif action == 1:
        entry["shape"] = entry["shape"][::-1] if len(entry["shape"]) > 1 else entry["shape"] + [1]
    elif action == 2:
        entry["dtype"] = rng.choice(["F64", "F16", "I64", "U8", "BOOL", "X"])
    elif action == 3:
        entry["data_offsets"] = [rng.choice([-1, 0, 3, 2**40]), rng.choice([0, 8, 2**63])]
    elif action == 4:
        header[name + ".extra"] = header.pop(name)
    elif action == 5:
        del header[name]
    elif action == 6:  # a header length that points past the end, or is enormous
        return _with_header(header, data, rng.choice([2**63, 2**40, len(weights), 3]))
    elif action == 7:  # a float in the data becomes NaN, infinite or another number
        start, stop = entry["data_offsets"]
        if entry["dtype"] == "F32" and stop > start:
            at = start + 4 * rng.randrange((stop - start) // 4)
            # (Huge finite weights would make any model's outputs overflow: not tried.)
            value = rng.choice([math.nan, math.inf, -math.inf, -2.5, 0.0, 0.7])
            data = data[:at] + struct.pack("<f", value) + data[at + 4 :]
    else:
        header["__metadata__"] = rng.choice([{"a": "b"}, {"a": 1}, [], "x"])
    return _with_header(header, data)


def _bomb(size: int) -> bytes:
    """A deflated member of ``size`` zero bytes: a few KB in the file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("bomb", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                member.write(chunk)
    return buffer.getvalue()


def mutate(rng: random.Random, original: bytes) -> tuple[str, bytes]:
    """One mutated model file and the name of the mutation."""
    entries = dict(_original_entries(original))
    names = list(entries)
    kind = rng.choices(
        ["flip", "truncate", "junk", "members", "json", "manifest", "weights", "bomb"],
        weights=[10, 6, 4, 10, 45, 5, 17, 3],
    )[0]
    data = original
    if kind == "flip":
        data = bytearray(original)
        for _ in range(rng.choice([1, 1, 2, 8])):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        data = bytes(data)
    elif kind == "truncate":
        data = original[: rng.randrange(len(original))]
    elif kind == "junk":
        junk = rng.randbytes(rng.choice([1, 100, 5000]))
        data = original + junk if rng.random() < 0.7 else junk + original
    elif kind == "members":
        a, b = rng.sample(names, 2)
        action = rng.randrange(7)
        members = [(name, entries[name]) for name in names]
        if action == 0:  # swap two members' contents
            members = [(n, entries[b] if n == a else entries[a] if n == b else d)
                       for n, d in members]
        elif action == 1:  # rename one
            members = [(n + rng.choice(["x", "/", " "]) if n == a else n, d) for n, d in members]
        elif action == 2:  # a duplicate, first or last
            extra = (a, entries[b])
            members = [extra] + members if rng.random() < 0.5 else members + [extra]
        elif action == 3:  # one missing
            members = [(n, d) for n, d in members if n != a]
        elif action == 4:  # one more
            members.append((rng.choice(["extra.bin", "../evil", "/abs"]), b"hello"))
        elif action == 5:  # every member stored, or every member deflated: still a model file
            data = _zip(members, rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
            return kind, data
        else:
            members = members[::-1]
        data = _zip(members)
    elif kind == "json":
        model = json.loads(entries["model.json"])
        entries["model.json"] = _dumps(_edit_json(rng, model))
        data = _resealed(entries)
    elif kind == "manifest":
        manifest = json.loads(entries["manifest.json"])
        key = rng.choice(["format", "format_version", "sha256", "skrnn_version"])
        manifest[key] = _odd_value(rng, manifest[key])
        entries["manifest.json"] = _dumps(manifest)
        data = _zip(list(entries.items()))
    elif kind == "weights":
        entries["weights.safetensors"] = _edit_weights(rng, entries["weights.safetensors"])
        data = _resealed(entries)
    else:  # a zip bomb: a highly compressible member in place of, or inside, an entry
        target = rng.choice(names)
        if rng.random() < 0.5:
            members = [(n, d) for n, d in entries.items() if n != target]
            data = _zip(members + [(target, b" " * (rng.choice([2, 9]) << 20))])
        else:
            data = _bomb_member(entries, target, 2 << 20)
    return kind, data


def _bomb_member(entries, target, size) -> bytes:
    """The entries with ``target`` replaced by one large highly compressible member whose
    checksum in the manifest matches."""
    entries = dict(entries)
    if target == "weights.safetensors":
        header, data = _header(entries[target])
        entries[target] = _with_header(header, data) + bytes(size)
    else:
        entries[target] = entries[target] + b" " * size
    manifest = json.loads(entries["manifest.json"])
    manifest["sha256"] = {n: _sha(entries[n]) for n in ("model.json", "weights.safetensors")}
    if target != "manifest.json":
        entries["manifest.json"] = json.dumps(manifest).encode()
    return _zip(list(entries.items()))


# --------------------------------------------------------------------------- the property
def _inputs(estimator, rng):
    """A few valid inputs for the loaded ``estimator``, whatever shape it was fitted on."""
    layout = tuple(estimator._input_layout)
    if isinstance(estimator, RNNImageGenerator):
        return estimator.levels_[rng.integers(estimator.n_levels_, size=(3,) + layout)]
    return rng.random((3,) + layout).astype(np.float32)


def _check_predictions(estimator):
    rng = np.random.default_rng(0)
    images = _inputs(estimator, rng)
    if isinstance(estimator, RNNImageGenerator):
        scores = estimator.score_samples(images)
        assert scores.shape == (3,) and np.isfinite(scores).all()
        samples = estimator.sample(2, random_state=0)
        assert samples.shape == (2,) + tuple(estimator._input_layout)
        assert np.isin(samples, estimator.levels_).all()
        return
    predicted = estimator.predict(images)
    assert len(predicted) == 3
    if isinstance(estimator, RNNImageRegressor):
        expected = (3,) if estimator._y_1d else (3, estimator.n_outputs_)
        assert predicted.shape == expected and np.isfinite(predicted).all()
        return
    assert np.isin(predicted, estimator.classes_).all()
    proba = estimator.predict_proba(images)
    n_classes = len(estimator.classes_)
    if isinstance(estimator, RNNSegmenter):
        assert predicted.shape == images.shape[:3]
        assert proba.shape == images.shape[:3] + (n_classes,)
    else:
        assert proba.shape == (3, n_classes)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, rtol=1e-4)


def _load_outcome(path) -> str:
    """'refused', or 'loaded' once the loaded estimator has predicted."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator = skrnn.load(path)
    except ModelFileError:
        return "refused"
    _check_predictions(estimator)
    return "loaded"


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_every_mutated_model_file_loads_and_predicts_or_is_refused(model, tmp_path, monkeypatch):
    estimator, original = model
    monkeypatch.chdir(tmp_path)  # where a relative path would be written
    rng = random.Random(f"{SEED}-{type(estimator).__name__}")
    outcomes, failures, written = {}, [], []
    rss_before = _max_rss_mb()
    start = time.perf_counter()
    for i in range(N_MUTANTS):
        kind, data = mutate(rng, original)
        path = tmp_path / f"mutant{i}.skrnn"  # a new file: rewriting one is slow on some disks
        path.write_bytes(data)
        try:
            outcome = _load_outcome(path)
        except Exception as exc:  # noqa: BLE001 - the property under test
            failures.append(f"#{i} {kind}: {type(exc).__name__}: {str(exc)[:300]}")
            outcome = "failed"
        outcomes[kind, outcome] = outcomes.get((kind, outcome), 0) + 1
        if os.listdir(tmp_path) != [path.name]:
            written.append(f"#{i} {kind}: {sorted(os.listdir(tmp_path))}")
        path.unlink()
    elapsed = time.perf_counter() - start
    print(
        f"\n{type(estimator).__name__}: {N_MUTANTS} mutants in {elapsed:.1f} s, max RSS "
        f"+{_max_rss_mb() - rss_before:.0f} MB: {sorted(outcomes.items())}"
    )
    assert not failures, "\n".join(failures[:30])
    assert not written, written[:10]
    assert _max_rss_mb() - rss_before < 300
    # The mutator reaches both outcomes, and its crafted files reach the checks behind the
    # checksums.
    loaded = sum(n for (_, outcome), n in outcomes.items() if outcome == "loaded")
    assert loaded >= N_MUTANTS // 20
    assert outcomes.get(("json", "refused"), 0) >= N_MUTANTS // 4


# --------------------------------------------------------------------------- regressions
@pytest.fixture(scope="module")
def saved_files():
    """Each estimator's model file, as bytes, by kind."""
    files = {}
    for kind in KINDS:
        buffer = io.BytesIO()
        _fit(kind).save(buffer)
        files[kind] = buffer.getvalue()
    return files


def _edited(data: bytes, edit) -> bytes:
    """The model file with ``edit(model)`` applied to its model.json, checksums matching."""
    entries = _entries(data)
    model = json.loads(entries["model.json"])
    edit(model)
    entries["model.json"] = json.dumps(model).encode()
    return _resealed(entries)


def _load_bytes(data: bytes):
    return skrnn.load(io.BytesIO(data))


def _peak_memory_of(call) -> int:
    """Peak bytes that ``call`` allocates through Python and numpy while it runs."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _refused(data: bytes, message: str) -> None:
    with pytest.raises(ModelFileError, match=message):
        _load_bytes(data)


def _declare_sizes(data: bytes, name: str, *, compressed: int, uncompressed: int) -> bytes:
    """The zip with the sizes of member ``name`` changed in its central directory record."""
    data = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + length] == name.encode():
            struct.pack_into("<II", data, at + 20, compressed, uncompressed)
        at = data.find(b"PK\x01\x02", at + 4)
    return bytes(data)


def _set(section, name, value):
    def edit(model):
        model[section][name] = value

    return edit


def _remove(name):
    def edit(model):
        del model["fitted"][name]

    return edit


_TAGGED_TUPLE = {"$kind": "tuple", "items": [7, 6, 1]}

# Files the fuzz found (before load checked fitted attributes) that loaded and then failed at
# predict, sample or score_samples with TypeError, AttributeError, ValueError or KeyError,
# or predicted NaN; each is now refused at load with a message naming what is wrong.
LOADED_THEN_FAILED = {
    "layout removed": ("classifier", _remove("_input_layout"), "_input_layout"),
    "attribute shadows predict": ("classifier", _set("fitted", "predict", 1), "'predict'"),
    "bool num_layers": ("classifier", _set("params", "num_layers", True), "not booleans"),
    "y_1d removed": ("regressor", _remove("_y_1d"), "_y_1d"),
    "y_mean of strings": (
        "regressor",
        _set("fitted", "_y_mean", {"$kind": "ndarray", "dtype": "<U1", "shape": [2],
                                   "data": ["a", "b"]}),
        "_y_mean",
    ),
    "image shape of other images": ("regressor", _set("fitted", "image_shape_", _TAGGED_TUPLE),
                                    "n_features_in_"),
    "exact levels removed": ("generator", _remove("_exact_levels"), "_exact_levels"),
    "string sample dtype": (
        "generator", _set("fitted", "_sample_dtype", {"$kind": "dtype", "value": "<U9999999"}),
        "_sample_dtype",
    ),
    "NaN level": (
        "generator",
        _set("fitted", "levels_", {"$kind": "ndarray", "dtype": "<f8", "shape": [4],
                                   "data": [0.0, 1.0, {"$kind": "float", "value": "nan"}, 3.0]}),
        "levels_",
    ),
    "huge n_features_in_": ("generator", _set("fitted", "n_features_in_", 10**30),
                            "n_features_in_"),
    "prior not a distribution": (
        "generator",
        _set("fitted", "class_prior_", {"$kind": "ndarray", "dtype": "<f8", "shape": [2],
                                        "data": [0.9, 0.9]}),
        "class_prior_",
    ),
}


# Fitted attributes that a fit could not have made from the parameters, which loaded (and
# predicted wrongly) or were refused for the wrong reason.
NOT_WHAT_FIT_MAKES = {
    "attribute replaces __dict__": (
        "classifier", _set("fitted", "__dict__", {"$kind": "dict", "items": []}), "__dict__"
    ),
    "bce with 3 classes": (
        "classifier", _set("params", "loss", "binary_cross_entropy"), "two classes"
    ),
    "classes not sorted": (
        "classifier",
        _set("fitted", "classes_", {"$kind": "ndarray", "dtype": "<U1", "shape": [3],
                                    "data": ["c", "b", "a"]}),
        "classes_",
    ),
    "zero input std": ("segmenter", _set("fitted", "_input_std", [0.0]), "_input_std"),
    "patch size not what fit makes": (
        "segmenter", _set("fitted", "_patch_size", {"$kind": "tuple", "items": [3, 3]}),
        "_patch_size",
    ),
}


@pytest.mark.parametrize("case", list(LOADED_THEN_FAILED))
def test_a_file_that_loaded_then_failed_to_predict_is_refused_at_load(saved_files, case):
    kind, edit, message = LOADED_THEN_FAILED[case]
    _refused(_edited(saved_files[kind], edit), message)


@pytest.mark.parametrize("case", list(NOT_WHAT_FIT_MAKES))
def test_fitted_attributes_a_fit_could_not_make_are_refused(saved_files, case):
    kind, edit, message = NOT_WHAT_FIT_MAKES[case]
    _refused(_edited(saved_files[kind], edit), message)


def test_weights_holding_nan_are_refused(saved_files):
    entries = _entries(saved_files["classifier"])
    header, data = _header(entries["weights.safetensors"])
    start, _ = header["head.1.weight"]["data_offsets"]
    data = data[:start] + struct.pack("<f", math.nan) + data[start + 4 :]
    entries["weights.safetensors"] = _with_header(header, data)
    with pytest.raises(ModelFileError, match="NaN or infinite values \\(in 'head.1.weight'\\)"):
        _load_bytes(_resealed(entries))


@pytest.mark.parametrize(
    "value, message",
    [({"$kind": "device", "value": "nonsense"}, "unknown device"),
     ({"$kind": "random_state", "state": ["MT19937", [1, 2]]}, "RandomState"),
     ({"$kind": "ndarray", "dtype": "<U99999999", "shape": [2], "data": ["a", "b"]},
      "far wider than its longest string")],
    ids=["device", "random_state", "wide strings"],
)
def test_tagged_values_that_cannot_be_decoded_are_refused(saved_files, value, message):
    data = _edited(saved_files["classifier"], _set("params", "random_state", value))
    assert _peak_memory_of(lambda: _refused(data, message)) < 4 << 20


def test_a_1kb_file_claiming_a_10gb_tensor_is_refused_without_allocating_it(saved_files):
    entries = _entries(saved_files["classifier"])
    huge = 10 << 30
    header = {"head.1.weight": {"dtype": "F32", "shape": [huge // 4], "data_offsets": [0, huge]}}
    entries["weights.safetensors"] = _with_header(header, b"")
    crafted = _resealed(entries)
    assert len(crafted) < 2048
    peak = _peak_memory_of(lambda: _refused(crafted, "weights are not a valid safetensors"))
    assert peak < 4 << 20


def test_parameters_describing_a_10gb_model_are_refused_without_building_it(saved_files):
    """The header, the directory and model.json all agree on a 10 GB model; the file is not."""
    def edit(model):
        model["params"]["hidden_size"] = 30_000  # 2 x (3 x 30,000 x 30,000) floats: 43 GB

    crafted = _edited(saved_files["classifier"], edit)
    start = time.perf_counter()
    peak = _peak_memory_of(lambda: _refused(crafted, "weights do not fit"))
    assert peak < 4 << 20 and time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "kind, section, name, value, message",
    [("classifier", "params", "num_layers", 10**30, "far more tensors"),
     ("regressor", "params", "hidden_size",
      {"$kind": "tuple", "items": random.Random(0).choices(range(1, 10), k=100_000)},
      "far more tensors"),
     ("generator", "params", "context_radius", 10**6, "causal window table")],
    ids=["num_layers", "hidden_size", "context_radius"],
)
def test_parameters_describing_absurd_models_are_refused_quickly(
    saved_files, kind, section, name, value, message
):
    crafted = _edited(saved_files[kind], _set(section, name, value))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=message):
        _load_bytes(crafted)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("size", [4 << 20, 64 << 20], ids=["4MiB", "64MiB"])
@pytest.mark.parametrize("entry", ["model.json", "weights.safetensors", "extra"])
def test_a_zip_bomb_is_refused_without_inflating_it(saved_files, entry, size):
    entries = _entries(saved_files["segmenter"])
    members = [(name, data) for name, data in entries.items() if name != entry]
    members.append((entry, bytes(size)))  # zeros: a thousandth of that deflated
    bomb = _zip(members)
    assert len(bomb) < len(saved_files["segmenter"]) + size // 500
    message = "a zip bomb|may hold|holds exactly"
    assert _peak_memory_of(lambda: _refused(bomb, message)) < 4 << 20


def test_a_member_that_inflates_beyond_its_declared_size_is_read_no_further(saved_files):
    entries = _entries(saved_files["classifier"])
    members = [(name, entries[name]) for name in ("manifest.json", "weights.safetensors")]
    bomb = _zip(members + [("model.json", b" " * (64 << 20))])  # declares 64 MiB
    bomb = _declare_sizes(bomb, "model.json", compressed=len(bomb) // 2, uncompressed=1000)
    assert _peak_memory_of(lambda: _refused(bomb, "model.json")) < 4 << 20


def test_a_member_declaring_more_bytes_than_the_file_holds_is_refused(saved_files):
    crafted = _declare_sizes(
        saved_files["classifier"], "weights.safetensors", compressed=10**9, uncompressed=10**9
    )
    _refused(crafted, "declares 1000000000 bytes that the file does not hold")


def test_a_file_cannot_choose_where_a_later_fit_writes(saved_files, tmp_path):
    target = tmp_path / "elsewhere.ckpt"
    crafted = _edited(saved_files["classifier"], _set("params", "checkpoint", str(target)))
    _refused(crafted, "checkpoint")


def test_a_saved_device_or_thread_count_this_machine_lacks_is_replaced(saved_files):
    crafted = _edited(saved_files["classifier"], _set("params", "n_threads", 2**31 - 1))
    with pytest.warns(UserWarning, match="n_threads=None"):
        loaded = _load_bytes(crafted)
    assert loaded.n_threads is None
    _check_predictions(loaded)


def test_the_causal_window_size_the_generator_bounds_is_that_of_its_table():
    from skrnn.sequence import causal_sources

    for shape, radius in [((4, 5, 1), 0), ((4, 5, 3), 1), ((6, 6, 2), 3)]:
        assert causal_sources(shape, radius).shape[1] == 2 * radius**2 + 2 * radius + shape[2]


def _with_weights(data: bytes, change) -> bytes:
    """The model file with ``change(name, values)`` applied to each float32 tensor's values
    (a numpy array it may edit in place), checksums matching."""
    entries = _entries(data)
    header, weights = _header(entries["weights.safetensors"])
    weights = bytearray(weights)
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] != "F32":
            continue
        start, stop = entry["data_offsets"]
        values = np.frombuffer(weights, dtype="<f4", count=(stop - start) // 4, offset=start)
        values = values.copy()
        change(name, values)
        weights[start:stop] = values.tobytes()
    entries["weights.safetensors"] = _with_header(header, bytes(weights))
    return _resealed(entries)


def _recognizer_file() -> bytes:
    from skrnn import RNNSequenceRecognizer

    lines = RNG.random((12, 6, 16)).astype(np.float32)
    texts = ["1", "12", "2"] * 4
    buffer = io.BytesIO()
    RNNSequenceRecognizer(**TINY, conv=(2,)).fit(lines, texts).save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", [*KINDS, "recognizer"])
def test_finite_weights_that_overflow_together_are_refused(saved_files, kind):
    data = _recognizer_file() if kind == "recognizer" else saved_files[kind]

    def huge(name, values):
        # Every weight but the input statistics (a mean and spread of 3e38 make every input
        # -1); the recogniser's output layer alone, as its saturated GRU would output zeros.
        if "standard" not in name and (kind != "recognizer" or name.startswith("output.")):
            values[:] = 3e38  # finite, one by one

    with pytest.raises(ModelFileError, match="NaN or infinite outputs on a blank image"):
        _load_bytes(_with_weights(data, huge))


def test_one_huge_weight_is_refused_or_warned_of(saved_files):
    """A single weight of 3e38 overflows only where its input is not zero: refused where the
    check's images reach it, and otherwise loaded with a warning."""

    def huge(name, values):
        if name == "head.1.weight":
            values[0] = 3e38

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _load_bytes(_with_weights(saved_files["classifier"], huge))
        except ModelFileError as error:
            assert "NaN or infinite outputs" in str(error)
        else:
            assert any("weights as large as 3e+38" in str(w.message) for w in caught)


def test_large_weights_that_do_not_overflow_here_load_with_a_warning(saved_files):
    def large(name, values):
        if name == "head.1.weight":
            values[0] = 1e9

    with pytest.warns(UserWarning, match=r"weights as large as 1e\+09 \(in 'head.1.weight'\)"):
        loaded = _load_bytes(_with_weights(saved_files["classifier"], large))
    assert np.isfinite(loaded.predict_proba(X[:2])).all()


def test_trained_files_load_without_a_weight_warning(saved_files):
    for data in saved_files.values():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _load_bytes(data)


# --------------------------------------------------------------------------- sizes
# A file's checksums are no signature: whoever edits image_shape_ can make the rest agree and
# recompute them. These files are saved from estimators whose fitted sizes were changed and
# whose module was rebuilt for them, so every check of the file passes but the sizes.
def _claiming(estimator, **fitted) -> bytes:
    """The model file of ``estimator`` with the fitted attributes ``fitted`` (an image shape
    sets ``n_features_in_`` and ``_input_layout`` to agree) and a module built for them."""
    if "image_shape_" in fitted:
        shape = fitted["image_shape_"]
        fitted = {"n_features_in_": math.prod(shape), "_input_layout": shape[:2], **fitted}
    for name, value in fitted.items():
        setattr(estimator, name, value)
    estimator.net_.module_ = estimator._module_class(**estimator._module_params())
    buffer = io.BytesIO()
    estimator.save(buffer)
    return buffer.getvalue()


def _resident_growth(call) -> int:
    """How far the process's resident memory rose above its level before ``call``, at its
    peak while ``call`` ran (torch's allocations too), in bytes: Linux's peak, reset through
    /proc/self/clear_refs; the test is skipped where the peak cannot be reset."""

    def status(field):
        with open("/proc/self/status") as lines:
            return next(int(line.split()[1]) << 10 for line in lines if line.startswith(field))

    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pytest.skip("the peak of resident memory cannot be reset here (/proc/self/clear_refs)")
    before = status("VmRSS:")
    call()
    return status("VmHWM:") - before


def _load_quickly(data: bytes, message=None):
    """Load ``data`` (or expect ModelFileError matching ``message``) within a few seconds and
    100 MB."""
    loaded = []

    def load():
        if message is None:
            loaded.append(_load_bytes(data))
        else:
            _refused(data, message)

    start = time.perf_counter()
    assert _resident_growth(load) < 100 << 20
    assert time.perf_counter() - start < 5
    return loaded[0] if loaded else None


@pytest.mark.parametrize("kind", KINDS)
def test_images_beyond_the_size_limits_are_refused_quickly(saved_files, kind):
    """A classifier's file claiming images of 10,000,000 x 6 ran 1e7 recurrent steps at load
    (still busy after 300 s)."""
    width = 4 if kind == "generator" else 6

    def edit(model):
        fitted = model["fitted"]
        fitted["image_shape_"] = {"$kind": "tuple", "items": [10_000_000, width, 1]}
        fitted["_input_layout"] = {"$kind": "tuple", "items": [10_000_000, width]}
        fitted["n_features_in_"] = 10_000_000 * width

    crafted = _edited(saved_files[kind], edit)
    _load_quickly(crafted, r"image_shape_=\(10000000, .* larger than a model file may describe")


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_a_million_rows_load_quickly_as_the_check_reads_a_crop(kind):
    """The check of the outputs read the whole image: 1e6 recurrent steps took 50 to 110 s
    and 1.4 GB."""
    shape = (1_000_000, 6, 1)
    loaded = _load_quickly(_claiming(_fit(kind), image_shape_=shape))
    assert loaded.image_shape_ == shape


@pytest.mark.parametrize("reader", ["pixels", "rows"])
def test_a_generator_of_large_images_loads_quickly_as_the_check_reads_its_first_rows(reader):
    """The check read whole images (the pixel reader's 360,000 steps, the grid reader's
    convolutions over them) and, for the grid reader, compared every pair of orderings by
    sorting them."""
    generator = RNNImageGenerator(**TINY, embedding_dim=4, reader=reader).fit(LEVELS)
    shape = (600, 600, 1)
    loaded = _load_quickly(_claiming(generator, image_shape_=shape))
    assert loaded.image_shape_ == shape


def test_a_generator_whose_orderings_would_fill_memory_is_refused_quickly():
    """A grid reader's weights do not grow with the image, but its orderings do: 8 orderings
    of a claimed 4096 x 4096 image built 2 x 1 GiB of permutations before any weight was read."""
    generator = RNNImageGenerator(**TINY, embedding_dim=4, reader="rows", orderings=8)
    crafted = _claiming(generator.fit(LEVELS), image_shape_=(520, 520, 1))
    _load_quickly(crafted, "at most 2,097,152 values in all orderings")


def test_a_segmenter_of_many_classes_checks_a_crop_fit_for_them():
    """The check of a 32 x 32 crop held 400 MB of outputs for 50,000 classes; it reads fewer
    pixels of a larger model."""
    classes = np.arange(10, 50_010)  # ignore_label=9 is not a class
    crafted = _claiming(
        _fit("segmenter"),
        image_shape_=(64, 64, 1),  # patch_size="auto": still (2, 2)
        classes_=classes,
        _class_weight=[1.0] * len(classes),
    )
    assert len(_load_quickly(crafted).classes_) == 50_000


def test_lines_too_high_for_a_recogniser_are_refused_at_fit_and_at_load():
    from skrnn import RNNSequenceRecognizer

    with pytest.raises(ValueError, match="lines 4097 pixels high.*at most 4096"):
        RNNSequenceRecognizer(**TINY).fit(np.zeros((2, 4097, 3)), ["1", "2"])
    recognizer = skrnn.load(io.BytesIO(_recognizer_file()))
    crafted = _claiming(recognizer, image_shape_=(100_000, 16, 1))
    _load_quickly(crafted, "lines 100000 pixels high")


def test_the_plugin_package_of_a_missing_cell_is_named_as_the_file_s_claim(saved_files):
    from skrnn.exceptions import MissingCellError

    def edit(model):
        model["cell"] = {"name": "fast_cell", "distribution": "fast-cells", "entry_point": "x:y"}

    with pytest.raises(
        MissingCellError,
        match="file says it comes from the plugin package 'fast-cells'.*read from the file",
    ):
        _load_bytes(_edited(saved_files["classifier"], edit))
