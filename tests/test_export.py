"""ONNX export: onnxruntime reproduces predict and predict_proba for every kind of estimator."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

import skrnn
from skrnn import cells
from skrnn.datasets import load_digits_images, make_shapes

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images(return_X_y=True)
    return X[:60], y[:60], X[100:140]


def session_of(model):
    return onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )


def run(model, images):
    return session_of(model).run(None, {"images": images})


def report(name, difference, gpu_tolerance=TOLERANCE):
    """Assert ``difference`` is within TOLERANCE, or ``gpu_tolerance`` where the estimator
    predicted on a GPU (the ONNX model runs on the CPU)."""
    print(f"PARITY {name}: {difference:.2e}")
    assert difference <= (gpu_tolerance if torch.cuda.is_available() else TOLERANCE), name


CLASSIFIERS = {
    "rnn-bidirectional": dict(cell="rnn"),
    "rnn-one-direction": dict(cell="rnn", bidirectional=False),
    "lstm-bidirectional": dict(cell="lstm"),
    "lstm-one-direction": dict(cell="lstm", bidirectional=False),
    "gru-bidirectional": dict(cell="gru"),
    "gru-one-direction": dict(cell="gru", bidirectional=False),
    "lstm-two-layers": dict(cell="lstm", num_layers=2),
    "gru-stacked-sizes-4-6": dict(cell="gru", hidden_size=(4, 6)),
    "rnn-stacked-sizes-one-direction": dict(cell="rnn", hidden_size=(6, 4), bidirectional=False),
    "order-columns": dict(order="columns"),
    "order-pixels": dict(order="pixels", cell="lstm"),
    "order-patches": dict(order="patches", patch_size=(2, 4)),
    "readout-mean-head": dict(readout="mean", head=(5,)),
    "readout-max": dict(readout="max", cell="lstm"),
}


@pytest.mark.parametrize("params", CLASSIFIERS.values(), ids=list(CLASSIFIERS))
def test_onnx_classifier_equals_predict_and_predict_proba(digits, params):
    X, y, X_test = digits
    clf = skrnn.RNNImageClassifier(
        **{"hidden_size": 4, "max_epochs": 1, "random_state": 0, **params}
    ).fit(X, y)
    labels, proba = run(skrnn.export_onnx(clf), X_test.astype(np.float32))
    assert (labels == clf.predict(X_test)).all()
    assert labels.dtype == clf.classes_.dtype
    report(f"classifier {params}", np.abs(proba - clf.predict_proba(X_test)).max())


def test_string_classes_come_out_as_the_original_strings(digits, tmp_path):
    X, y, X_test = digits
    clf = skrnn.RNNImageClassifier(hidden_size=4, max_epochs=1, random_state=0).fit(X, NAMES[y])
    path = tmp_path / "names.onnx"
    skrnn.export_onnx(clf, path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {"images": X_test.astype(np.float32)})
    assert labels.tolist() == clf.predict(X_test).tolist()
    assert set(labels) <= set(NAMES)
    report("classifier string classes", np.abs(proba - clf.predict_proba(X_test)).max())


def test_binary_sigmoid_classifier_with_string_classes(digits):
    X, y, X_test = digits
    y2 = np.where(y < 5, "small", "large")
    clf = skrnn.RNNImageClassifier(
        hidden_size=4, max_epochs=1, loss="binary_cross_entropy", random_state=0
    ).fit(X, y2)
    labels, proba = run(skrnn.export_onnx(clf), X_test.astype(np.float32))
    assert labels.tolist() == clf.predict(X_test).tolist()
    assert proba.shape == (len(X_test), 2)
    report(
        "classifier binary sigmoid, string classes", np.abs(proba - clf.predict_proba(X_test)).max()
    )


def test_uint8_rgb_images_are_cast_inside_the_graph():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (40, 6, 5, 3), dtype=np.uint8)
    y = (X[:, :3].mean(axis=(1, 2, 3)) > X[:, 3:].mean(axis=(1, 2, 3))).astype(int) + 3
    clf = skrnn.RNNImageClassifier(hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    model = skrnn.export_onnx(clf, input_dtype="uint8")
    labels, proba = run(model, X)
    assert labels.dtype == clf.classes_.dtype and (labels == clf.predict(X)).all()
    report("classifier uint8 RGB input", np.abs(proba - clf.predict_proba(X)).max())
    with pytest.raises(Exception, match="(?i)type|uint8"):  # the input contract is typed
        run(model, X.astype(np.float32))


def test_flat_rows_with_image_shape_keep_their_layout(digits):
    X, y, X_test = digits
    clf = skrnn.RNNImageClassifier(
        hidden_size=4, max_epochs=1, image_shape=(8, 8), order="columns", random_state=0
    ).fit(X.reshape(len(X), -1), y)
    flat = X_test.reshape(len(X_test), -1)
    labels, proba = run(skrnn.export_onnx(clf), flat.astype(np.float32))
    assert (labels == clf.predict(flat)).all()
    report("classifier flat rows (n, 64)", np.abs(proba - clf.predict_proba(flat)).max())


def test_embedded_ids_take_int64_input(digits):
    X, y, X_test = digits
    ids = X.astype(np.int64)
    clf = skrnn.RNNImageClassifier(
        hidden_size=4, max_epochs=1, embedding_dim=3, random_state=0
    ).fit(ids, y)
    test_ids = X_test.astype(np.int64)
    labels, proba = run(skrnn.export_onnx(clf), test_ids)
    assert (labels == clf.predict(test_ids)).all()
    report("classifier embedded ids", np.abs(proba - clf.predict_proba(test_ids)).max())


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_onnx_regressor_undoes_the_target_scaling(digits, n_outputs):
    X, y, X_test = digits
    targets = np.c_[y * 3.0 + 20.0, -y, X.sum(axis=(1, 2)) / 10.0][:, :n_outputs]
    targets = targets[:, 0] if n_outputs == 1 else targets
    reg = skrnn.RNNImageRegressor(hidden_size=4, max_epochs=1, random_state=0).fit(X, targets)
    (values,) = run(skrnn.export_onnx(reg), X_test.astype(np.float32))
    predicted = reg.predict(X_test)
    assert values.shape == predicted.shape
    difference = np.abs(values - predicted)
    if torch.cuda.is_available():
        # In the model's standardised units: the targets spread over up to 27 here, and on a
        # GPU cuDNN's TF32 kernels round relatively, about 1e-3 of the model's own outputs.
        difference = difference / reg._y_scale
    report(f"regressor {n_outputs} output(s)", difference.max(), gpu_tolerance=5e-3)


SEGMENTERS = {
    "gru-patches-2x2-conv": dict(),
    "lstm-one-direction-pixels": dict(cell="lstm", bidirectional=False, patch_size=None),
    "rnn-stacked-sizes-patches-3x2": dict(cell="rnn", hidden_size=(4, 6), patch_size=(3, 2)),
}


@pytest.mark.parametrize("params", SEGMENTERS.values(), ids=list(SEGMENTERS))
def test_onnx_segmenter_equals_predict_at_two_image_sizes(params):
    X, Y = make_shapes(n_samples=10, image_size=12, random_state=0)
    labels_in = np.array([0, 3, 7, 9], dtype=np.uint8)[Y]  # labels that are not 0..K-1
    seg = skrnn.RNNSegmenter(
        **{
            "hidden_size": 4,
            "num_layers": 1,
            "max_epochs": 1,
            "conv": (4,),
            "head": (4,),
            "patch_size": (2, 2),
            "random_state": 0,
            **params,
        }
    ).fit(X, labels_in)
    model = skrnn.export_onnx(seg)
    for size in (12, 17):
        images, _ = make_shapes(n_samples=3, image_size=size, random_state=1)
        labels, proba = run(model, images.astype(np.float32))
        assert labels.dtype == np.uint8 and labels.shape == (3, size, size)
        assert (labels == seg.predict(images)).all()
        report(
            f"segmenter {params} at {size}x{size}", np.abs(proba - seg.predict_proba(images)).max()
        )


# ----------------------------------------------------------------------------- plugin cells
class LoopGRU(torch.nn.Module):
    """A cell written as a Python loop over time steps: traced, it is unrolled."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.step = torch.nn.GRUCell(input_size, hidden_size)

    def forward(self, x):
        state = x.new_zeros(x.shape[0], self.step.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            state = self.step(x[:, t], state)
            outputs.append(state)
        return torch.stack(outputs, dim=1)


class BesselCell(torch.nn.Module):
    """A cell with an operator ONNX does not have."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.linear = torch.nn.Linear(input_size, hidden_size)

    def forward(self, x):
        return torch.special.i0(self.linear(x))


@pytest.fixture
def plugin_cells(monkeypatch):
    monkeypatch.setattr(cells, "_CELLS", dict(cells._CELLS))
    cells.register_cell("loop_gru")(lambda i, h, n, b, d: LoopGRU(i, h))
    cells.register_cell("bessel")(lambda i, h, n, b, d: BesselCell(i, h))


def test_traceable_plugin_cell_exports(digits, plugin_cells):
    X, y, X_test = digits
    clf = skrnn.RNNImageClassifier(
        cell="loop_gru", bidirectional=False, hidden_size=4, max_epochs=1, random_state=0
    ).fit(X, y)
    labels, proba = run(skrnn.export_onnx(clf), X_test.astype(np.float32))
    assert (labels == clf.predict(X_test)).all()
    report("classifier plugin cell (Python loop)", np.abs(proba - clf.predict_proba(X_test)).max())


def test_plugin_cell_torch_cannot_trace_is_named(digits, plugin_cells):
    X, y, _ = digits
    clf = skrnn.RNNImageClassifier(
        cell="bessel", bidirectional=False, hidden_size=4, max_epochs=1, random_state=0
    ).fit(X, y)
    with pytest.raises(RuntimeError, match="cell 'bessel'.*i0"):
        skrnn.export_onnx(clf)


def test_unrolled_plugin_cell_on_resized_images_is_caught(plugin_cells):
    # The segmenter's sequences change length with the image size, so an unrolled loop is
    # wrong on other sizes: the export checks another size and says which cell failed.
    X, Y = make_shapes(n_samples=6, image_size=8, random_state=0)
    seg = skrnn.RNNSegmenter(
        cell="loop_gru",
        bidirectional=False,
        hidden_size=4,
        num_layers=1,
        conv=(),
        head=(),
        patch_size=(2, 2),
        max_epochs=1,
        random_state=0,
    ).fit(X, Y)
    with pytest.raises(RuntimeError, match="cell 'loop_gru' disagrees"):
        skrnn.export_onnx(seg)


# ----------------------------------------------------------------------------- contract
def test_metadata_spells_out_the_input_contract(digits, tmp_path):
    X, y, _ = digits
    clf = skrnn.RNNImageClassifier(hidden_size=4, max_epochs=1, random_state=0).fit(X, NAMES[y])
    with open(tmp_path / "model.onnx", "wb") as file:
        skrnn.export_onnx(clf, file)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["skrnn_estimator"] == "RNNImageClassifier"
    assert "images (batch, 8, 8) of dtype float32" in meta["skrnn_contract"]
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]


def test_what_cannot_be_exported_says_so(digits):
    X, y, _ = digits
    with pytest.raises(NotFittedError):
        skrnn.export_onnx(skrnn.RNNImageClassifier())
    gen = skrnn.RNNImageGenerator(hidden_size=4, max_epochs=1, random_state=0)
    gen.fit((X[:20] > 8).astype(np.uint8))
    with pytest.raises(TypeError, match="RNNImageGenerator"):
        skrnn.export_onnx(gen)
    clf = skrnn.RNNImageClassifier(hidden_size=4, max_epochs=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="input_dtype"):
        skrnn.export_onnx(clf, input_dtype="complex64")
