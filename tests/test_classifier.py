import io
import pickle
from contextlib import redirect_stdout

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from skrnn import ImageToSequence, RNNImageClassifier


def test_learns_the_digits(digits_split, tiny):
    X, y, X_test, y_test = digits_split
    clf = RNNImageClassifier(**{**tiny, "max_epochs": 8}).fit(X, y)
    assert clf.score(X_test, y_test) > 0.8
    assert clf.n_iter_ == 8 and len(clf.history_) == 8
    assert clf.history_[-1]["train_loss"] < clf.history_[0]["train_loss"]


def test_predict_proba_rows_are_distributions_over_classes(digits, tiny):
    X, y = digits
    clf = RNNImageClassifier(**tiny).fit(X, y)
    proba = clf.predict_proba(X[:20])
    assert proba.shape == (20, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X[:20]))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X[:20])), proba, rtol=1e-6)


def test_string_labels_come_back_as_strings(digits, tiny):
    X, y = digits
    names = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
    clf = RNNImageClassifier(**tiny).fit(X, names[y])
    assert set(clf.predict(X)) <= set(names)
    assert clf.classes_.tolist() == sorted(names.tolist())


def test_binary_problem(digits, tiny):
    X, y = digits
    keep = y < 2
    clf = RNNImageClassifier(**tiny).fit(X[keep], np.where(y[keep] == 1, "yes", "no"))
    assert clf.predict_proba(X[keep]).shape == (keep.sum(), 2)
    assert clf.score(X[keep], np.where(y[keep] == 1, "yes", "no")) > 0.9


@pytest.mark.parametrize("layout", ["flat", "channels", "sequences"])
def test_accepts_every_image_layout(digits, tiny, layout):
    X, y = digits
    if layout == "flat":
        clf = RNNImageClassifier(image_shape=(8, 8), **tiny)
        data = X.reshape(len(X), -1)
    elif layout == "channels":
        clf, data = RNNImageClassifier(**tiny), X[..., None]
    else:
        clf, data = RNNImageClassifier(**tiny), ImageToSequence(order="columns").fit_transform(X)
    assert clf.fit(data, y).score(data, y) > 0.5


@pytest.mark.parametrize("order", ["columns", "pixels", "patches"])
def test_every_order_trains(digits, tiny, order):
    X, y = digits
    clf = RNNImageClassifier(order=order, patch_size=(2, 2), **tiny).fit(X[:200], y[:200])
    assert clf.predict(X[:5]).shape == (5,)


def test_uint8_images_train_like_floats(digits, tiny):
    X, y = digits
    as_uint8 = (X * 15).astype(np.uint8)
    a = RNNImageClassifier(**tiny).fit(X * 15, y).predict_proba(X[:10] * 15)
    b = RNNImageClassifier(**tiny).fit(as_uint8, y).predict_proba(as_uint8[:10])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_pipeline_with_image_to_sequence_on_flat_rows(digits, tiny):
    X, y = digits
    pipe = make_pipeline(
        ImageToSequence(image_shape=(8, 8), order="columns"), RNNImageClassifier(**tiny)
    )
    pipe.fit(X.reshape(len(X), -1), y)
    assert pipe.score(X.reshape(len(X), -1), y) > 0.5


def test_grid_search_over_cells_in_parallel_picks_best(digits):
    X, y = digits
    search = GridSearchCV(
        RNNImageClassifier(hidden_size=16, max_epochs=3, batch_size=32, lr=1e-2, random_state=0),
        {"cell": ["rnn", "lstm", "gru"]},
        cv=2,
        n_jobs=2,
    )
    search.fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["cell"] == ["rnn", "lstm", "gru"][int(np.argmax(scores))]
    assert search.best_estimator_.cell == search.best_params_["cell"]


def test_cross_val_score(digits, tiny):
    X, y = digits
    scores = cross_val_score(RNNImageClassifier(**tiny), X, y, cv=StratifiedKFold(3))
    assert scores.shape == (3,) and scores.min() > 0.4


def test_set_params_cell_after_fit_refits_with_the_new_cell(digits, tiny):
    X, y = digits
    clf = RNNImageClassifier(cell="gru", **tiny).fit(X, y)
    clf.set_params(cell="lstm").fit(X, y)
    assert type(clf.net_.module_.encoder.layers.layer).__name__ == "LSTM"


def test_refits_with_the_same_random_state_are_identical(digits, tiny):
    X, y = digits
    a = RNNImageClassifier(**tiny).fit(X, y).predict_proba(X)
    b = RNNImageClassifier(**tiny).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = RNNImageClassifier(**{**tiny, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_fit_does_not_touch_the_global_torch_seed(digits, tiny):
    import torch

    X, y = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    RNNImageClassifier(**tiny).fit(X[:100], y[:100])
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_clone_pickle_and_joblib_round_trips_keep_predictions(digits, tiny, tmp_path):
    X, y = digits
    clf = RNNImageClassifier(**tiny).fit(X, y)
    expected = clf.predict_proba(X)
    assert clone(clf).get_params() == clf.get_params()
    assert not hasattr(clone(clf), "net_")
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), expected)
    joblib.dump(clf, tmp_path / "clf.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "clf.joblib").predict_proba(X), expected)


def test_sample_weight_zero_is_like_leaving_the_samples_out(digits, tiny):
    X, y = digits
    keep = y != 3
    weights = keep.astype(float)
    clf = RNNImageClassifier(**{**tiny, "max_epochs": 6}).fit(X, y, sample_weight=weights)
    # Class 3 never contributes to the loss, so it is (almost) never predicted.
    assert (clf.predict(X) == 3).mean() < 0.02


def test_class_weight_balanced_lifts_a_rare_class(digits, tiny):
    X, y = digits
    rare = np.concatenate([np.flatnonzero(y != 1), np.flatnonzero(y == 1)[:4]])
    X_rare, y_rare = X[rare], y[rare]
    params = {**tiny, "max_epochs": 6}
    plain = RNNImageClassifier(**params).fit(X_rare, y_rare)
    balanced = RNNImageClassifier(class_weight="balanced", **params).fit(X_rare, y_rare)
    ones = X[y == 1]
    assert (balanced.predict(ones) == 1).mean() > (plain.predict(ones) == 1).mean()


def test_early_stopping_holds_out_data_and_restores_the_best_epoch(digits):
    X, y = digits
    params = dict(
        hidden_size=16,
        lr=3e-2,
        lr_schedule="constant",
        early_stopping=True,
        n_iter_no_change=2,
        random_state=0,
    )
    clf = RNNImageClassifier(max_epochs=40, **params).fit(X, y)
    assert clf.n_iter_ < 40
    assert all("valid_acc" in epoch and "valid_loss" in epoch for epoch in clf.history_)
    best = int(np.argmin([epoch["valid_loss"] for epoch in clf.history_])) + 1
    assert best < clf.n_iter_  # it went on for epochs without improvement, then stopped
    # Training is deterministic, so a run that ends at the best epoch has the weights that
    # early stopping must have restored.
    at_best = RNNImageClassifier(max_epochs=best, **params).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), at_best.predict_proba(X))


def test_warm_start_continues_training(digits, tiny):
    X, y = digits
    clf = RNNImageClassifier(warm_start=True, **tiny).fit(X, y)
    first = clf.net_.module_.head[-1].weight.detach().clone()
    clf.fit(X, y)
    assert len(clf.net_.history) == 2 * tiny["max_epochs"]
    assert not np.array_equal(
        first.cpu().numpy(), clf.net_.module_.head[-1].weight.detach().cpu().numpy()
    )


def test_partial_fit_trains_one_epoch_per_call(digits, tiny):
    X, y = digits
    clf = RNNImageClassifier(**tiny)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X[:50], y[:50])
    clf.partial_fit(X[:200], y[:200], classes=np.arange(10))
    clf.partial_fit(X[200:], y[200:])
    assert clf.n_iter_ == 2
    assert clf.classes_.tolist() == list(range(10))
    with pytest.raises(ValueError, match=r"labels \[42\]"):
        clf.partial_fit(X[:2], [42, 1])


def test_verbose_prints_the_epoch_table_and_quiet_prints_nothing(digits, tiny, capsys):
    X, y = digits
    RNNImageClassifier(verbose=1, early_stopping=True, **tiny).fit(X, y)
    out = capsys.readouterr()
    for column in ("epoch", "train_loss", "valid_loss", "valid_acc"):
        assert column in out.out
    assert "it/s" in out.err  # the progress bar
    RNNImageClassifier(verbose=0, early_stopping=True, **tiny).fit(X, y)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_predict_before_fit_raises_not_fitted(digits):
    with pytest.raises(NotFittedError):
        RNNImageClassifier().predict(digits[0])


@pytest.mark.parametrize(
    "X_bad, match",
    [
        (np.zeros((10, 2, 3, 4, 5)), "5 dimension"),
        (np.full((10, 8, 8), np.inf), "infinity"),
        (np.zeros((0, 8, 8)), "0 sample"),
        (np.array([["a", "b"]] * 10), "strings"),
        (np.zeros((10, 8, 8), dtype=complex), "[Cc]omplex"),
    ],
)
def test_bad_images_are_clear_errors(X_bad, match):
    with pytest.raises(ValueError, match=match):
        RNNImageClassifier().fit(X_bad, np.arange(len(X_bad)) % 2)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hidden_size": 0}, "hidden_size"),
        ({"hidden_size": (8, 0)}, "hidden_size must be"),
        ({"hidden_size": (8, 4), "num_layers": 2}, "leave num_layers at 1"),
        ({"dropout": 1.5}, "dropout"),
        ({"lr": -1}, "lr"),
        ({"order": "spiral"}, "order"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"readout": "first"}, "readout"),
        ({"class_weight": {"cat": 2.0}}, "class_weight names classes"),
    ],
)
def test_bad_parameters_are_clear_errors(digits, params, match):
    X, y = digits
    with pytest.raises(ValueError, match=match):
        RNNImageClassifier(**params).fit(X[:20], y[:20])


def test_label_and_sample_problems_are_clear_errors(digits, tiny):
    X, y = digits
    with pytest.raises(ValueError, match="at least two classes"):
        RNNImageClassifier().fit(X[:10], np.zeros(10))
    with pytest.raises(ValueError, match="X has 10, y has 9"):
        RNNImageClassifier().fit(X[:10], y[:9])
    with pytest.raises(ValueError, match="[Uu]nknown label type"):
        RNNImageClassifier().fit(X[:10], np.linspace(0, 1, 10))


def test_images_of_another_shape_at_predict_time(digits, tiny):
    X, y = digits
    clf = RNNImageClassifier(**tiny).fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"shape \(7, 7\) but this RNNImageClassifier was fitted "
        r"on \(8, 8\)",
    ):
        clf.predict(np.zeros((3, 7, 7)))
    with pytest.raises(ValueError, match="X has 49 features"):
        RNNImageClassifier(image_shape=(8, 8), **tiny).fit(X.reshape(len(X), -1), y).predict(
            np.zeros((3, 49))
        )


def test_predictions_do_not_depend_on_the_inference_batch_size(digits, tiny, monkeypatch):
    X, y = digits
    clf = RNNImageClassifier(**tiny).fit(X, y)
    in_one_batch = clf.predict_proba(X)
    monkeypatch.setattr(clf, "_inference_batch_size", lambda *size: 7)
    np.testing.assert_allclose(clf.predict_proba(X), in_one_batch, rtol=1e-5, atol=1e-6)


def test_quiet_fit_prints_nothing_even_with_stdout_captured(digits, tiny):
    X, y = digits
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        RNNImageClassifier(**tiny).fit(X[:100], y[:100])
    assert buffer.getvalue() == ""
