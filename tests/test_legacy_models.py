"""Model files saved by an earlier skrnn load and predict exactly as they did when saved.

They were saved on a CPU, so they are loaded there to predict exactly as saved; on a machine
with a GPU, the last test loads them there too and compares to a GPU's precision."""

from pathlib import Path

import numpy as np
import pytest
import torch

import skrnn

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA / "legacy_expected.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def test_legacy_classifier_predicts_as_saved(expected):
    clf = skrnn.load(DATA / "legacy_classifier.skrnn", device="cpu")
    assert isinstance(clf, skrnn.RNNImageClassifier)
    assert clf.tol is None  # saved before tol existed: "auto" trained its whole budget
    np.testing.assert_allclose(clf.predict_proba(expected["digits"]),
                               expected["classifier_proba"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(expected["digits"]), expected["classifier_labels"])


def test_legacy_regressor_predicts_as_saved(expected):
    reg = skrnn.load(DATA / "legacy_regressor.skrnn", device="cpu")
    assert isinstance(reg, skrnn.RNNImageRegressor)
    np.testing.assert_allclose(reg.predict(expected["digits"]), expected["regressor"],
                               rtol=1e-5, atol=1e-5)


def test_legacy_segmenter_predicts_as_saved(expected):
    seg = skrnn.load(DATA / "legacy_segmenter.skrnn", device="cpu")
    assert isinstance(seg, skrnn.RNNSegmenter)
    assert seg.conv == ()  # saved before the parameter existed: no local convolutions
    assert seg.tol is None
    assert seg.progressive_resizing is False  # trained at full size throughout
    np.testing.assert_allclose(seg.predict_proba(expected["shapes"]),
                               expected["segmenter_proba"], rtol=1e-5, atol=1e-6)


def test_legacy_generator_scores_and_samples_as_saved(expected):
    gen = skrnn.load(DATA / "legacy_generator.skrnn", device="cpu")
    assert isinstance(gen, skrnn.RNNImageGenerator)
    assert gen.reader == "pixels"  # saved before the grid readers existed
    y = skrnn.datasets.load_digits_images(return_X_y=True)[1][:10]  # the saved images' labels
    np.testing.assert_allclose(gen.score_samples(expected["digits"], y),
                               expected["generator_log_likelihood"], rtol=1e-6)
    np.testing.assert_array_equal(gen.sample(3, y=[1, 2, 3], random_state=0),
                                  expected["generator_sample"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_legacy_models_predict_on_a_gpu_as_saved(expected):
    """On a GPU, cuDNN's TF32 kernels round differently from the CPU the files were saved on;
    the generator's draws come from the GPU's own generator, so its samples are not compared."""
    digits, shapes = expected["digits"], expected["shapes"]
    clf = skrnn.load(DATA / "legacy_classifier.skrnn", device="cuda")
    np.testing.assert_allclose(clf.predict_proba(digits), expected["classifier_proba"], atol=2e-3)
    reg = skrnn.load(DATA / "legacy_regressor.skrnn", device="cuda")
    np.testing.assert_allclose(reg.predict(digits), expected["regressor"], rtol=1e-2, atol=1e-2)
    seg = skrnn.load(DATA / "legacy_segmenter.skrnn", device="cuda")
    np.testing.assert_allclose(seg.predict_proba(shapes), expected["segmenter_proba"], atol=2e-3)
    gen = skrnn.load(DATA / "legacy_generator.skrnn", device="cuda")
    y = skrnn.datasets.load_digits_images(return_X_y=True)[1][:10]
    np.testing.assert_allclose(gen.score_samples(digits, y), expected["generator_log_likelihood"],
                               rtol=1e-3)


# ------------------------------------------------- one set of files per model-file format
KINDS = ["classifier", "regressor", "segmenter", "generator", "recognizer"]


@pytest.fixture(scope="module")
def format1():
    with np.load(DATA / "format1_expected.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def test_every_format_version_has_a_file_of_every_estimator():
    """A new format version must add its own set beside the older ones (see
    tests/data/make_format1_models.py), so that every version stays loadable."""
    from skrnn._persistence import FORMAT_VERSION

    for version in range(1, FORMAT_VERSION + 1):
        for kind in KINDS:
            assert (DATA / f"format{version}_{kind}.skrnn").is_file(), (version, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_format1_files_load_and_predict_as_saved(format1, kind):
    model = skrnn.load(DATA / f"format1_{kind}.skrnn", device="cpu")
    if kind == "classifier":
        np.testing.assert_allclose(model.predict_proba(format1["digits"]),
                                   format1["classifier_proba"], rtol=1e-5, atol=1e-6)
    elif kind == "regressor":
        np.testing.assert_allclose(model.predict(format1["digits"]), format1["regressor"],
                                   rtol=1e-5, atol=1e-5)
    elif kind == "segmenter":
        np.testing.assert_allclose(model.predict_proba(format1["shapes"]),
                                   format1["segmenter_proba"], rtol=1e-5, atol=1e-6)
    elif kind == "generator":
        assert (model.reader, model.n_levels_) == ("rows", 2)
        np.testing.assert_allclose(model.score_samples(format1["binary"], format1["labels"]),
                                   format1["generator_log_likelihood"], rtol=1e-6)
        np.testing.assert_array_equal(model.sample(3, y=[1, 2, 3], random_state=0),
                                      format1["generator_sample"])
    else:
        assert list(model.predict(format1["lines"])) == list(format1["recognizer"])
    assert model.tol == 1e-3  # saved with the parameter, so it keeps its value
