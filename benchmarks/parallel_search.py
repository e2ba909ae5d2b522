"""GridSearchCV speed-up from n_jobs=2 over n_jobs=1: 4 candidates x 2 folds on the digits.

Each joblib worker process runs with its share of the cores (joblib limits the OpenMP threads
of its workers), so two parallel fits do not fight over two cores.

    python benchmarks/parallel_search.py
"""

from __future__ import annotations

import time

from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skrnn import RNNImageClassifier
from skrnn.datasets import load_digits_images


def main():
    X, y = load_digits_images(return_X_y=True)
    grid = {"cell": ["gru", "lstm"], "hidden_size": [64, 128]}
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    timings = {}
    for n_jobs in (1, 2):
        search = GridSearchCV(
            RNNImageClassifier(max_epochs=10, random_state=0), grid, cv=cv, n_jobs=n_jobs
        )
        start = time.perf_counter()
        search.fit(X, y)
        timings[n_jobs] = time.perf_counter() - start
        print(f"n_jobs={n_jobs}: {timings[n_jobs]:.1f} s, best {search.best_params_}", flush=True)
    print(f"{'n_jobs':>6} {'time s':>8} {'speed-up':>9}")
    for n_jobs, seconds in timings.items():
        print(f"{n_jobs:>6} {seconds:>8.1f} {timings[1] / seconds:>9.2f}")


if __name__ == "__main__":
    main()
