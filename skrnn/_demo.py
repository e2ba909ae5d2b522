"""The main job: compare recurrent cells on the bundled digits, the scikit-learn way."""

from __future__ import annotations

import time

from sklearn.model_selection import ParameterGrid, StratifiedKFold, cross_validate, train_test_split

from ._classifier import RNNImageClassifier
from ._utils import allowed_cpu_count
from .datasets import load_digits_images


def run_demo(output="skrnn_demo.png", quiet=False, n_jobs=None, max_epochs=25, random_state=0):
    """Grid-search the cell type with cross-validation on the digits and report the best.

    Returns
    -------
    results : dict
        ``cv`` (per-cell mean accuracy and fit time), ``best_cell``, ``test_accuracy``,
        ``figure`` (the saved path, or None without matplotlib).
    """
    from tqdm.auto import tqdm

    X, y = load_digits_images(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=random_state
    )
    n_jobs = n_jobs or min(3, allowed_cpu_count())
    base = RNNImageClassifier(max_epochs=max_epochs, random_state=random_state)
    grid = list(ParameterGrid({"cell": ["rnn", "lstm", "gru"]}))
    cv = StratifiedKFold(3, shuffle=True, random_state=random_state)
    if not quiet:
        print(f"Digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels.")
        print(f"Grid search over cell with 3-fold cross-validation ({n_jobs} parallel fits).")
    rows = []
    for params in tqdm(grid, desc="grid search", unit="cell", disable=quiet):
        scores = cross_validate(base.set_params(**params), X_train, y_train, cv=cv, n_jobs=n_jobs)
        rows.append(
            (
                params["cell"],
                scores["test_score"].mean(),
                scores["test_score"].std(),
                scores["fit_time"].mean(),
            )
        )
    best_cell = max(rows, key=lambda row: row[1])[0]

    print(f"\n{'cell':<6} {'mean CV accuracy':>17} {'std':>7} {'fit time (s)':>13}")
    for cell, mean, std, fit_time in rows:
        marker = "  <- best" if cell == best_cell else ""
        print(f"{cell:<6} {mean:>17.4f} {std:>7.4f} {fit_time:>13.1f}{marker}")

    start = time.perf_counter()
    best = RNNImageClassifier(
        cell=best_cell, max_epochs=max_epochs, random_state=random_state, verbose=0 if quiet else 1
    )
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
        "cv": rows,
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
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return str(output)


__all__ = ["run_demo"]
