"""GridSearchCV speed-up from n_jobs=2 over n_jobs=1: 4 candidates x 2 folds on the digits.

Each joblib worker process runs with its share of the cores (joblib limits the OpenMP threads
of its workers, and skrnn's default ``n_threads=None`` follows that limit), so two parallel
fits do not fight over two cores. With ``n_jobs=1`` torch runs each fit on every core instead.

Three speed-ups are printed: of the search itself (the 8 candidate-fold fits and their
scoring, the part that ``n_jobs`` spreads over processes) with the worker processes already
started, the same plus the start-up of fresh workers (Python, torch and sklearn imported
anew, and torch's one-off costs of a first fit; joblib reuses its workers, so a session pays
this once), and of the whole ``GridSearchCV.fit``,
which adds the refit of the best candidate on all the data -- a refit that always runs alone
in the calling process.

A second table explains the figure: for one fold of each candidate it times the fit alone
with torch on every core, alone on one thread, and as two one-thread copies running at once.
Two processes can at best beat one process on every core by ``2 * t(all cores) / t(two at
once)`` -- the ceiling of the search speed-up on this machine and this workload.

    python benchmarks/parallel_search.py [--max-epochs 30]

``--halving`` measures instead what successive halving saves: ``GridSearchCV`` at
``max_epochs=30`` against ``HalvingGridSearchCV(resource="max_epochs", max_resources=30,
factor=3)`` over 3 cells x 3 hidden sizes with 3 stratified folds on the digits, one process
each, side by side in one run: the wall time of the search with and without the refit of the
best setting, and the best cross-validated score (the halving search's from its last round) and
that refitted model's accuracy on 20 % of the digits held out from the search.

    python benchmarks/parallel_search.py --halving
"""

from __future__ import annotations

import argparse
import time

from joblib import Parallel, delayed
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skrnn import RNNImageClassifier
from skrnn.datasets import load_digits_images


def warm_up(X, y):
    """One tiny fit: imports skrnn and pays torch's one-off first-use costs in this process."""
    RNNImageClassifier(max_epochs=1, random_state=0).fit(X[:64], y[:64])


def start_workers(n_jobs, X, y):
    """Start joblib's reusable worker processes and warm each up; return the seconds taken."""
    start = time.perf_counter()
    Parallel(n_jobs=n_jobs)(delayed(warm_up)(X, y) for _ in range(n_jobs))
    return time.perf_counter() - start


def fit_seconds(params, X, y, n_threads=None):
    start = time.perf_counter()
    RNNImageClassifier(**params, n_threads=n_threads).fit(X, y)
    return time.perf_counter() - start


def ceiling_rows(grid, X, y, max_epochs):
    """Per candidate: fit alone on every core, alone on 1 thread, and two 1-thread copies."""
    rows = []
    for cell in grid["cell"]:
        for hidden_size in grid["hidden_size"]:
            params = dict(cell=cell, hidden_size=hidden_size, max_epochs=max_epochs, random_state=0)
            all_cores = fit_seconds(params, X, y)
            one_thread = fit_seconds(params, X, y, n_threads=1)
            start = time.perf_counter()
            Parallel(n_jobs=2)(delayed(fit_seconds)(params, X, y, 1) for _ in range(2))
            together = time.perf_counter() - start
            rows.append((f"{cell} {hidden_size}", all_cores, one_thread, together))
    return rows


def halving_table(max_epochs):
    """GridSearchCV against HalvingGridSearchCV over the epochs, side by side."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV, train_test_split

    X, y = load_digits_images(return_X_y=True)
    X_search, X_test, y_search, y_test = train_test_split(
        X, y, test_size=0.2, stratify=y, random_state=0
    )
    grid = {"cell": ["rnn", "lstm", "gru"], "hidden_size": [32, 64, 128]}
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    warm_up(X, y)
    searches = {
        f"GridSearchCV, max_epochs={max_epochs}": GridSearchCV(
            RNNImageClassifier(max_epochs=max_epochs, random_state=0), grid, cv=cv
        ),
        f"HalvingGridSearchCV, up to {max_epochs}": HalvingGridSearchCV(
            RNNImageClassifier(random_state=0),
            grid,
            resource="max_epochs",
            max_resources=max_epochs,
            factor=3,
            cv=cv,
        ),
    }
    rows = []
    for name, search in searches.items():
        start = time.perf_counter()
        search.fit(X_search, y_search)
        total = time.perf_counter() - start
        rows.append(
            (
                name,
                total - search.refit_time_,
                total,
                search.best_score_,
                search.score(X_test, y_test),
                search.best_params_,
            )
        )
        print(f"{name}: {total:.1f} s, best {search.best_params_}", flush=True)
    base_search, base_total = rows[0][1], rows[0][2]
    print(
        f"\n{'search':<32} {'search s':>9} {'+ refit s':>9} {'share':>6} {'best cv':>8} "
        f"{'held out':>8}  best"
    )
    for name, searching, total, best, held_out, params in rows:
        print(
            f"{name:<32} {searching:>9.1f} {total:>9.1f} {total / base_total:>6.2f} "
            f"{best:>8.4f} {held_out:>8.4f}  {params}"
        )
    print(f"(search alone: {rows[1][1] / base_search:.2f} of the grid's time)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--halving", action="store_true", help="halving against the grid")
    args = parser.parse_args()
    if args.halving:
        halving_table(args.max_epochs)
        return

    X, y = load_digits_images(return_X_y=True)
    grid = {"cell": ["gru", "lstm"], "hidden_size": [64, 128]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    warm_up(X, y)
    rows = {}
    for n_jobs in (1, 2):
        startup = start_workers(n_jobs, X, y) if n_jobs > 1 else 0.0
        search = GridSearchCV(
            RNNImageClassifier(max_epochs=args.max_epochs, random_state=0),
            grid,
            cv=cv,
            n_jobs=n_jobs,
        )
        start = time.perf_counter()
        search.fit(X, y)
        total = time.perf_counter() - start
        rows[n_jobs] = (startup, total - search.refit_time_, search.refit_time_, total)
        print(f"n_jobs={n_jobs}: {total:.1f} s, best {search.best_params_}", flush=True)

    print(
        f"{'n_jobs':>6} {'start-up s':>10} {'search s':>9} {'refit s':>8} {'total s':>8}  "
        f"{'speed-up: search':>16} {'+ start-up':>10} {'+ refit':>8}"
    )
    _, search_1, _, total_1 = rows[1]
    for n_jobs, (startup, searching, refit, total) in rows.items():
        print(
            f"{n_jobs:>6} {startup:>10.1f} {searching:>9.1f} {refit:>8.1f} {total:>8.1f}  "
            f"{search_1 / searching:>16.2f} {search_1 / (searching + startup):>10.2f} "
            f"{total_1 / (total + startup):>8.2f}"
        )

    half = X.shape[0] // 2
    rows = ceiling_rows(grid, X[:half], y[:half], max(1, args.max_epochs // 3))
    print(
        f"\n{'candidate':<10} {'all cores s':>11} {'1 thread s':>10} {'two at once s':>13}  "
        f"{'threads speed-up':>16} {'co-run slow-down':>16} {'ceiling':>7}"
    )
    for name, all_cores, one_thread, together in rows + [
        ("all", *(sum(row[i] for row in rows) for i in (1, 2, 3)))
    ]:
        print(
            f"{name:<10} {all_cores:>11.2f} {one_thread:>10.2f} {together:>13.2f}  "
            f"{one_thread / all_cores:>16.2f} {together / one_thread:>16.2f} "
            f"{2 * all_cores / together:>7.2f}"
        )


if __name__ == "__main__":
    main()
