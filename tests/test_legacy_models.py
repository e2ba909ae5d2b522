"""Model files saved by an earlier skrnn load and predict exactly as they did when saved."""

from pathlib import Path

import numpy as np
import pytest

import skrnn

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA / "legacy_expected.npz", allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def test_legacy_classifier_predicts_as_saved(expected):
    clf = skrnn.load(DATA / "legacy_classifier.skrnn")
    assert isinstance(clf, skrnn.RNNImageClassifier)
    np.testing.assert_allclose(clf.predict_proba(expected["digits"]),
                               expected["classifier_proba"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(clf.predict(expected["digits"]), expected["classifier_labels"])


def test_legacy_regressor_predicts_as_saved(expected):
    reg = skrnn.load(DATA / "legacy_regressor.skrnn")
    assert isinstance(reg, skrnn.RNNImageRegressor)
    np.testing.assert_allclose(reg.predict(expected["digits"]), expected["regressor"],
                               rtol=1e-5, atol=1e-5)


def test_legacy_segmenter_predicts_as_saved(expected):
    seg = skrnn.load(DATA / "legacy_segmenter.skrnn")
    assert isinstance(seg, skrnn.RNNSegmenter)
    assert seg.conv == ()  # saved before the parameter existed: no local convolutions
    np.testing.assert_allclose(seg.predict_proba(expected["shapes"]),
                               expected["segmenter_proba"], rtol=1e-5, atol=1e-6)


def test_legacy_generator_scores_and_samples_as_saved(expected):
    gen = skrnn.load(DATA / "legacy_generator.skrnn")
    assert isinstance(gen, skrnn.RNNImageGenerator)
    y = skrnn.datasets.load_digits_images(return_X_y=True)[1][:10]  # the saved images' labels
    np.testing.assert_allclose(gen.score_samples(expected["digits"], y),
                               expected["generator_log_likelihood"], rtol=1e-6)
    np.testing.assert_array_equal(gen.sample(3, y=[1, 2, 3], random_state=0),
                                  expected["generator_sample"])
