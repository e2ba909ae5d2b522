"""The precision parameter: bfloat16 autocast (CPU and CUDA), float16 with loss scaling (CUDA;
its scaler is exercised here on the CPU at the net level), weights that stay float32 in memory
and in model files, and the training safety nets that keep working."""

import io
import zipfile

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

import skrnn
from skrnn import RNNImageClassifier, RNNImageGenerator, RNNImageRegressor, RNNSegmenter
from skrnn._losses import WeightedLoss
from skrnn._net import SkrnnNet
from skrnn.datasets import load_digits_images, make_shapes
from skrnn.exceptions import NonFiniteLossError

TINY = dict(hidden_size=8, max_epochs=2, random_state=0, n_threads=1, device="cpu")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images(return_X_y=True)
    return X[:200], y[:200]


def test_bfloat16_trains_with_float32_weights_and_saves_them_as_float32(digits):
    X, y = digits
    clf = RNNImageClassifier(precision="bfloat16", **TINY).fit(X, y)
    assert all(p.dtype == torch.float32 for p in clf.net_.module_.parameters())
    buffer = io.BytesIO()
    clf.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        header = archive.read("weights.safetensors")
    assert b"BF16" not in header and b"F32" in header
    buffer.seek(0)
    loaded = skrnn.load(buffer)
    assert loaded.precision == "bfloat16"
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_bfloat16_really_computes_in_16_bits_close_to_float32(digits):
    X, y = digits
    clf = RNNImageClassifier(precision="bfloat16", **TINY).fit(X, y)
    in_bf16 = clf.predict_proba(X)
    in_fp32 = clf.set_params(precision="float32").predict_proba(X)
    difference = np.abs(in_bf16 - in_fp32).max()
    assert 0 < difference < 0.02


@pytest.mark.parametrize(
    "make, data",
    [
        (lambda: RNNImageRegressor(precision="bfloat16", **TINY), "regression"),
        (lambda: RNNSegmenter(precision="bfloat16", conv=(4,), **TINY), "shapes"),
        (lambda: RNNImageGenerator(precision="bfloat16", **TINY), "digits"),
    ],
    ids=["regressor", "segmenter", "generator"],
)
def test_every_estimator_trains_and_predicts_in_bfloat16(make, data, digits):
    X, y = digits
    if data == "regression":
        y = y.astype(np.float32)
    elif data == "shapes":
        X, y = make_shapes(n_samples=16, image_size=12, random_state=0)
    estimator = make().fit(X, y)
    outputs = estimator.score_samples(X) if data == "digits" else estimator.predict(X)
    assert np.isfinite(np.asarray(outputs, dtype=float)).all()


def test_float16_off_cuda_is_refused_with_what_to_use_instead(digits):
    with pytest.raises(ValueError, match="float16.*CUDA devices only.*bfloat16"):
        RNNImageClassifier(precision="float16", **TINY).fit(*digits)
    with pytest.raises(ValueError, match="precision"):
        RNNImageClassifier(precision="half", **TINY).fit(*digits)


def test_a_float16_model_on_the_cpu_predicts_in_float32(digits):
    # e.g. trained on a GPU and loaded here: same predictions as the float32 path
    clf = RNNImageClassifier(**TINY).fit(*digits)
    expected = clf.predict_proba(digits[0])
    clf.precision = "float16"
    np.testing.assert_array_equal(clf.predict_proba(digits[0]), expected)


def test_the_non_finite_loss_guard_works_in_bfloat16(digits):
    X, y = digits
    with pytest.raises(NonFiniteLossError):
        RNNImageRegressor(precision="bfloat16", lr=1e30, max_grad_norm=None, **TINY).fit(
            X, np.full(len(X), 1e30, dtype=np.float32)
        )


class GradientNorm(Callback):
    def initialize(self):
        self.norms = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad.norm() for _, p in named_parameters if p.grad is not None]
        self.norms.append(float(torch.stack(grads).norm()))


def _linear_net(precision, callbacks=()):
    torch.manual_seed(0)
    return SkrnnNet(
        torch.nn.Linear,
        WeightedLoss,
        module__in_features=4,
        module__out_features=3,
        criterion__kind="cross_entropy",
        precision=precision,
        max_epochs=3,
        batch_size=16,
        lr=0.05,
        device="cpu",
        train_split=None,
        callbacks=list(callbacks),
        verbose=0,
    )


def test_float16_scales_the_loss_and_callbacks_see_true_gradients():
    # the float16 machinery, on the CPU at the net level (an LSTM has no CPU float16 kernel)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    plain_norms, scaled_norms = GradientNorm(), GradientNorm()
    plain = _linear_net("float32", [plain_norms]).fit(X, y)
    scaled = _linear_net("float16", [scaled_norms]).fit(X, y)
    assert plain.scaler_ is None and scaled.scaler_ is not None
    assert scaled.scaler_.get_scale() > 1  # the loss was scaled
    # unscaled before the callbacks: the norms are gradients, not gradients times 65536
    np.testing.assert_allclose(scaled_norms.norms[0], plain_norms.norms[0], rtol=0.05)
    assert scaled.history[-1, "train_loss"] < scaled.history[0, "train_loss"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_on_cuda_reaches_float32_accuracy(precision):
    X, y = load_digits_images(return_X_y=True)
    params = dict(max_epochs=10, random_state=0, device="cuda")
    reference = RNNImageClassifier(**params).fit(X[:1200], y[:1200]).score(X[1200:], y[1200:])
    mixed = RNNImageClassifier(precision=precision, **params).fit(X[:1200], y[:1200])
    assert mixed.score(X[1200:], y[1200:]) >= reference - 0.02
