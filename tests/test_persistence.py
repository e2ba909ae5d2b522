"""``est.save(path)`` / ``skrnn.load(path)``: one safe file that predicts identically, refuses
damaged, altered or foreign files, and never unpickles anything."""

import io
import json
import os
import pickle
import zipfile

import joblib
import numpy as np
import pytest
import torch

import skrnn
from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSegmenter, cells
from skrnn._json import decode as _decode
from skrnn._json import encode as _encode
from skrnn._persistence import _sha256
from skrnn.exceptions import MissingCellError, ModelFileError

TINY = dict(hidden_size=4, max_epochs=1, batch_size=8, random_state=0, device="cpu")
RNG = np.random.default_rng(0)
X = RNG.random((12, 6, 6)).astype(np.float32)
MASKS = (X > 0.5).astype(np.int32)


def _fit(kind):
    if kind == "classifier":
        return RNNImageClassifier(**TINY, class_weight="balanced").fit(X, np.array(list("abc") * 4))
    if kind == "regressor":
        targets = RNG.random((12, 2)) * 100
        return RNNImageRegressor(**{**TINY, "hidden_size": (4, 3)}).fit(X, targets)
    if kind == "segmenter":
        return RNNSegmenter(**TINY, num_layers=1, head=(4,), ignore_label=9).fit(X, MASKS)
    if kind == "tokens":
        tokens = (X * 4).astype(int)
        return RNNImageClassifier(**TINY, embedding_dim=3).fit(tokens, np.arange(12) % 2)
    levels = (X[:, :4, :4] * 4).astype(np.int64)
    return RNNImageGenerator(**TINY, embedding_dim=4).fit(levels, np.arange(12) % 2)


KINDS = ["classifier", "regressor", "segmenter", "tokens", "generator"]


def _embeds(estimator):
    return isinstance(estimator, RNNImageClassifier) and estimator.embedding_dim is not None


def _predictions(estimator):
    if isinstance(estimator, RNNImageGenerator):
        levels = (X[:, :4, :4] * 4).astype(np.int64)
        return [estimator.score_samples(levels), estimator.sample(3, random_state=0)]
    data = (X * 4).astype(int) if _embeds(estimator) else X
    outputs = [estimator.predict(data)]
    if hasattr(estimator, "predict_proba"):
        outputs.append(estimator.predict_proba(data))
    return outputs


@pytest.fixture(scope="module", params=KINDS)
def saved(request, tmp_path_factory):
    estimator = _fit(request.param)
    path = tmp_path_factory.mktemp("models") / f"{request.param}.skrnn"
    estimator.save(path)
    return estimator, path


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_saved_files_follow_the_umask(saved, tmp_path, umask):
    estimator, _ = saved
    before = os.umask(umask)
    try:
        estimator.save(tmp_path / "model.skrnn")
    finally:
        os.umask(before)
    assert (tmp_path / "model.skrnn").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_loaded_model_predicts_exactly_as_the_saved_one(saved):
    estimator, path = saved
    loaded = skrnn.load(path)
    assert type(loaded) is type(estimator)
    for before, after in zip(_predictions(estimator), _predictions(loaded), strict=True):
        np.testing.assert_array_equal(before, after)
        assert before.dtype == after.dtype


def test_a_loaded_model_has_the_same_parameters_and_fitted_state(saved):
    estimator, path = saved
    loaded = skrnn.load(path)
    assert loaded.get_params() == estimator.get_params()
    for name, value in vars(estimator).items():
        if name in ("net_", "_device") or name in estimator.get_params():
            continue
        restored = getattr(loaded, name)
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(restored, value)
            assert restored.dtype == value.dtype
        else:
            assert restored == value, name
            assert type(restored) is type(value), name
    assert loaded.n_iter_ == estimator.n_iter_ == len(loaded.net_.history)


def test_the_file_is_a_zip_of_json_and_safetensors_without_pickle(saved):
    _, path = saved
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["manifest.json", "model.json", "weights.safetensors"]
        manifest = json.loads(archive.read("manifest.json"))
        model = archive.read("model.json")
        weights = archive.read("weights.safetensors")
    assert manifest["format"] == "skrnn-model"
    assert manifest["skrnn_version"] == skrnn.__version__
    assert manifest["sha256"] == {
        "model.json": _sha256(model),
        "weights.safetensors": _sha256(weights),
    }
    for blob in (model, weights):
        assert not blob.startswith(b"\x80")  # no pickle protocol header


@pytest.mark.parametrize(
    "labels",
    [np.array(["cat", "dog"] * 6), np.arange(12) % 2 * 10, np.arange(12) % 2 + 1.0,
     np.arange(12) % 2 == 0, np.array(["x", "y"] * 6, dtype=object),
     np.array(["cat", "dog"] * 6, dtype="<U50")],
    ids=["str", "int", "float", "bool", "object", "padded str"],
)
def test_classes_round_trip_with_their_dtype(labels):
    clf = RNNImageClassifier(**TINY).fit(X, labels)
    buffer = io.BytesIO()
    clf.save(buffer)
    buffer.seek(0)
    loaded = skrnn.load(buffer)
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.predict(X).dtype == clf.predict(X).dtype


# ------------------------------------------------------------------ refused files
def _rewrite(path, target, *, model=None, weights=None, fix_checksums=False):
    """Copy a model file with its model.json or weights replaced."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    if model is not None:
        entries["model.json"] = json.dumps(model(json.loads(entries["model.json"]))).encode()
    if weights is not None:
        entries["weights.safetensors"] = weights(entries["weights.safetensors"])
    if fix_checksums:
        manifest = json.loads(entries["manifest.json"])
        for name in ("model.json", "weights.safetensors"):
            manifest["sha256"][name] = _sha256(entries[name])
        entries["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return target


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    clf = RNNImageClassifier(**TINY).fit(X, np.arange(12) % 3)
    path = tmp_path_factory.mktemp("clf") / "clf.skrnn"
    clf.save(path)
    return path


def test_altered_weights_fail_the_checksum(classifier_file, tmp_path):
    def flip(data):
        data = bytearray(data)
        data[-3] ^= 0xFF
        return bytes(data)

    bad = _rewrite(classifier_file, tmp_path / "bad.skrnn", weights=flip)
    with pytest.raises(ModelFileError, match="fails its checksum: weights.safetensors"):
        skrnn.load(bad)


def test_altered_parameters_fail_the_checksum(classifier_file, tmp_path):
    def change(model):
        model["params"]["hidden_size"] = 64
        return model

    bad = _rewrite(classifier_file, tmp_path / "bad.skrnn", model=change)
    with pytest.raises(ModelFileError, match="fails its checksum: model.json"):
        skrnn.load(bad)


def test_consistently_altered_parameters_are_still_refused(classifier_file, tmp_path):
    def change(model):
        model["params"]["hidden_size"] = 64
        return model

    bad = _rewrite(classifier_file, tmp_path / "bad.skrnn", model=change, fix_checksums=True)
    with pytest.raises(ModelFileError, match="weights do not fit"):
        skrnn.load(bad)


def test_invalid_parameter_values_in_a_file_are_refused(classifier_file, tmp_path):
    def change(model):
        model["params"]["dropout"] = 7.0
        return model

    bad = _rewrite(classifier_file, tmp_path / "bad.skrnn", model=change, fix_checksums=True)
    with pytest.raises(ModelFileError, match="dropout"):
        skrnn.load(bad)


def test_a_truncated_file_is_refused(classifier_file, tmp_path):
    data = classifier_file.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 10):
        bad = tmp_path / "truncated.skrnn"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match="not a valid skrnn model file"):
            skrnn.load(bad)


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, I am a text file\n", b"\x93NUMPY\x01\x00" + b"\x00" * 100],
    ids=["empty", "text", "npy"],
)
def test_a_file_of_another_format_is_refused(tmp_path, content):
    bad = tmp_path / "other.skrnn"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError, match="not a zip archive"):
        skrnn.load(bad)


def test_a_zip_that_is_not_a_model_file_is_refused(tmp_path):
    bad = tmp_path / "other.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ModelFileError, match="holds exactly"):
        skrnn.load(bad)


def test_a_newer_format_version_asks_for_an_upgrade(classifier_file, tmp_path):
    with zipfile.ZipFile(classifier_file) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(entries["manifest.json"])
    manifest["format_version"] = 99
    entries["manifest.json"] = json.dumps(manifest).encode()
    bad = tmp_path / "future.skrnn"
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="Upgrade skrnn"):
        skrnn.load(bad)


class _MakesMarker:
    """Unpickling this object would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_crafted_to_run_code_on_unpickling_is_refused_without_running_it(
    classifier_file, tmp_path
):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_MakesMarker(str(marker)))
    # 1) a bare pickle; 2) a torch-style zip holding a pickle; 3) a model file whose weights
    # entry is a pickle (with checksums that match); 4) its model.json replaced by a pickle.
    bare = tmp_path / "bare.skrnn"
    bare.write_bytes(payload)
    torch_style = tmp_path / "torch.skrnn"
    with zipfile.ZipFile(torch_style, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    as_weights = _rewrite(
        classifier_file, tmp_path / "weights.skrnn", weights=lambda _: payload, fix_checksums=True
    )
    with zipfile.ZipFile(classifier_file) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    entries["model.json"] = payload
    manifest = json.loads(entries["manifest.json"])
    manifest["sha256"]["model.json"] = _sha256(payload)
    entries["manifest.json"] = json.dumps(manifest).encode()
    as_model = tmp_path / "model.skrnn"
    with zipfile.ZipFile(as_model, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)

    for path in (bare, torch_style, as_weights, as_model):
        with pytest.raises(ModelFileError):
            skrnn.load(path)
        assert not marker.exists(), path.name


def test_an_unregistered_cell_factory_cannot_be_saved(tmp_path):
    def my_cell(input_size, hidden_size, num_layers, bidirectional, dropout):
        return cells.get_cell("rnn")(input_size, hidden_size, num_layers, bidirectional, dropout)

    clf = RNNImageClassifier(**{**TINY, "cell": my_cell}).fit(X, np.arange(12) % 2)
    with pytest.raises(ValueError, match="not registered.*register_cell"):
        clf.save(tmp_path / "model.skrnn")
    assert not (tmp_path / "model.skrnn").exists()


def test_a_missing_cell_plugin_is_named_on_load(tmp_path):
    def plugin_cell(input_size, hidden_size, num_layers, bidirectional, dropout):
        return cells.get_cell("gru")(input_size, hidden_size, num_layers, bidirectional, dropout)

    plugin_cell.__module__ = "skrnn_plugin_example.cells"
    cells.register_cell("plugin_example_cell", plugin_cell, overwrite=True)
    try:
        clf = RNNImageClassifier(**{**TINY, "cell": plugin_cell}).fit(X, np.arange(12) % 2)
        clf.save(tmp_path / "model.skrnn")
        assert skrnn.load(tmp_path / "model.skrnn").cell is plugin_cell
    finally:
        del cells._CELLS["plugin_example_cell"]
    # The module's name is read from the file, which anyone can edit: the message says so.
    with pytest.raises(
        MissingCellError,
        match="'plugin_example_cell'.*skrnn_plugin_example.cells.*read from the file",
    ):
        skrnn.load(tmp_path / "model.skrnn")


def test_a_model_saved_for_cuda_loads_on_the_cpu(classifier_file, tmp_path):
    def on_cuda(model):
        model["params"]["device"] = "cuda"
        return model

    path = _rewrite(classifier_file, tmp_path / "cuda.skrnn", model=on_cuda, fix_checksums=True)
    if torch.cuda.is_available():
        loaded = skrnn.load(path, device="cpu")
    else:
        with pytest.warns(UserWarning, match="loaded on the CPU"):
            loaded = skrnn.load(path)
    assert loaded.device == "cpu"
    assert loaded.net_.module_.head[-1].weight.device.type == "cpu"
    np.testing.assert_array_equal(loaded.predict(X), skrnn.load(classifier_file).predict(X))


def test_callbacks_are_dropped_with_a_warning(tmp_path):
    from skorch.callbacks import EpochTimer

    clf = RNNImageClassifier(**TINY, callbacks=[("timer2", EpochTimer())])
    clf.fit(X, np.arange(12) % 2)
    with pytest.warns(UserWarning, match="callbacks are not saved"):
        clf.save(tmp_path / "model.skrnn")
    assert skrnn.load(tmp_path / "model.skrnn").callbacks is None


def test_saving_replaces_an_existing_file_and_accepts_str_paths(classifier_file, tmp_path):
    target = tmp_path / "model.skrnn"
    target.write_bytes(b"old")
    clf = skrnn.load(classifier_file)
    clf.save(str(target))
    np.testing.assert_array_equal(skrnn.load(str(target)).predict(X), clf.predict(X))
    assert sorted(os.listdir(tmp_path)) == ["model.skrnn"]  # no temporary file left behind


def test_pickle_and_joblib_keep_working(classifier_file, tmp_path):
    clf = skrnn.load(classifier_file)
    clone = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clone.predict_proba(X), clf.predict_proba(X))
    joblib.dump(clf, tmp_path / "model.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "model.joblib").predict(X), clf.predict(X))


def test_a_loaded_model_can_keep_training(classifier_file):
    clf = skrnn.load(classifier_file)
    clf.set_params(warm_start=True, max_epochs=1)
    clf.fit(X, np.arange(12) % 3)
    assert clf.n_iter_ == 2


@pytest.mark.parametrize(
    "value",
    [None, True, 3, -2.5, float("nan"), float("-inf"), "text", (1, (2, "a")), [1.0, [None]],
     {0: 1.5, "a": (1,)}, np.float32(0.1), np.int8(-3), np.bool_(True), np.str_("s"),
     np.array([[1, 2]], dtype=np.uint16), np.array([np.nan, 1e300]), np.array(["a", "bc"]),
     np.array([1, "a", None], dtype=object), np.dtype("float32"), np.int64,
     np.random.RandomState(3)],
    # A RandomState's repr holds its address: named by type, so that every pytest process
    # (pytest-xdist's workers) collects the same ids.
    ids=lambda value: "RandomState" if isinstance(value, np.random.RandomState) else repr(value),
)
def test_values_round_trip_through_the_json_encoding(value):
    decoded = _decode(json.loads(json.dumps(_encode(value, "value"), allow_nan=False)), "value")
    if isinstance(value, np.random.RandomState):
        assert decoded.randint(10**9) == value.randint(10**9)
    elif isinstance(value, np.ndarray):
        np.testing.assert_array_equal(decoded, value)
        assert decoded.dtype == value.dtype
    elif isinstance(value, float) and np.isnan(value):
        assert np.isnan(decoded)
    else:
        assert decoded == value
        assert type(decoded) is type(value)
