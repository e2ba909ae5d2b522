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

Pickle and joblib keep working as scikit-learn users expect; use them for sklearn workflows
(joblib caching, ``Parallel`` workers) and this format to share models or to open models from
sources you do not trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import warnings
import zipfile
from importlib import metadata
from pathlib import Path

import torch

from ._json import decode, dumps, encode, loads
from ._registry import estimator_class, estimator_name
from ._utils import resolve_device
from ._version import __version__
from .cells import ENTRY_POINT_GROUP, cell_name, get_cell
from .exceptions import MissingCellError, ModelFileError

FORMAT = "skrnn-model"
FORMAT_VERSION = 1
MANIFEST_ENTRY = "manifest.json"
MODEL_ENTRY = "model.json"
WEIGHTS_ENTRY = "weights.safetensors"
_ENTRIES = (MANIFEST_ENTRY, MODEL_ENTRY, WEIGHTS_ENTRY)

# Entries larger than this are refused before they are read (a zip bomb must not fill memory).
_MAX_JSON_BYTES = 256 << 20
_MAX_WEIGHTS_BYTES = 64 << 30


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
    path = Path(os.fspath(path))
    # Write next to the target and rename, so an interrupted save never leaves half a file.
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        # mkstemp makes the file private (0600); the model gets the mode of any new file.
        os.chmod(temporary, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as file:
            file.write(buffer.getvalue())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    """The process's umask (read by setting it, as the os module offers no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _file_error(source: str, problem: str) -> ModelFileError:
    return ModelFileError(f"{source} is not a valid skrnn model file: {problem}")


def _read_json(data: bytes, source: str, entry: str) -> dict:
    try:
        value = loads(data)
    except ValueError as exc:
        raise _file_error(source, f"its {entry} is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise _file_error(source, f"its {entry} is not a JSON object.")
    return value


def _read_entries(path, source: str) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise _file_error(
            source,
            "it is not a zip archive (the file may be truncated, or be another kind of file "
            "such as a pickle). Model files are written by estimator.save(path).",
        ) from None
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        if sorted(infos) != sorted(_ENTRIES):
            raise _file_error(
                source,
                f"it holds the entries {sorted(infos)[:10]}, but a model file holds exactly "
                f"{list(_ENTRIES)}.",
            )
        entries = {}
        for name, info in infos.items():
            limit = _MAX_WEIGHTS_BYTES if name == WEIGHTS_ENTRY else _MAX_JSON_BYTES
            if info.file_size > limit:
                raise _file_error(source, f"its entry {name} is implausibly large.")
            try:
                entries[name] = archive.read(info)
            except Exception as exc:  # CRC errors, truncation, unknown compression, encryption
                raise _file_error(
                    source, f"its entry {name} cannot be read ({type(exc).__name__}: {exc})."
                ) from None
    return entries


def _check_cell(record, source: str) -> None:
    if not isinstance(record, dict) or not isinstance(record.get("name"), str):
        raise _file_error(source, "it does not name its recurrent cell.")
    name = record["name"]
    try:
        get_cell(name)
    except ValueError:
        origin = ""
        if record.get("distribution"):
            origin = (
                f" It was provided by the plugin package {record['distribution']!r} (entry point "
                f"{record.get('entry_point')!r}); install that package."
            )
        elif record.get("module"):
            origin = (
                f" It was registered by the module {record['module']!r}; import that module "
                "(or install the package it belongs to) before loading."
            )
        raise MissingCellError(
            f"{source} uses the recurrent cell {name!r}, which is not registered here.{origin} "
            f"Cell plugins register themselves through the {ENTRY_POINT_GROUP!r} entry-point "
            "group, or with skrnn.cells.register_cell."
        ) from None


def load(path, *, device: str | None = None):
    """Load an estimator saved with ``estimator.save(path)``.

    Loading runs no code from the file: the estimator is rebuilt from its saved parameters
    and its weights are copied into a freshly built torch module.

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
        If the file is not a skrnn model file, is truncated, or was altered after saving
        (a :class:`ValueError`).
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
    import safetensors.torch

    source = "This object" if hasattr(path, "read") else f"The file {os.fspath(path)!r}"
    entries = _read_entries(path, source)
    manifest = _read_json(entries[MANIFEST_ENTRY], source, MANIFEST_ENTRY)
    if manifest.get("format") != FORMAT:
        raise _file_error(source, f"its manifest names the format {manifest.get('format')!r:.40}.")
    version = manifest.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(
            f"{source} has model-file format version {version!r:.20}, but this skrnn reads "
            f"versions up to {FORMAT_VERSION}; it was written by skrnn "
            f"{manifest.get('skrnn_version')!r:.20}. Upgrade skrnn to load it."
        )
    checksums = manifest.get("sha256")
    for name in (MODEL_ENTRY, WEIGHTS_ENTRY):
        expected = checksums.get(name) if isinstance(checksums, dict) else None
        if expected != _sha256(entries[name]):
            raise ModelFileError(
                f"{source} fails its checksum: {name} is not what was saved, so the file was "
                "damaged or altered after saving. Save the model again from its source."
            )
    model = _read_json(entries[MODEL_ENTRY], source, MODEL_ENTRY)
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
            f"it sets parameters {unknown} that {cls.__name__} of this skrnn version does not "
            f"have (the file was written by skrnn {model.get('skrnn_version')!r:.20}).",
        )
    # Files written before a parameter existed describe the model without it: such a
    # parameter takes the value that builds the model they hold, not today's default.
    for name, value in getattr(cls, "_value_before_parameter_existed", {}).items():
        params.setdefault(name, value)
    if device is not None:
        params["device"] = device
    else:
        try:
            resolve_device(params.get("device", "auto"))
        except ValueError:
            warnings.warn(
                f"The model was saved with device={params.get('device')!r}, which this machine "
                "does not have; it is loaded on the CPU (device='cpu').",
                UserWarning,
                stacklevel=2,
            )
            params["device"] = "cpu"
    try:
        estimator.set_params(**params)
        estimator._restore_fitted(fitted)
    except Exception as exc:
        raise _file_error(
            source,
            f"its parameters do not describe a {cls.__name__} that can be built "
            f"({type(exc).__name__}: {exc}).",
        ) from None
    try:
        state = safetensors.torch.load(entries[WEIGHTS_ENTRY])
    except Exception as exc:
        raise _file_error(
            source, f"its weights cannot be read ({type(exc).__name__}: {exc})."
        ) from None
    try:
        estimator.net_.module_.load_state_dict(state, strict=True)
    except Exception as exc:
        raise _file_error(
            source, f"its weights do not fit the model its parameters describe ({exc})."
        ) from None
    return estimator
