"""ONNX export of a whole fitted estimator: input conversion, network, output mapping, classes.

The graph is traced by torch's TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``). The dynamo-based exporter (torch 2.13) exports the classifier but fails to
decompose the segmenter's sweeps once the image size is dynamic, needs ``onnxscript`` and takes
ten times as long; the TorchScript exporter turns the built-in cells into ONNX's own ``RNN`` /
``LSTM`` / ``GRU`` operators, which run over sequences of any length.

torch has no string tensors, so the traced graph ends in the index of the winning class; the
label is then looked up in a constant tensor of ``classes_`` with an ONNX ``Gather``, which
works alike for numeric and string labels.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings

import numpy as np
import torch
from sklearn.base import is_classifier, is_regressor
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._modules import SequenceModel
from ._renet import ReSegModel
from ._version import __version__
from .cells import cell_name, get_cell

__all__ = ["export_onnx"]

# The ONNX operator set the graphs use: opset 17 runs on onnxruntime >= 1.13.
OPSET = 17
# Largest difference between onnxruntime and torch that the export's self-check accepts; the
# built-in cells agree to about 1e-6.
_CHECK_TOLERANCE = 1e-3


def estimator_kind(estimator, what: str) -> str:
    """``"classifier"``, ``"regressor"`` or ``"segmenter"``, from the fitted torch module; a
    TypeError, naming ``what`` could not handle, for any other estimator."""
    module = estimator.net_.module_
    if isinstance(module, ReSegModel):
        return "segmenter"
    if isinstance(module, SequenceModel):
        if is_classifier(estimator):
            return "classifier"
        if is_regressor(estimator):
            return "regressor"
    raise TypeError(
        f"{what} supports RNNImageClassifier, RNNImageRegressor and RNNSegmenter, not "
        f"{type(estimator).__name__}"
        + (" (it samples pixel by pixel in Python)." if hasattr(estimator, "sample") else ".")
    )


def _describe_cell(cell) -> str:
    name = cell_name(cell)
    if name is not None:
        return repr(name)
    factory = get_cell(cell)
    return repr(getattr(factory, "__qualname__", type(factory).__name__))


class _EstimatorGraph(nn.Module):
    """What ``predict`` / ``predict_proba`` compute after validating ``X``, as one module.

    Input: a batch in the layout of the training samples (``(n, H, W)``, ``(n, H, W, C)``,
    flat rows ``(n, H * W * C)`` or sequences ``(n, T, F)``), of any numeric dtype. It is cast
    to the module's input dtype (float32, or int64 ids for embeddings) as ``_forward`` casts each
    batch, reshaped to images ``(n, H, W, C)`` as ``_check_X`` does, and run through the
    estimator's module. Outputs: the winning class index and the probabilities (classifier,
    segmenter), or the values on the targets' scale (regressor).
    """

    def __init__(self, estimator, kind: str):
        super().__init__()
        self.kind = kind
        self.module = copy.deepcopy(estimator.net_.module_).cpu().eval()
        self.module_dtype = estimator._input_dtype()
        self.image_shape = tuple(int(s) for s in estimator.image_shape_)
        self.layout = tuple(int(s) for s in estimator._input_layout)
        if kind == "regressor":
            self.register_buffer(
                "y_scale", torch.as_tensor(estimator._y_scale, dtype=torch.float64)
            )
            self.register_buffer("y_mean", torch.as_tensor(estimator._y_mean, dtype=torch.float64))
            self.y_1d = bool(estimator._y_1d)
        self.eval()  # the exporter restores this mode afterwards, recursively

    def forward(self, samples):
        x = samples.to(self.module_dtype)
        if self.kind == "segmenter":
            images = x if len(self.layout) == 3 else x.unsqueeze(-1)
        else:
            images = x.reshape((x.shape[0],) + self.image_shape)
        outputs = self.module(images).float()
        if self.kind == "regressor":
            values = outputs.double() * self.y_scale + self.y_mean
            return values[:, 0] if self.y_1d else values
        if outputs.shape[1] == 1:  # one sigmoid unit z: the logits of the two classes are [0, z]
            outputs = torch.cat([torch.zeros_like(outputs), outputs], dim=1)
        index = outputs.argmax(dim=1)
        proba = torch.softmax(outputs, dim=1)
        if self.kind == "segmenter":
            proba = proba.permute(0, 2, 3, 1)
        return index, proba


def _input_dtype(estimator, input_dtype) -> np.dtype:
    if input_dtype is None:
        return np.dtype(np.int64 if estimator._input_dtype() == torch.long else np.float32)
    try:
        dtype = np.dtype(input_dtype)
    except TypeError as exc:
        raise ValueError(f"input_dtype must be a numpy dtype, got {input_dtype!r}.") from exc
    if dtype.kind not in "uif":
        raise ValueError(
            f"input_dtype must be an integer or floating dtype (e.g. 'float32', 'uint8'), got "
            f"{dtype}."
        )
    if estimator._input_dtype() == torch.long and dtype.kind not in "ui":
        raise ValueError(
            f"This estimator embeds integer token ids (embedding_dim is set), so input_dtype "
            f"must be an integer dtype, got {dtype}."
        )
    return dtype


def _example(estimator, kind: str, dtype: np.dtype, n: int, grow: int = 0) -> np.ndarray:
    """A batch of ``n`` inputs in the training layout, of plausible values.

    For the segmenter, the image sides are ``grow`` pixels longer, and never a multiple of
    the patch size (when it is larger than 1), so that the traced graph keeps the padding that
    makes patches tile an image: a size the patches tile exactly would trace without it.
    """
    rng = np.random.default_rng(0)
    layout = tuple(estimator._input_layout)
    if kind == "segmenter":
        sides = list(layout[:2])
        for axis, patch in enumerate(estimator._patch_size):
            sides[axis] += grow
            if patch > 1 and sides[axis] % patch == 0:
                sides[axis] += 1
        layout = tuple(sides) + layout[2:]
    shape = (n,) + layout
    if estimator._input_dtype() == torch.long:
        return rng.integers(0, estimator.n_tokens_, shape).astype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, 0), min(info.max, 255) + 1, shape).astype(dtype)
    mean = np.mean(estimator._input_mean)
    std = np.mean(estimator._input_std)
    return (mean + std * rng.standard_normal(shape)).astype(dtype)


def _classes_tensor(classes: np.ndarray):
    """``classes_`` as an ONNX constant: numeric labels keep their dtype, others are strings."""
    from onnx import TensorProto, helper, numpy_helper

    classes = np.asarray(classes)
    if classes.dtype.kind == "O":
        if all(isinstance(c, str) for c in classes):
            classes = classes.astype(str)
        else:
            try:
                classes = np.asarray(classes.tolist())
            except (TypeError, ValueError):
                classes = classes.astype(str)
            if classes.dtype.kind not in "iufbU":
                raise ValueError(
                    f"classes_ must hold numbers or strings to be exported, got "
                    f"{classes.dtype} labels such as {classes[0]!r:.40}."
                )
    if classes.dtype.kind in "US":
        values = [str(c).encode("utf-8") for c in classes]
        return helper.make_tensor("classes", TensorProto.STRING, [len(values)], values)
    return numpy_helper.from_array(np.ascontiguousarray(classes), name="classes")


def _trace(graph: _EstimatorGraph, example: np.ndarray, kind: str, cell_description: str):
    """Export ``graph`` with torch; return the ONNX model (the label is still an index)."""
    import onnx

    batch = {0: "batch"}
    pixels = {0: "batch", 1: "height", 2: "width"}
    if kind == "regressor":
        outputs, axes = ["predictions"], {"predictions": batch}
    else:
        outputs = ["label_index", "probabilities"]
        axes = {name: pixels if kind == "segmenter" else batch for name in outputs}
    axes["images"] = pixels if kind == "segmenter" else batch
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # Tracer warnings flag Python values of the example input; the self-check below
            # verifies the graph on other batch (and image) sizes instead.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                (torch.as_tensor(example),),
                buffer,
                input_names=["images"],
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RuntimeError(
            f"torch could not export the cell {cell_description} to ONNX: {reason} The built-in "
            "cells (rnn, lstm, gru) export; a plugin cell exports when torch.onnx.export can "
            "trace its forward pass into ONNX operators."
        ) from exc
    return onnx.load_from_string(buffer.getvalue())


def _add_label_lookup(model, classes: np.ndarray) -> None:
    """Replace the ``label_index`` output by ``label``: ``classes_[label_index]``."""
    from onnx import helper

    graph = model.graph
    index_output = next(o for o in graph.output if o.name == "label_index")
    shape = [d.dim_param or d.dim_value for d in index_output.type.tensor_type.shape.dim]
    constant = _classes_tensor(classes)
    graph.initializer.append(constant)
    graph.node.append(helper.make_node("Gather", ["classes", "label_index"], ["label"], axis=0))
    graph.output.remove(index_output)
    graph.output.insert(0, helper.make_tensor_value_info("label", constant.data_type, shape))


def _check_graph(model, graph: _EstimatorGraph, examples, cell_description: str) -> None:
    """Run the ONNX graph with onnxruntime on ``examples`` and compare with torch."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for example in examples:
        with torch.inference_mode():
            theirs = graph(torch.as_tensor(example))
        theirs = theirs if isinstance(theirs, tuple) else (theirs,)
        expected = theirs[-1].numpy()  # probabilities, or the regressor's values
        try:
            got = session.run(None, {"images": example})[-1]
        except Exception as exc:  # onnxruntime's own error types
            found = "onnxruntime failed: " + (str(exc).strip().splitlines() or [""])[0]
        else:
            if got.shape != expected.shape:
                found = f"outputs of shape {got.shape} instead of {expected.shape}"
            elif not np.allclose(got, expected, rtol=_CHECK_TOLERANCE, atol=_CHECK_TOLERANCE):
                found = f"a largest difference of {float(np.abs(got - expected).max()):.3g}"
            else:
                continue
        raise RuntimeError(
            f"The ONNX graph of the cell {cell_description} disagrees with the estimator on "
            f"inputs of shape {example.shape} ({found}). The trace recorded something "
            "specific to the example input, such as a Python loop over the time steps or "
            "a branch on a tensor value; write the cell's forward pass with tensor "
            "operations only (as torch's nn.RNN / nn.LSTM / nn.GRU do) to export it."
        )


def _contract(estimator, kind: str, dtype: np.dtype) -> str:
    layout = ", ".join(str(s) for s in estimator._input_layout)
    if kind == "segmenter":
        sides = "height, width" + (", C" if len(estimator._input_layout) == 3 else "")
        images = f"images ({'batch'}, {sides}) of dtype {dtype} (any height and width)"
    else:
        images = f"images (batch, {layout}) of dtype {dtype}"
    outputs = {
        "classifier": "label (batch,), probabilities (batch, n_classes) float32",
        "regressor": "predictions (batch,) or (batch, n_outputs) float64",
        "segmenter": "label (batch, H, W), probabilities (batch, H, W, n_classes) float32",
    }[kind]
    return f"{images} -> {outputs}"


def export_onnx(estimator, path=None, *, input_dtype=None, check: bool = True):
    """Export a fitted estimator to ONNX, as one graph from raw images to its predictions.

    The graph does what :meth:`predict` and :meth:`predict_proba` do after validating ``X``:
    it casts the input to float32 (as each inference batch is cast), reshapes it to images,
    standardises it with the training statistics, reads it as the estimator does (rows,
    columns, pixels or patches; the segmenter's padded patch sweeps) and maps the network's
    outputs back: class labels from ``classes_`` (strings included) and probabilities for a
    classifier, values on the scale of the training targets for a regressor, per-pixel labels
    and probabilities for a segmenter. The batch dimension is dynamic, and so are the height
    and width of a segmenter's images.

    Parameters
    ----------
    estimator : fitted RNNImageClassifier, RNNImageRegressor or RNNSegmenter
        The estimator to export. :class:`skrnn.RNNImageGenerator` cannot be exported.
    path : str, os.PathLike, binary file object or None, default=None
        Where to write the ``.onnx`` file; None only returns the model.
    input_dtype : numpy dtype or str, default=None
        The dtype of the graph's input ``"images"``: float32 by default (int64 for models
        with ``embedding_dim``). Use ``"uint8"`` to feed 8-bit images as they are; the graph
        casts them as :meth:`predict` does.
    check : bool, default=True
        Run the exported graph with onnxruntime on two batches (for the segmenter, of two
        image sizes) and raise if it disagrees with the estimator, as a plugin cell with
        Python control flow would.

    Returns
    -------
    model : onnx.ModelProto
        The exported model. Its input is ``"images"``, in the layout of the training samples
        (``(batch, H, W)``, ``(batch, H, W, C)`` or flat ``(batch, H * W * C)``); its outputs
        are ``"label"`` and ``"probabilities"`` (classifier, segmenter) or ``"predictions"``
        (regressor). The metadata entry ``"skrnn_contract"`` spells this out.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    TypeError
        If the estimator is not one that can be exported.
    RuntimeError
        If torch cannot trace the estimator's cell, or (with ``check``) the trace does not
        reproduce it; the message names the cell.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> import skrnn
    >>> from skrnn.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = skrnn.RNNImageClassifier(hidden_size=8, max_epochs=1, random_state=0)
    >>> clf = clf.fit(X[:100], y[:100])
    >>> model = skrnn.export_onnx(clf)
    >>> session = onnxruntime.InferenceSession(model.SerializeToString())
    >>> labels, proba = session.run(None, {"images": X[:5].astype(np.float32)})
    >>> bool((labels == clf.predict(X[:5])).all())
    True
    """
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "export_onnx needs the onnx package: pip install 'skrnn[export]'."
        ) from exc
    check_is_fitted(estimator, "net_")
    kind = estimator_kind(estimator, "export_onnx")
    dtype = _input_dtype(estimator, input_dtype)
    cell_description = _describe_cell(estimator.cell)
    graph = _EstimatorGraph(estimator, kind)
    model = _trace(graph, _example(estimator, kind, dtype, n=3), kind, cell_description)
    if kind != "regressor":
        _add_label_lookup(model, estimator.classes_)
    model.producer_name = "skrnn"
    model.producer_version = __version__
    model.doc_string = f"{type(estimator).__name__} exported by skrnn {__version__}"
    metadata = {
        "skrnn_estimator": type(estimator).__name__,
        "skrnn_contract": _contract(estimator, kind, dtype),
        "skrnn_cell": cell_description.strip("'"),
    }
    if kind != "regressor":
        metadata["skrnn_classes"] = json.dumps(np.asarray(estimator.classes_).tolist())
    onnx.helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    if check:
        examples = [
            _example(estimator, kind, dtype, n=2, grow=3),
            _example(estimator, kind, dtype, n=5),
        ]
        _check_graph(model, graph, examples, cell_description)
    if path is not None:
        data = model.SerializeToString()
        if hasattr(path, "write"):
            path.write(data)
        else:
            with open(os.fspath(path), "wb") as file:
                file.write(data)
    return model
