"""Searches that spend less: scikit-learn's successive halving with the epochs as its resource,
for every estimator, and ``skrnn cv --halving``."""

import json

import pytest
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingGridSearchCV, HalvingRandomSearchCV, KFold

from skrnn import (
    RNNImageClassifier,
    RNNImageGenerator,
    RNNImageRegressor,
    RNNSegmenter,
    RNNSequenceRecognizer,
)
from skrnn._cli import main
from skrnn._search import halving_search
from skrnn.datasets import load_digits_images, make_digit_strings, make_shapes

TINY = dict(hidden_size=4, batch_size=32, n_threads=1, random_state=0)


def _data(kind):
    X, y = load_digits_images(return_X_y=True)
    if kind == "classifier":
        return RNNImageClassifier(**TINY), X[:120], y[:120]
    if kind == "regressor":
        return RNNImageRegressor(**TINY), X[:120], y[:120].astype(float)
    if kind == "generator":
        return RNNImageGenerator(**TINY, embedding_dim=4), X[:60], None
    if kind == "segmenter":
        images, masks = make_shapes(n_samples=24, image_size=12, random_state=0)
        estimator = RNNSegmenter(**{**TINY, "batch_size": 8}, num_layers=1, conv=(4,), head=())
        return estimator, images, masks
    lines, labels = make_digit_strings(n_samples=48, max_length=3, random_state=0)
    return RNNSequenceRecognizer(**TINY, conv=(4,)), lines, labels


@pytest.mark.parametrize(
    "kind", ["classifier", "regressor", "generator", "segmenter", "recognizer"]
)
def test_halving_over_the_epochs_works_with_every_estimator(kind):
    estimator, X, y = _data(kind)
    search = HalvingGridSearchCV(
        estimator,
        {"lr": [1e-3, 3e-3, 1e-2]},
        resource="max_epochs",
        max_resources=3,
        factor=3,
        cv=KFold(2, shuffle=True, random_state=0),
        error_score="raise",
    )
    search.fit(X, y)
    # Three candidates with 1 epoch, the best with 3, then refitted with 3.
    assert search.n_resources_ == [1, 3]
    assert list(search.cv_results_["param_max_epochs"]) == [1, 1, 1, 3]
    assert search.best_params_["max_epochs"] == 3
    assert search.best_estimator_.n_iter_ == 3


def test_a_halving_random_search_over_cells():
    X, y = load_digits_images(return_X_y=True)
    search = HalvingRandomSearchCV(
        RNNImageClassifier(**TINY),
        {"cell": ["rnn", "lstm", "gru"], "hidden_size": [4, 8]},
        n_candidates=4,
        resource="max_epochs",
        max_resources=4,
        factor=2,
        cv=2,
        random_state=0,
        error_score="raise",
    ).fit(X[:120], y[:120])
    assert search.n_resources_ == [1, 2, 4]
    assert search.n_candidates_ == [4, 2, 1]


def test_halving_search_chooses_the_epochs_itself():
    with pytest.raises(ValueError, match="chooses max_epochs itself"):
        halving_search(RNNImageClassifier(), {"max_epochs": [3, 9]}, cv=2, max_epochs=9)


def test_cv_halving_trains_the_best_cells_longer(digits_npz, tmp_path, capsys):
    report = tmp_path / "cv.json"
    argv = ["cv", str(digits_npz), "--cells", "rnn", "lstm", "gru", "--folds", "2", "--halving"]
    argv += ["--param", "hidden_size=4", "--param", "max_epochs=3", "--param", "batch_size=64"]
    argv += ["--json", str(report)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Successive halving over 3 candidates" in out
    results = json.loads(report.read_text())
    epochs = [row["params"]["max_epochs"] for row in results["results"]]
    assert epochs == [1, 1, 1, 3]  # every cell for one epoch, the best of them for three
    assert results["best"]["params"]["max_epochs"] == 3
    [best_line] = [line for line in out.splitlines() if line.endswith("<- best")]
    assert best_line.split()[1] == "3"  # the table lists the best at its 3 epochs


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--param", "max_epochs=3,9"], "give max_epochs one value"),
        (["--param", "max_epochs=auto"], "positive whole number of epochs"),
        (["--factor", "1"], "at least 2"),
        (["--factor", "2", "--no-halving"], "--factor is a setting of --halving"),
    ],
)
def test_cv_halving_argument_errors_exit_2_with_one_line(argv, message, digits_npz, capsys):
    code = None
    try:
        halving = [] if "--no-halving" in argv else ["--halving"]
        argv = [arg for arg in argv if arg != "--no-halving"]
        code = main(["cv", str(digits_npz), *halving, *argv])
    except SystemExit as exit_info:  # argparse's own errors
        code = exit_info.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
