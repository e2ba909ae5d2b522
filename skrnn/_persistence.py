"""Saving fitted estimators to one safe file, and loading them back: ``est.save`` / ``load``.

A model file is a zip archive of three entries:

``manifest.json``
    The format name and version, the skrnn version that wrote the file and the SHA-256 of the
    two other entries.
``model.json``
    The estimator's class, its parameters and its fitted attributes (``classes_``,
    ``image_shape_``, the input statistics, the target scaling, ...), as plain JSON in which
    tuples, arrays (with their dtype) and numpy scalars are tagged so that they come back as
    they were.
``weights.safetensors``
    The torch module's state dict in the `safetensors <https://huggingface.co/docs/safetensors>`_
    format: raw tensors and a JSON header.

Nothing in the file is pickled, so loading a model file runs no code from it: the estimator is
rebuilt from its parameters by skrnn's own code, its torch module is re-created by the same
method that builds it in ``fit``, and the weights are copied in. The estimator class is found
by name in the registry its classes fill (``skrnn._registry``); this module imports no
estimator. The JSON codec is ``skrnn._json``. A cell is stored by
its registered name. The checksums catch files that were damaged or altered after saving; they
are not a signature (whoever can alter the file can recompute them), which is why safety rests
on the absence of pickle, not on the checksums.

A file from elsewhere cannot make loading allocate much more than its own size, nor take
much longer than reading it. Before anything is read, the zip directory's entries and the
sizes they declare are checked (exactly the three entries; a few hundred KB of manifest and at
most a few MB of model.json; no entry that inflates a hundredfold; no entry beyond the end of
the file), and every entry is read in bounded chunks, whatever it declares (``skrnn._archive``,
shared with checkpoints). The parameters and fitted attributes are checked as ``fit`` would
have made them (``_check_params`` and ``_check_fitted``), and the sizes they carry against the
limits of ``skrnn._limits`` (an image shape of at most 2**20 values along an axis and 2**28
in all, ...); the torch module they describe is then built on the ``meta`` device, which has
shapes but no memory, and the safetensors header of the weights must name exactly its
tensors, dtypes and shapes, and account for every byte of the entry, before the module is
built for real and the weights are read. Weights holding NaN or infinite values are refused,
and so is a model whose finite weights overflow together: the loaded model reads a blank
image and one of noise, cropped to at most 32 x 32 pixels (fewer for a large model), and NaN
or infinity in its outputs refuses the file. Weights larger than 1e6, which training never
leaves but which may still give finite outputs on those two images, load with a warning.

Pickle and joblib keep working as scikit-learn users expect; use them for sklearn workflows
(joblib caching, ``Parallel`` workers) and this format to share models or to open models from
sources you do not trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import warnings
import zipfile
from importlib import metadata

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from ._archive import (
    check_entries,
    json_object,
    load_tensors,
    open_archive,
    read_entry,
    read_whole_entry,
    safetensors_layout,
    tensor_layout,
)
from ._json import decode, dumps, encode
from ._limits import MAX_JSON_BYTES, MAX_MANIFEST_BYTES, MAX_TENSOR_BYTES, probe_pixels
from ._registry import estimator_class, estimator_name
from ._utils import allowed_cpu_count, resolve_device, write_atomically
from ._validation import booleans_for_numbers
from ._version import __version__
from .cells import ENTRY_POINT_GROUP, cell_name, get_cell
from .exceptions import MissingCellError, ModelFileError

FORMAT = "skrnn-model"
FORMAT_VERSION = 1
MANIFEST_ENTRY = "manifest.json"
MODEL_ENTRY = "model.json"
WEIGHTS_ENTRY = "weights.safetensors"

_ENTRY_LIMITS = {
    MANIFEST_ENTRY: MAX_MANIFEST_BYTES,
    MODEL_ENTRY: MAX_JSON_BYTES,
    WEIGHTS_ENTRY: MAX_TENSOR_BYTES,
}
# Building a model on the meta device takes a few dozen torch calls for each of its tensors;
# parameters that need far more (a billion layers) are refused before the build ends.
_META_CALLS_PER_TENSOR = 64
_META_CALLS_FLOOR = 1024


def _cell_record(cell) -> dict:
    """The registered name of the estimator's cell and where it comes from."""
    name = cell if isinstance(cell, str) else cell_name(cell)
    if name is None:
        raise ValueError(
            f"cell={cell!r} is a cell factory that is not registered, so a model file could not "
            "name it. Register it with skrnn.cells.register_cell('my_cell', factory) and fit "
            "with cell='my_cell' (or publish it in the 'skrnn.cells' entry-point group), then "
            "save again; or use pickle for this model."
        )
    factory = get_cell(name)
    record = {"name": name, "module": getattr(factory, "__module__", None)}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == name:
            record["entry_point"] = entry_point.value
            dist = getattr(entry_point, "dist", None)
            record["distribution"] = getattr(dist, "name", None)
    return record


def _estimator_parameters(estimator) -> dict:
    params = estimator.get_params(deep=False)
    if params.get("callbacks"):
        warnings.warn(
            "callbacks are not saved in a model file (they only act during training); the "
            "loaded estimator has callbacks=None.",
            UserWarning,
            stacklevel=4,
        )
        params["callbacks"] = None
    # A path on this machine, only meaningful to the fit that wrote it: a model file from
    # elsewhere must not choose where a later fit writes.
    params.pop("checkpoint", None)
    encoded = {}
    for name, value in params.items():
        if name == "cell" and callable(value):
            encoded[name] = {"$kind": "cell", "name": _cell_record(value)["name"]}
        else:
            encoded[name] = encode(value, f"the parameter {name}")
    return encoded


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(estimator, path) -> None:
    """Write a fitted skrnn estimator to one model file at ``path`` (see the module docstring).

    Prefer the method :meth:`BaseRNNEstimator.save <skrnn._base.BaseRNNEstimator.save>`.

    Parameters
    ----------
    estimator : BaseRNNEstimator
        A fitted skrnn estimator.
    path : str, os.PathLike or binary file object
        Where to write. An existing file is replaced only once the new one is complete.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator has not been fitted.
    ValueError
        If its cell is a factory that is not registered under a name.
    TypeError
        If a parameter or fitted attribute is of a type a model file cannot hold.
    """
    import safetensors.torch

    cell = _cell_record(estimator.cell)
    model = {
        "estimator": estimator_name(type(estimator)),
        "skrnn_version": __version__,
        "torch_version": torch.__version__,
        "cell": cell,
        "params": _estimator_parameters(estimator),
        "fitted": {
            name: encode(value, f"the fitted attribute {name}")
            for name, value in estimator._fitted_attributes().items()
        },
    }
    state = estimator.net_.module_.state_dict()
    # Clones on the CPU: safetensors wants contiguous tensors that share no memory.
    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in state.items()}
    weights = safetensors.torch.save(tensors)
    model_bytes = dumps(model)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skrnn_version": __version__,
        "sha256": {MODEL_ENTRY: _sha256(model_bytes), WEIGHTS_ENTRY: _sha256(weights)},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(MANIFEST_ENTRY, dumps(manifest), zipfile.ZIP_DEFLATED)
        archive.writestr(MODEL_ENTRY, model_bytes, zipfile.ZIP_DEFLATED)
        archive.writestr(WEIGHTS_ENTRY, weights, zipfile.ZIP_STORED)
    if hasattr(path, "write"):
        path.write(buffer.getvalue())
        return
    # Written next to the target and renamed, so an interrupted save never leaves half a file.
    write_atomically(path, buffer.getvalue())


_WRITTEN_BY = "Model files are written by estimator.save(path)."


def _file_error(source: str, problem: str) -> ModelFileError:
    return ModelFileError(f"{source} is not a valid skrnn model file: {problem}")


class _TooManyTensorCalls(Exception):
    pass


class _CountedMetaBuild(TorchFunctionMode):
    """Counts the torch calls of a build (under ``torch.device("meta")``) and stops it after
    ``most`` of them, so that parameters describing a model of absurd depth are refused in
    milliseconds instead of being built."""

    def __init__(self, most: int):
        super().__init__()
        self.most, self.calls = most, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        if self.calls > self.most:
            raise _TooManyTensorCalls
        return func(*args, **(kwargs or {}))


def _weights_checker(layout: dict, source: str):
    """The check that ``_restore_fitted`` runs before it builds the net: the module that the
    parameters and fitted attributes describe, built on the meta device (shapes, no memory),
    has exactly the tensors of the file's weights."""

    def check(estimator) -> None:
        budget = _META_CALLS_FLOOR + _META_CALLS_PER_TENSOR * len(layout)
        try:
            with torch.device("meta"), _CountedMetaBuild(budget):
                module = estimator._module_class(**estimator._module_params())
        except _TooManyTensorCalls:
            raise _file_error(
                source,
                f"its parameters describe a model of far more tensors than the {len(layout)} "
                "its weights hold.",
            ) from None
        except Exception:  # a plugin cell that cannot be built on the meta device: the
            return  # weights are checked against the real module instead, after the build
        _compare_layouts(layout, tensor_layout(module.state_dict()), source)

    return check


def _compare_layouts(found: dict, expected: dict, source: str) -> None:
    def refuse(problem):
        return _file_error(
            source, f"its weights do not fit the model its parameters describe: {problem}."
        )

    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise refuse(
            f"they lack the tensors {missing[:5]!r:.300} and hold the unexpected tensors "
            f"{unexpected[:5]!r:.300}"
        )
    for name, (dtype, shape) in expected.items():
        if found[name] != (dtype, shape):
            raise refuse(
                f"the tensor {name!r} is {found[name][0]} of shape {found[name][1]!r:.100} in "
                f"the file, but {dtype} of shape {shape} in the model"
            )


def _check_cell(record, source: str) -> None:
    if not isinstance(record, dict) or not isinstance(record.get("name"), str):
        raise _file_error(source, "it does not name its recurrent cell.")
    name = record["name"]
    try:
        get_cell(name)
    except ValueError:
        # Whoever edits a file can name any package here: the message says so, so that
        # nobody installs a package because a file from elsewhere asked for it.
        trust = (
            "; that name is read from the file, which anyone can edit, so install or import "
            "it only if you know and trust it."
        )
        origin = ""
        if record.get("distribution"):
            origin = (
                f" The file says it comes from the plugin package "
                f"{str(record['distribution'])!r:.100} (entry point "
                f"{str(record.get('entry_point'))!r:.100}){trust}"
            )
        elif record.get("module"):
            origin = (
                f" The file says it was registered by the module {str(record['module'])!r:.100} "
                f"(of an installed package, or of your own code){trust}"
            )
        raise MissingCellError(
            f"{source} uses the recurrent cell {name!r:.100}, which is not registered here."
            f"{origin} "
            f"Cell plugins register themselves through the {ENTRY_POINT_GROUP!r} entry-point "
            "group, or with skrnn.cells.register_cell."
        ) from None


def load(path, *, device: str | None = None):
    """Load an estimator saved with ``estimator.save(path)``.

    Loading runs no code from the file: the estimator is rebuilt from its saved parameters
    and its weights are copied into a freshly built torch module. Every parameter and fitted
    attribute is checked as ``fit`` would have made it, and every size the file declares is
    checked against the model its parameters describe before anything of that size is
    allocated, so a damaged or crafted file is refused without using much memory.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        A model file.
    device : str, default=None
        Where the loaded model runs; it replaces the saved ``device`` parameter. None keeps the
        saved parameter when this machine has that device, and otherwise uses the CPU (with a
        warning), so a model trained on a GPU loads anywhere.

    Returns
    -------
    estimator : BaseRNNEstimator
        The fitted estimator, predicting as the saved one did.

    Raises
    ------
    skrnn.exceptions.ModelFileError
        If the file is not a skrnn model file, is truncated, was altered after saving, or
        describes a model that ``fit`` could not have made (a :class:`ValueError`).
    skrnn.exceptions.MissingCellError
        If the model's recurrent cell is not registered here, for example because its plugin
        package is not installed; the message names the plugin.

    Examples
    --------
    >>> import os, tempfile
    >>> import skrnn
    >>> from skrnn.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = skrnn.RNNImageClassifier(hidden_size=8, max_epochs=1, random_state=0)
    >>> clf = clf.fit(X[:100], y[:100])
    >>> path = os.path.join(tempfile.mkdtemp(), "digits.skrnn")
    >>> clf.save(path)
    >>> loaded = skrnn.load(path)
    >>> bool((loaded.predict(X[:20]) == clf.predict(X[:20])).all())
    True
    """
    source = "This object" if hasattr(path, "read") else f"The file {os.fspath(path)!r}"

    def refuse(problem):
        return _file_error(source, problem)

    with contextlib.ExitStack() as stack:
        file = path if hasattr(path, "read") else stack.enter_context(open(path, "rb"))
        archive = stack.enter_context(open_archive(file, refuse, _WRITTEN_BY))
        # The manifest first: it says whether a newer skrnn wrote the file, which may hold
        # other entries.
        info = check_entries(archive, _ENTRY_LIMITS, refuse, only=MANIFEST_ENTRY)
        info = info[MANIFEST_ENTRY]
        manifest = json_object(
            read_entry(archive, info, refuse, limit=MAX_MANIFEST_BYTES), refuse, MANIFEST_ENTRY
        )
        checksums = _check_manifest(manifest, source)
        infos = check_entries(archive, _ENTRY_LIMITS, refuse)
        model_bytes = read_entry(archive, infos[MODEL_ENTRY], refuse, limit=MAX_JSON_BYTES)
        _check_checksum(model_bytes, checksums, MODEL_ENTRY, source)
        model = json_object(model_bytes, refuse, MODEL_ENTRY)
        # The weights' header is checked against the entry's size and then against the model
        # the parameters describe; only then are the weights read, so no declared size is
        # allocated before it is known to be the model's own.
        layout = safetensors_layout(archive, infos[WEIGHTS_ENTRY], refuse, "its weights")
        estimator = _build_estimator(model, layout, source, device)
        weights = read_whole_entry(archive, infos[WEIGHTS_ENTRY], refuse)
    _check_checksum(weights, checksums, WEIGHTS_ENTRY, source)
    state = load_tensors(weights, refuse, "its weights")
    del weights
    module = estimator.net_.module_
    _compare_layouts(tensor_layout(state), tensor_layout(module.state_dict()), source)
    for name, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise _file_error(
                source,
                f"its weights hold NaN or infinite values (in {name!r}), which training never "
                "leaves behind.",
            )
    try:
        module.load_state_dict(state, strict=True)
    except Exception as exc:
        raise _file_error(
            source, f"its weights do not fit the model its parameters describe ({exc})."
        ) from None
    n_weight_values = sum(math.prod(shape) for _, shape in layout.values())
    _check_outputs(estimator, source, probe_pixels(n_weight_values))
    _check_weight_sizes(state, source)
    return estimator


# Trained weights stay far below this; products of two such values already overflow float32.
_LARGEST_PLAUSIBLE_WEIGHT = 1e6


def _check_weight_sizes(state: dict, source: str) -> None:
    """Warn of weights so large that predictions may overflow on inputs unlike the blank
    image that :func:`_check_outputs` reads."""
    largest, where = 0.0, None
    for name, tensor in state.items():
        if tensor.is_floating_point() and tensor.numel():
            size = float(tensor.abs().max())
            if size > largest:
                largest, where = size, name
    if largest > _LARGEST_PLAUSIBLE_WEIGHT:
        warnings.warn(
            f"{source} holds weights as large as {largest:.3g} (in {where!r}); training leaves "
            f"them far below {_LARGEST_PLAUSIBLE_WEIGHT:.0e}, and predictions may overflow to "
            "NaN or infinity. Check where the file comes from.",
            UserWarning,
            stacklevel=3,
        )


def _check_outputs(estimator, source: str, pixels: int) -> None:
    """Refuse a model whose outputs on a blank image (and one of noise) of at most ``pixels``
    pixels are not finite: its weights, finite one by one, overflow together, and every
    prediction would be garbage. The images are a crop of the training images' shape, so the
    check's work is bounded whatever shape the file declares (see skrnn._limits)."""
    try:
        outputs = np.asarray(estimator._probe_outputs(pixels))
    except Exception as exc:  # a prediction that fails at once is a file that cannot serve
        raise _file_error(
            source,
            f"its model fails on a blank image ({type(exc).__name__}: {str(exc)[:200]}).",
        ) from None
    if not np.isfinite(outputs).all():
        raise _file_error(
            source,
            "its weights give NaN or infinite outputs on a blank image: they overflow, which "
            "training never leaves behind.",
        )


def _check_manifest(manifest: dict, source: str) -> dict:
    """The manifest's checksums, once it names this format in a version this skrnn reads."""
    if manifest.get("format") != FORMAT:
        raise _file_error(source, f"its manifest names the format {manifest.get('format')!r:.40}.")
    version = manifest.get("format_version")
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(
            f"{source} has model-file format version {version!r:.20}, but this skrnn reads "
            f"versions up to {FORMAT_VERSION}; it was written by skrnn "
            f"{manifest.get('skrnn_version')!r:.20}. Upgrade skrnn to load it."
        )
    checksums = manifest.get("sha256")
    return checksums if isinstance(checksums, dict) else {}


def _check_checksum(data: bytes, checksums: dict, name: str, source: str) -> None:
    if checksums.get(name) != _sha256(data):
        raise ModelFileError(
            f"{source} fails its checksum: {name} is not what was saved, so the file was "
            "damaged or altered after saving. Save the model again from its source."
        )


def _build_estimator(model: dict, layout: dict, source: str, device):
    """The estimator that ``model.json`` describes, its parameters and fitted attributes
    checked as ``fit`` checks them and its net built, untrained, once the weights' ``layout``
    is known to be that of its module."""
    cls = estimator_class(model.get("estimator"))
    if cls is None:
        raise _file_error(
            source,
            f"it holds a {model.get('estimator')!r:.80}, which is not an estimator class "
            "defined here. Import the module that defines it before loading.",
        )
    _check_cell(model.get("cell"), source)
    try:
        params, fitted = ({}, {})
        for section, decoded in (("params", params), ("fitted", fitted)):
            stored = model.get(section)
            if not isinstance(stored, dict):
                raise ValueError(f"{section} must be a mapping")
            for name, value in stored.items():
                decoded[name] = decode(value, f"{section}[{name!r}]")
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _file_error(source, f"its {MODEL_ENTRY} cannot be decoded ({exc}).") from None
    estimator = cls()
    unknown = sorted(set(params) - set(estimator.get_params(deep=False)))
    if unknown:
        raise _file_error(
            source,
            f"it sets parameters {unknown!r:.300} that {cls.__name__} of this skrnn version "
            f"does not have (the file was written by skrnn {model.get('skrnn_version')!r:.20}).",
        )
    if params.get("checkpoint") is not None:  # never saved: see _estimator_parameters
        raise _file_error(
            source,
            "it sets checkpoint, a path where a later fit would write, which model files "
            "never hold.",
        )
    _refuse_booleans_for_numbers(cls, params, source)
    # Files written before a parameter existed describe the model without it: such a
    # parameter takes the value that builds the model they hold, not today's default.
    for name, value in getattr(cls, "_value_before_parameter_existed", {}).items():
        params.setdefault(name, value)
    _adapt_to_this_machine(params, device)
    try:
        estimator.set_params(**params)
        estimator._restore_fitted(fitted, check=_weights_checker(layout, source))
    except ModelFileError:
        raise
    except Exception as exc:
        raise _file_error(
            source,
            f"its parameters and fitted attributes do not describe a {cls.__name__} that can "
            f"be built ({type(exc).__name__}: {str(exc):.500}).",
        ) from None
    return estimator


def _refuse_booleans_for_numbers(cls, params: dict, source: str) -> None:
    """Refuse True or False for a parameter that takes numbers (see booleans_for_numbers)."""
    booleans = booleans_for_numbers(cls, params)
    if booleans:
        name = booleans[0]
        raise _file_error(
            source, f"it sets {name}={params[name]}, but {name} takes numbers, not booleans."
        )


def _adapt_to_this_machine(params: dict, device) -> None:
    """Replace the parameters that name resources of the machine the model was trained on
    (its device, its thread count) where this machine lacks them, with a warning."""
    if device is not None:
        params["device"] = device
    else:
        try:
            resolve_device(params.get("device", "auto"))
        except ValueError:
            warnings.warn(
                f"The model was saved with device={params.get('device')!r:.40}, which this "
                "machine does not have; it is loaded on the CPU (device='cpu').",
                UserWarning,
                stacklevel=4,
            )
            params["device"] = "cpu"
    n_threads = params.get("n_threads")
    if type(n_threads) is int and n_threads > allowed_cpu_count():
        warnings.warn(
            f"The model was saved with n_threads={n_threads}, more than the "
            f"{allowed_cpu_count()} cores this process may use; it is loaded with "
            "n_threads=None (torch's own setting).",
            UserWarning,
            stacklevel=4,
        )
        params["n_threads"] = None
