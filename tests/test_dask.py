"""Hyper-parameter searches run on a Dask cluster through joblib, as on one machine."""

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")

import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from skrnn import RNNImageClassifier  # noqa: E402


def search(X, y):
    clf = RNNImageClassifier(hidden_size=4, max_epochs=2, batch_size=32, n_threads=1)
    return GridSearchCV(
        clf.set_params(random_state=0),
        {"cell": ["rnn", "lstm", "gru"]},
        cv=StratifiedKFold(2, shuffle=True, random_state=0),
    )


def test_grid_search_on_a_dask_cluster_matches_the_local_run(digits):
    X, y = digits[0][:120], digits[1][:120]
    local = search(X, y).fit(X, y)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,  # logging.ERROR
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
            on_cluster = search(X, y).fit(X, y)
        # The fits really ran as tasks in the worker processes.
        assert len(tasks.data) >= 1
        assert {task["worker"] for task in tasks.data} <= set(client.scheduler_info()["workers"])
    np.testing.assert_array_equal(
        on_cluster.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert on_cluster.best_params_ == local.best_params_
