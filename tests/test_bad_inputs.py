"""Every bad input gets a clear ``ValueError``/``TypeError`` (or ``NotFittedError``), never a
torch-internal error: each case names the problem in its message."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from skorch.callbacks import EpochTimer

import skrnn
from skrnn import (
    ImageToSequence,
    RNNImageClassifier,
    RNNImageGenerator,
    RNNImageRegressor,
    RNNSegmenter,
    cells,
    datasets,
    metrics,
)

TINY = dict(hidden_size=4, max_epochs=1, batch_size=8, random_state=0, device="cpu")
SEG_TINY = dict(TINY, num_layers=1, head=(4,))
GEN_TINY = dict(TINY, embedding_dim=4)

RNG = np.random.default_rng(0)
X = RNG.random((12, 6, 6)).astype(np.float32)
Y = np.arange(12) % 3
MASKS = (X > 0.5).astype(np.int64)
LEVELS = RNG.integers(0, 4, size=(12, 4, 4))


@pytest.fixture(scope="module")
def fitted():
    return {
        "clf": RNNImageClassifier(**TINY).fit(X, Y),
        "reg": RNNImageRegressor(**TINY).fit(X, Y.astype(float)),
        "seg": RNNSegmenter(**SEG_TINY).fit(X, MASKS),
        "its": ImageToSequence().fit(X),
        "gen": RNNImageGenerator(**GEN_TINY).fit(LEVELS, Y),
    }


def _with(**changes):
    return lambda cls: cls(**{**(SEG_TINY if cls is RNNSegmenter else TINY), **changes})


ESTIMATORS = [RNNImageClassifier, RNNImageRegressor, RNNSegmenter]
TARGETS = {RNNImageClassifier: Y, RNNImageRegressor: Y.astype(float), RNNSegmenter: MASKS}

# ------------------------------------------------------------ bad X at fit, for every estimator
BAD_X = [
    ("5-d", X[..., None, None], ValueError, "5 dimension"),
    ("1-d", X[0, 0], ValueError, "Expected 2D array|1D array"),
    ("empty", X[:0], ValueError, "0 sample"),
    ("one sample", X[:1], ValueError, "at least 2 samples"),
    ("nan", np.where(X > 0.9, np.nan, X), ValueError, "NaN"),
    ("inf", np.where(X > 0.9, np.inf, X), ValueError, "infinity"),
    ("strings", X.astype(str), ValueError, "strings"),
    ("object strings", np.full(X.shape, "a", dtype=object), ValueError, "string|could not convert"),
    ("complex", X.astype(complex), ValueError, "complex"),
    ("None", None, TypeError, "array-like of images"),
    ("a string", "images.png", TypeError, "array-like of images"),
    ("a dict", {"X": X}, TypeError, "array-like of images"),
    ("images without pixels", np.zeros((12, 0, 6)), ValueError, "no pixels|0 feature"),
]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", BAD_X, ids=[case[0] for case in BAD_X])
def test_bad_X_at_fit_is_refused(cls, case):
    _, bad, error, match = case
    n = len(bad) if hasattr(bad, "__len__") and not isinstance(bad, (str, dict)) else 12
    y = TARGETS[cls][: max(n, 1)] if n != 12 else TARGETS[cls]
    with pytest.raises(error, match=match):
        _with()(cls).fit(bad, y)


# ------------------------------------------------------------ bad parameters, for every estimator
BAD_PARAMS = [
    ({"hidden_size": 0}, "hidden_size"),
    ({"hidden_size": (4, -1)}, "hidden_size"),
    ({"hidden_size": ()}, "hidden_size"),
    ({"hidden_size": 4.5}, "hidden_size"),
    ({"hidden_size": (4, 4), "num_layers": 2}, "num_layers"),
    ({"num_layers": 0}, "num_layers"),
    ({"dropout": 1.5}, "dropout"),
    ({"dropout": -0.1}, "dropout"),
    ({"lr": -1}, "'lr'"),
    ({"lr": 0}, "'lr'"),
    ({"lr": float("nan")}, "'lr'"),
    ({"max_epochs": 0}, "max_epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"optimizer": "lbfgsx"}, "optimizer"),
    ({"optimizer": int}, "torch.optim.Optimizer"),
    ({"weight_decay": -1}, "weight_decay"),
    ({"lr_schedule": "step"}, "lr_schedule"),
    ({"max_grad_norm": 0}, "max_grad_norm"),
    ({"validation_fraction": 1.0, "early_stopping": True}, "validation_fraction"),
    ({"n_iter_no_change": 0}, "n_iter_no_change"),
    ({"device": "tpu"}, "device='tpu'"),
    ({"device": "cuda:x"}, "device='cuda:x'"),
    ({"device": 3}, "device"),
    ({"n_threads": 0}, "n_threads"),
    ({"random_state": "seed"}, "random_state"),
    ({"verbose": "loud"}, "verbose"),
    ({"cell": "no_such_cell"}, "Unknown cell 'no_such_cell'"),
    ({"cell": 3}, "cell"),
    ({"cell": lambda *args: 3}, "must return a torch.nn.Module"),
    ({"callbacks": "progress"}, "callbacks"),
    ({"callbacks": [3]}, "skorch callbacks"),
    ({"callbacks": [("timer", 3)]}, "skorch callbacks"),
    ({"bidirectional": "yes"}, "bidirectional"),
    ({"head": (0,)}, "head"),
    ({"head": "wide"}, "head"),
    ({"num_layers": True}, "num_layers=True is not valid: num_layers takes numbers, not booleans"),
    ({"max_epochs": False}, "max_epochs"),
]


def _ids(case):
    return "-".join(f"{k}={v!r}"[:30] for k, v in case[0].items())


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", BAD_PARAMS, ids=[_ids(case) for case in BAD_PARAMS])
def test_bad_parameter_is_refused_at_fit(cls, case):
    params, match = case
    with pytest.raises((ValueError, TypeError), match=match):
        _with(**params)(cls).fit(X, TARGETS[cls])


def test_cuda_on_a_machine_without_it_is_refused():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        RNNImageClassifier(**{**TINY, "device": "cuda"}).fit(X, Y)


# ------------------------------------------------------------ estimator-specific fit errors
FIT_CASES = [
    ("clf mismatched lengths", lambda: RNNImageClassifier(**TINY).fit(X, Y[:5]),
     ValueError, "different numbers of samples"),
    ("clf single class", lambda: RNNImageClassifier(**TINY).fit(X, Y * 0),
     ValueError, "at least two classes; y has only class 0"),
    ("clf continuous y", lambda: RNNImageClassifier(**TINY).fit(X, Y + 0.5),
     ValueError, "Unknown label type: continuous"),
    ("clf 2-d y", lambda: RNNImageClassifier(**TINY).fit(X, np.c_[Y, Y]),
     ValueError, "1d array"),
    ("clf nan in y", lambda: RNNImageClassifier(**TINY).fit(X, np.where(Y == 1, np.nan, Y)),
     ValueError, "y contains NaN"),
    ("clf y None", lambda: RNNImageClassifier(**TINY).fit(X, None),
     ValueError, "requires y"),
    ("clf class_weight unknown class", lambda: RNNImageClassifier(
        **TINY, class_weight={7: 1.0}).fit(X, Y), ValueError, "class_weight names classes"),
    ("clf class_weight bad string", lambda: RNNImageClassifier(
        **TINY, class_weight="auto").fit(X, Y), ValueError, "class_weight"),
    ("clf label_smoothing 1", lambda: RNNImageClassifier(**TINY, label_smoothing=1.0).fit(X, Y),
     ValueError, "label_smoothing"),
    ("clf unknown loss", lambda: RNNImageClassifier(**TINY, loss="hinge").fit(X, Y),
     ValueError, "'loss'"),
    ("clf binary loss for 3 classes", lambda: RNNImageClassifier(
        **TINY, loss="binary_cross_entropy").fit(X, Y), ValueError, "two classes"),
    ("clf unknown order", lambda: RNNImageClassifier(**TINY, order="diagonal").fit(X, Y),
     ValueError, "'order'"),
    ("clf unknown readout", lambda: RNNImageClassifier(**TINY, readout="first").fit(X, Y),
     ValueError, "'readout'"),
    ("clf patches without patch_size", lambda: RNNImageClassifier(
        **TINY, order="patches").fit(X, Y), ValueError, "needs patch_size"),
    ("clf patch_size that does not tile", lambda: RNNImageClassifier(
        **TINY, order="patches", patch_size=(4, 4)).fit(X, Y), ValueError, "does not tile"),
    ("clf patch_size 0", lambda: RNNImageClassifier(
        **TINY, order="patches", patch_size=(0, 2)).fit(X, Y), ValueError, "patch_size"),
    ("clf image_shape of the wrong size", lambda: RNNImageClassifier(
        **TINY, image_shape=(5, 5)).fit(X.reshape(12, -1), Y), ValueError, "needs 25"),
    ("clf negative image_shape", lambda: RNNImageClassifier(
        **TINY, image_shape=(-6, -6)).fit(X.reshape(12, -1), Y), ValueError, "image_shape"),
    ("clf embedding on floats", lambda: RNNImageClassifier(**TINY, embedding_dim=2).fit(X, Y),
     ValueError, "integer token ids"),
    ("clf negative token ids", lambda: RNNImageClassifier(**TINY, embedding_dim=2).fit(
        LEVELS - 2, Y), ValueError, "Token ids must be >= 0"),
    ("clf token id beyond n_tokens", lambda: RNNImageClassifier(
        **TINY, embedding_dim=2, n_tokens=2).fit(LEVELS, Y), ValueError, "n_tokens=2"),
    ("clf sample_weight length", lambda: RNNImageClassifier(**TINY).fit(
        X, Y, sample_weight=np.ones(3)), ValueError, "sample_weight"),
    ("clf negative sample_weight", lambda: RNNImageClassifier(**TINY).fit(
        X, Y, sample_weight=-np.ones(12)), ValueError, "Negative values.*sample_weight"),
    ("clf nan sample_weight", lambda: RNNImageClassifier(**TINY).fit(
        X, Y, sample_weight=np.full(12, np.nan)), ValueError, "sample_weight contains NaN"),
    ("clf partial_fit without classes", lambda: RNNImageClassifier(**TINY).partial_fit(X, Y),
     ValueError, "classes must be passed"),
    ("clf partial_fit label outside classes", lambda: RNNImageClassifier(**TINY).partial_fit(
        X, Y, classes=[0, 1]), ValueError, r"labels \[2\] that are not among the classes \[0, 1\]"),
    ("reg string y", lambda: RNNImageRegressor(**TINY).fit(X, np.array(["a"] * 12)),
     ValueError, "strings"),
    ("reg nan y", lambda: RNNImageRegressor(**TINY).fit(X, np.full(12, np.nan)),
     ValueError, "y contains NaN"),
    ("reg inf y", lambda: RNNImageRegressor(**TINY).fit(X, np.full(12, np.inf)),
     ValueError, "y contains infinity"),
    ("reg 3-d y", lambda: RNNImageRegressor(**TINY).fit(X, np.ones((12, 2, 2))),
     ValueError, r"shape \(n,\) or \(n, n_outputs\)"),
    ("reg mismatched lengths", lambda: RNNImageRegressor(**TINY).fit(X, np.ones(3)),
     ValueError, "different numbers of samples"),
    ("reg y None", lambda: RNNImageRegressor(**TINY).fit(X, None), ValueError, "requires y"),
    ("reg complex y", lambda: RNNImageRegressor(**TINY).fit(X, np.ones(12) * 1j),
     ValueError, "Complex"),
    ("reg unknown loss", lambda: RNNImageRegressor(**TINY, loss="l1").fit(X, Y),
     ValueError, "'loss'"),
    ("seg masks of the wrong shape", lambda: RNNSegmenter(**SEG_TINY).fit(X, MASKS[:, :3]),
     ValueError, r"one label mask per image.*\(12, 3, 6\)"),
    ("seg masks with a channel axis", lambda: RNNSegmenter(**SEG_TINY).fit(X, MASKS[..., None]),
     ValueError, "Drop the last axis"),
    ("seg float masks", lambda: RNNSegmenter(**SEG_TINY).fit(X, MASKS + 0.5),
     ValueError, "non-integer values"),
    ("seg nan masks", lambda: RNNSegmenter(**SEG_TINY).fit(X, np.where(MASKS > 0, np.nan, 0.0)),
     ValueError, "non-integer values"),
    ("seg string masks", lambda: RNNSegmenter(**SEG_TINY).fit(X, MASKS.astype(str)),
     ValueError, "integer class labels.*dtype <U"),
    ("seg object masks", lambda: RNNSegmenter(**SEG_TINY).fit(X, MASKS.astype(object)),
     ValueError, "dtype object"),
    ("seg complex masks", lambda: RNNSegmenter(**SEG_TINY).fit(X, MASKS * 1j),
     ValueError, "dtype complex"),
    ("seg negative labels", lambda: RNNSegmenter(**SEG_TINY).fit(X, MASKS - 1),
     ValueError, "negative labels"),
    ("seg a single class", lambda: RNNSegmenter(**SEG_TINY).fit(X, MASKS * 0),
     ValueError, "at least two classes"),
    ("seg masks None", lambda: RNNSegmenter(**SEG_TINY).fit(X, None), ValueError, "label masks"),
    ("seg flat rows", lambda: RNNSegmenter(**SEG_TINY).fit(X.reshape(12, -1), MASKS),
     ValueError, "expects a batch of images"),
    ("seg ignore_label string", lambda: RNNSegmenter(**SEG_TINY, ignore_label="x").fit(X, MASKS),
     ValueError, "ignore_label"),
    ("seg patch_size 0", lambda: RNNSegmenter(**{**SEG_TINY, "patch_size": 0}).fit(X, MASKS),
     ValueError, "patch_size"),
    ("seg patch_size of 3 entries", lambda: RNNSegmenter(
        **{**SEG_TINY, "patch_size": (1, 2, 3)}).fit(X, MASKS), ValueError, "patch_size"),
    ("seg partial_fit without classes", lambda: RNNSegmenter(**SEG_TINY).partial_fit(X, MASKS),
     ValueError, "classes must be passed"),
    ("its unknown order", lambda: ImageToSequence(order="spiral").fit(X), ValueError, "'order'"),
    ("its patches that do not tile", lambda: ImageToSequence(
        order="patches", patch_size=4).fit(X), ValueError, "does not tile"),
    ("its image_shape of one entry", lambda: ImageToSequence(image_shape=(5,)).fit(
        X.reshape(12, -1)), ValueError, "image_shape must be"),
    ("its negative scale", lambda: ImageToSequence(scale=-1).fit(X), ValueError, "'scale'"),
    ("its nan", lambda: ImageToSequence().fit(X * np.nan), ValueError, "NaN"),
    ("its complex", lambda: ImageToSequence().fit(X * 1j), ValueError, "complex"),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=[case[0] for case in FIT_CASES])
def test_bad_fit_input_is_refused(case):
    _, call, error, match = case
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the clear error alone, no numpy noise
        with pytest.raises(error, match=match):
            call()


# ------------------------------------------------------------ predict / score time
PREDICT_CASES = [
    ("clf unknown labels at score", "clf", lambda m: m.score(X, Y + 10),
     ValueError, r"labels \[10, 11, 12\] that are not among the classes"),
    ("clf images of another size", "clf", lambda m: m.predict(X[:, :4, :4]),
     ValueError, r"shape \(4, 4\) but this RNNImageClassifier was fitted on \(6, 6\)"),
    ("clf images with channels", "clf", lambda m: m.predict(np.stack([X, X], -1)),
     ValueError, r"\(6, 6, 2\)"),
    ("clf proba of another size", "clf", lambda m: m.predict_proba(X[:, :5]),
     ValueError, "fitted on"),
    ("clf empty", "clf", lambda m: m.predict(X[:0]), ValueError, "0 sample"),
    ("clf nan", "clf", lambda m: m.predict(np.where(X > 0.9, np.nan, X)), ValueError, "NaN"),
    ("clf one image without batch axis", "clf", lambda m: m.predict(X[0]),
     ValueError, "expecting 36 features"),
    ("clf None", "clf", lambda m: m.predict(None), TypeError, "array-like of images"),
    ("clf score with mismatched y", "clf", lambda m: m.score(X, Y[:3]),
     ValueError, "inconsistent numbers of samples"),
    ("reg images of another size", "reg", lambda m: m.predict(X[:, :5]), ValueError, "fitted on"),
    ("reg score with another output count", "reg", lambda m: m.score(X, np.ones((12, 2))),
     ValueError, "different number of output"),
    ("reg strings", "reg", lambda m: m.predict(X.astype(str)), ValueError, "strings"),
    ("seg other channel count", "seg", lambda m: m.predict(np.stack([X, X], -1)),
     ValueError, "2 channel"),
    ("seg unknown labels at score", "seg", lambda m: m.score(X, MASKS + 5),
     ValueError, "not among the classes"),
    ("seg masks of the wrong shape at score", "seg", lambda m: m.score(X, MASKS[:, :2]),
     ValueError, "one label mask per image"),
    ("seg sample_weight at score", "seg", lambda m: m.score(X, MASKS, np.ones(12)),
     ValueError, "sample_weight"),
    ("seg single flat image", "seg", lambda m: m.predict(X[0]), ValueError,
     "expects a batch of images"),
    ("its transform of another size", "its", lambda m: m.transform(X[:, :3]),
     ValueError, "fitted on"),
    ("its inverse of the wrong shape", "its", lambda m: m.inverse_transform(X[:, :3]),
     ValueError, "inverse_transform expects sequences"),
]


@pytest.mark.parametrize("case", PREDICT_CASES, ids=[case[0] for case in PREDICT_CASES])
def test_bad_predict_input_is_refused(fitted, case):
    _, key, call, error, match = case
    with pytest.raises(error, match=match):
        call(fitted[key])


@pytest.mark.parametrize(
    "make", [RNNImageClassifier, RNNImageRegressor, RNNSegmenter, ImageToSequence]
)
def test_predicting_before_fit_raises_not_fitted(make):
    estimator = make()
    method = estimator.transform if make is ImageToSequence else estimator.predict
    with pytest.raises(NotFittedError, match="not fitted yet"):
        method(X)


def test_saving_before_fit_raises_not_fitted(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        RNNImageClassifier().save(tmp_path / "model.skrnn")


# ------------------------------------------------------------ the generator, when present
GEN_CASES = [
    ("values outside the levels", lambda m: m.score_samples(LEVELS + 10),
     ValueError, "outside the levels"),
    ("non-level values", lambda m: m.score_samples(np.minimum(LEVELS + 0.5, 3)),
     ValueError, "not among the 4 levels"),
    ("n_samples 0", lambda m: m.sample(0), ValueError, "n_samples"),
    ("n_samples float", lambda m: m.sample(2.5), ValueError, "n_samples"),
    ("temperature 0", lambda m: m.sample(2, temperature=0), ValueError, "temperature"),
    ("unknown class", lambda m: m.sample(2, y=9), ValueError, "not among the classes"),
    ("images of another size", lambda m: m.score_samples(LEVELS[:, :3]), ValueError, "fitted on"),
]


@pytest.mark.parametrize("case", GEN_CASES, ids=[case[0] for case in GEN_CASES])
def test_bad_generator_input_is_refused(fitted, case):
    _, call, error, match = case
    with pytest.raises(error, match=match):
        call(fitted["gen"])


@pytest.mark.parametrize(
    "params, match",
    [({"n_levels": 1}, "n_levels"), ({"context_radius": -1}, "context_radius"),
     ({"embedding_dim": 0}, "embedding_dim"), ({"hidden_size": 0}, "hidden_size"),
     ({"orderings": 3}, "orderings"), ({"orderings": True}, "orderings=True is not valid"),
     ({"context_radius": True}, "takes numbers, not booleans")],
)
def test_bad_generator_parameter_is_refused(params, match):
    with pytest.raises(ValueError, match=match):
        RNNImageGenerator(**{**GEN_TINY, **params}).fit(LEVELS)


# ------------------------------------------------------------ public functions
FUNCTION_CASES = [
    ("mean_iou shapes", lambda: metrics.mean_iou(MASKS, MASKS[:, :2]), ValueError, "same shape"),
    ("mean_iou empty", lambda: metrics.mean_iou(MASKS[:0], MASKS[:0]),
     ValueError, "no pixels to score"),
    ("mean_iou empty labels", lambda: metrics.mean_iou(MASKS, MASKS, labels=[]),
     ValueError, "labels must be a non-empty"),
    ("iou_per_class 2-d labels", lambda: metrics.iou_per_class(MASKS, MASKS, labels=[[1]]),
     ValueError, "labels must be a non-empty 1-D"),
    ("pixel_accuracy shapes", lambda: metrics.pixel_accuracy(MASKS, MASKS[:1]),
     ValueError, "same shape"),
    ("pixel_accuracy all ignored", lambda: metrics.pixel_accuracy(
        MASKS * 0, MASKS * 0, ignore_label=0), ValueError, "every pixel is ignore_label=0"),
    ("get_scorer unknown", lambda: metrics.get_scorer("f1"), ValueError, "not a segmentation"),
    ("make_shapes n_samples 0", lambda: datasets.make_shapes(n_samples=0),
     ValueError, "n_samples must be a positive int"),
    ("make_shapes n_samples str", lambda: datasets.make_shapes(n_samples="10"),
     ValueError, "n_samples must be a positive int"),
    ("make_shapes tiny images", lambda: datasets.make_shapes(n_samples=2, image_size=2),
     ValueError, "image_size"),
    ("make_shapes float size", lambda: datasets.make_shapes(n_samples=2, image_size=8.5),
     ValueError, "image_size"),
    ("make_shapes negative noise", lambda: datasets.make_shapes(n_samples=2, noise=-1),
     ValueError, "noise"),
    ("make_shapes max_shapes 0", lambda: datasets.make_shapes(n_samples=2, max_shapes=0),
     ValueError, "max_shapes"),
    ("load_digits_images n_class 11", lambda: datasets.load_digits_images(n_class=11),
     ValueError, "n_class"),
    ("load_digits_images n_class 0", lambda: datasets.load_digits_images(n_class=0),
     ValueError, "n_class"),
    ("get_cell of an int", lambda: cells.get_cell(3), TypeError, "cell must be"),
    ("get_cell unknown", lambda: cells.get_cell("quantum"), ValueError, "Available cells"),
    ("register_cell empty name", lambda: cells.register_cell(""), ValueError, "non-empty"),
    ("register_cell not callable", lambda: cells.register_cell("x_bad", 3),
     TypeError, "must be callable"),
    ("register_cell taken name", lambda: cells.register_cell("gru", lambda *a: None),
     ValueError, "already registered"),
    ("load a missing file", lambda: skrnn.load("/nonexistent/model.skrnn"),
     FileNotFoundError, "model.skrnn"),
]


@pytest.mark.parametrize("case", FUNCTION_CASES, ids=[case[0] for case in FUNCTION_CASES])
def test_bad_function_argument_is_refused(case):
    _, call, error, match = case
    with pytest.raises(error, match=match):
        call()


def test_a_good_callback_list_is_accepted():
    """The callbacks check refuses junk only: a real skorch callback still trains."""
    clf = RNNImageClassifier(**TINY, callbacks=[("timer2", EpochTimer())]).fit(X, Y)
    assert clf.n_iter_ == 1
