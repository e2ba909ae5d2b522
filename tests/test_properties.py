"""Properties that hold for any input: sequences round-trip, predictions do not depend on the
inference batch size, probabilities sum to one."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skrnn import (
    ImageToSequence,
    RNNImageClassifier,
    RNNImageGenerator,
    RNNImageRegressor,
    RNNSegmenter,
)

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TINY = dict(hidden_size=4, max_epochs=1, batch_size=8, random_state=0, device="cpu")
RNG = np.random.default_rng(0)
X = RNG.random((16, 6, 6)).astype(np.float32)


@st.composite
def images_and_reader(draw):
    """A batch of images and an ImageToSequence that can read them (patches tile)."""
    order = draw(st.sampled_from(["rows", "columns", "pixels", "patches"]))
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height = ph * draw(st.integers(1, 3)) if order == "patches" else draw(st.integers(1, 7))
    width = pw * draw(st.integers(1, 3)) if order == "patches" else draw(st.integers(1, 7))
    channels = draw(st.sampled_from([None, 1, 2, 3]))
    n = draw(st.integers(1, 4))
    shape = (n, height, width) if channels is None else (n, height, width, channels)
    dtype = draw(st.sampled_from([np.float32, np.float64, np.uint8, np.int16]))
    elements = (
        st.floats(-1e3, 1e3, width=32) if np.dtype(dtype).kind == "f" else st.integers(0, 255)
    )
    images = draw(hnp.arrays(dtype, shape, elements=elements))
    patch_size = (ph, pw) if order == "patches" else None
    return images, ImageToSequence(order=order, patch_size=patch_size)


@SETTINGS
@given(images_and_reader())
def test_image_to_sequence_round_trips_for_any_shape_order_and_channels(case):
    images, reader = case
    sequences = reader.fit_transform(images)
    height, width = images.shape[1:3]
    channels = images.shape[3] if images.ndim == 4 else 1
    assert sequences.shape[0] == len(images)
    assert sequences.shape[1] * sequences.shape[2] == height * width * channels
    back = reader.inverse_transform(sequences)
    assert back.dtype == images.dtype
    np.testing.assert_array_equal(back, images)


@pytest.fixture(scope="module")
def models():
    return {
        "classifier": RNNImageClassifier(**TINY).fit(X, np.arange(16) % 3),
        "regressor": RNNImageRegressor(**TINY).fit(X, RNG.random((16, 2))),
        "segmenter": RNNSegmenter(**TINY, num_layers=1, head=(4,)).fit(
            X, (X > 0.5).astype(int) + (X > 0.8)
        ),
    }


def _outputs(model, images):
    if hasattr(model, "predict_proba"):
        return model.predict_proba(images)
    return model.predict(images)


@SETTINGS
@given(
    kind=st.sampled_from(["classifier", "regressor", "segmenter"]),
    n=st.integers(1, 16),
    batch_size=st.integers(1, 9),
)
def test_predictions_do_not_depend_on_the_inference_batch_size(models, kind, n, batch_size):
    model = models[kind]
    expected = _outputs(model, X[:n])
    with mock.patch.object(type(model), "_inference_batch_size", lambda self, *size: batch_size):
        got = _outputs(model, X[:n])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if kind != "regressor":
        np.testing.assert_array_equal(model.classes_[got.argmax(-1)], model.predict(X[:n]))


@pytest.fixture(scope="module")
def wide_models():
    """Networks wide enough (two 64-unit layers) that matrix kernels round a batch of one and
    a batch of many differently."""
    digits = RNG.random((48, 8, 8)).astype(np.float32)
    wide = dict(hidden_size=64, max_epochs=1, random_state=0, device="cpu")
    return digits, {
        "classifier": RNNImageClassifier(**wide).fit(digits, np.arange(48) % 4),
        "regressor": RNNImageRegressor(**wide).fit(digits, RNG.random(48) / 100),
        "segmenter": RNNSegmenter(**wide, num_layers=1).fit(digits, digits > 0.5),
        "generator": RNNImageGenerator(**wide, reader="pixels").fit((digits * 4).astype(int)),
    }


@pytest.mark.parametrize("kind", ["classifier", "regressor", "segmenter", "generator"])
def test_a_rows_outputs_do_not_depend_on_the_rows_that_share_its_call(wide_models, kind):
    # sklearn's check_methods_subset_invariance, bit for bit: every call runs batches of one
    # size, whatever the number of rows it gets (BaseRNNEstimator._run_inference)
    digits, model = wide_models[0][:20], wide_models[1][kind]
    if kind == "generator":
        digits = (digits * 4).astype(int)

    def outputs(images):
        return model.score_samples(images) if kind == "generator" else _outputs(model, images)

    whole = outputs(digits)
    np.testing.assert_array_equal(
        np.concatenate([outputs(row[None]) for row in digits[:5]]), whole[:5]
    )
    np.testing.assert_array_equal(np.concatenate([outputs(digits[:7]), outputs(digits[7:])]), whole)


finite_images = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 5), st.just(6), st.just(6)),
    elements=st.floats(-1e6, 1e6, allow_nan=False),
)


@SETTINGS
@given(images=finite_images, kind=st.sampled_from(["classifier", "segmenter"]))
def test_predict_proba_rows_sum_to_one(models, images, kind):
    proba = models[kind].predict_proba(images)
    assert np.isfinite(proba).all()
    assert (proba >= 0).all() and (proba <= 1).all()
    np.testing.assert_allclose(proba.sum(axis=-1), 1.0, rtol=1e-5)
