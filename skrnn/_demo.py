"""The main job: compare recurrent cells on the bundled digits, the scikit-learn way."""

from __future__ import annotations

import time
from pathlib import Path

from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, train_test_split

from ._classifier import RNNImageClassifier
from ._search import best_index, cell_grid, format_results, grid_search, search_results
from ._utils import allowed_cpu_count, open_atomically
from .datasets import load_digits_images

CELLS = ["rnn", "lstm", "gru"]


def run_demo(output="skrnn_demo.png", quiet=False, n_jobs=None, max_epochs=25, random_state=0):
    """Grid-search the cell type with cross-validation on the digits and report the best.

    One grid search runs every cell on every fold in parallel; the best cell is then refitted
    on all training images and scored on held-out ones.

    Parameters
    ----------
    output : str or path, default="skrnn_demo.png"
        Where to save the figure of the confusion matrix and the training curve.
    quiet : bool, default=False
        Print only the results, without the progress of the search and the refit.
    n_jobs : int or None, default=None
        Parallel fits; None uses every core this process may use, up to one per fit.
    max_epochs : int, default=25
        Epochs per fit.
    random_state : int, default=0
        Seeds the split, the folds and the networks.

    Returns
    -------
    results : dict
        ``cv`` (one dict per cell: ``params``, ``mean_score``, ``std_score``,
        ``mean_fit_time``, ``fold_scores``, ``rank``), ``best_cell``, ``test_accuracy``,
        ``figure`` (the saved path, or None without matplotlib).
    """
    X, y = load_digits_images(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    cv = StratifiedKFold(3, shuffle=True, random_state=random_state)
    n_jobs = n_jobs or min(len(CELLS) * cv.get_n_splits(), allowed_cpu_count())
    base = RNNImageClassifier(max_epochs=max_epochs, random_state=random_state)
    if not quiet:
        print(f"Digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels.")
        print(f"Grid search over cell with 3-fold cross-validation ({n_jobs} parallel fits).")
    search = grid_search(base, cell_grid(CELLS), cv=cv, n_jobs=n_jobs, verbose=0 if quiet else 1)
    search.fit(X_train, y_train)
    print("\n" + format_results(search, score_name="CV accuracy"))
    best_cell = search.cv_results_["params"][best_index(search)]["cell"]

    start = time.perf_counter()
    best = clone(base).set_params(cell=best_cell, verbose=0 if quiet else 1)
    best.fit(X_train, y_train)
    test_accuracy = best.score(X_test, y_test)
    print(
        f"\nBest cell: {best_cell}. Refitted on all training images in "
        f"{time.perf_counter() - start:.1f} s; held-out test accuracy: {test_accuracy:.4f}"
    )
    figure = _save_figure(best, X_test, y_test, output)
    if figure:
        print(f"Figure (confusion matrix and training curve) saved to {figure}")
    return {
        "cv": search_results(search),
        "best_cell": best_cell,
        "test_accuracy": test_accuracy,
        "figure": figure,
    }


def _save_figure(estimator, X_test, y_test, output):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed, so no figure was drawn (pip install skrnn[plot]).")
        return None
    from sklearn.metrics import ConfusionMatrixDisplay

    from .plotting import TrainingCurveDisplay

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    ConfusionMatrixDisplay.from_predictions(
        y_test, estimator.predict(X_test), ax=left, colorbar=False
    )
    left.set_title(f"Test confusion matrix (cell={estimator.cell!r})")
    TrainingCurveDisplay.from_estimator(estimator, ax=right)
    fig.tight_layout()
    with open_atomically(output, "wb") as file:  # whole or not at all
        fig.savefig(file, format=Path(output).suffix[1:].lower() or "png", dpi=100)
    plt.close(fig)
    return str(output)


__all__ = ["run_demo"]
