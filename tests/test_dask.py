"""Dask: searches on a cluster through joblib, and lazy predictions on dask arrays."""

import contextlib

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


@contextlib.contextmanager
def local_cluster():
    """A client of a cluster of two worker processes on this machine, one thread each."""
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
        yield client


def test_grid_search_on_a_dask_cluster_matches_the_local_run(digits):
    X, y = digits[0][:120], digits[1][:120]
    local = search(X, y).fit(X, y)
    with local_cluster() as client:
        with distributed.get_task_stream(client) as tasks, joblib.parallel_backend("dask"):
            on_cluster = search(X, y).fit(X, y)
        # The fits really ran as tasks in the worker processes.
        assert len(tasks.data) >= 1
        assert {task["worker"] for task in tasks.data} <= set(client.scheduler_info()["workers"])
    np.testing.assert_array_equal(
        on_cluster.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"]
    )
    assert on_cluster.best_params_ == local.best_params_


da = pytest.importorskip("dask.array")


def _keys_holding(graph, obj) -> int:
    """How many keys of a task graph hold ``obj`` itself (not a task that uses it)."""
    return sum(
        1 for value in dict(graph).values() if value is obj or getattr(value, "value", None) is obj
    )


@pytest.fixture(scope="module")
def fitted():
    from skrnn import RNNImageRegressor, RNNSegmenter
    from skrnn.datasets import load_digits_images, make_shapes

    X, y = load_digits_images(return_X_y=True)
    small = {"hidden_size": 8, "max_epochs": 2, "random_state": 0, "n_threads": 1}
    shapes, masks = make_shapes(n_samples=40, image_size=12, random_state=0)
    return {
        "X": X,
        "shapes": shapes,
        "classifier": RNNImageClassifier(**small).fit(X[:200], y[:200]),
        "regressor": RNNImageRegressor(**small).fit(X[:200], y[:200].astype(float)),
        "segmenter": RNNSegmenter(**small).fit(shapes, masks),
    }


def test_prediction_on_a_dask_array_is_lazy_and_ships_the_model_once(fitted, batch_tolerance):
    clf, X = fitted["classifier"], fitted["X"]
    lazy = clf.predict_proba(da.from_array(X, chunks=(300, 8, 8)))
    assert isinstance(lazy, da.Array)
    assert lazy.shape == (len(X), 10) and lazy.chunks[0] == (300,) * 5 + (297,)
    # One key of the graph holds the model; every chunk's task depends on it.
    assert _keys_holding(lazy.__dask_graph__(), clf) == 1
    np.testing.assert_allclose(lazy.compute(), clf.predict_proba(X), **batch_tolerance)
    labels = clf.predict(da.from_array(X, chunks=(300, 4, 4)))  # chunks split inside images
    assert labels.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(labels.compute(), clf.predict(X))


def test_cluster_predictions_equal_the_in_memory_ones(fitted, batch_tolerance):
    X, shapes = fitted["X"], fitted["shapes"]
    clf, reg, seg = fitted["classifier"], fitted["regressor"], fitted["segmenter"]
    images, photos = da.from_array(X, chunks=(400, 8, 8)), da.from_array(shapes, chunks=10)
    with local_cluster() as client:
        with distributed.get_task_stream(client) as tasks:
            proba, values, masks, mask_proba = client.compute(
                [
                    clf.predict_proba(images),
                    reg.predict(images),
                    seg.predict(photos),
                    seg.predict_proba(photos),
                ],
                sync=True,
            )
        assert len({task["worker"] for task in tasks.data}) == 2  # both workers predicted
    np.testing.assert_allclose(proba, clf.predict_proba(X), **batch_tolerance)
    np.testing.assert_allclose(values, reg.predict(X), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(masks, seg.predict(shapes))
    np.testing.assert_allclose(mask_proba, seg.predict_proba(shapes), **batch_tolerance)


def test_a_dask_array_of_unknown_size_gets_a_clear_error(fitted):
    X = da.from_array(fitted["X"], chunks=(300, 8, 8))
    unknown = X[X[:, 0, 0] >= 0]  # a selection: the number of images is unknown, not their size
    assert fitted["classifier"].predict(unknown).compute().shape == (len(fitted["X"]),)
    with pytest.raises(ValueError, match="one image's output|samples along"):
        fitted["classifier"].predict(da.ones(5, chunks=5))


def _lazy_methods():
    """Every estimator's methods that take a dask array: those :func:`dask_aware` wraps."""
    import skrnn
    from skrnn._lazy import dask_aware

    wrapper = dask_aware(lambda self, X: ((), float))(lambda self, X: X).__code__
    for name in skrnn.__all__:
        estimator = getattr(skrnn, name)
        if isinstance(estimator, type):
            for method in dir(estimator):
                if getattr(getattr(estimator, method), "__code__", None) is wrapper:
                    yield pytest.param(estimator, method, id=f"{name}.{method}")


LAZY_METHODS = list(_lazy_methods())


def test_every_estimator_predicts_lazily():
    names = {param.id for param in LAZY_METHODS}
    assert {"RNNImageClassifier.predict_proba", "RNNImageRegressor.predict"} <= names
    assert {"RNNSegmenter.predict", "RNNSequenceRecognizer.predict"} <= names


@pytest.mark.parametrize("estimator, method", LAZY_METHODS)
def test_an_unfitted_estimator_says_so_on_a_dask_array(estimator, method):
    from sklearn.exceptions import NotFittedError

    images = np.zeros((4, 8, 8), dtype=np.float32)
    with pytest.raises(NotFittedError) as in_memory:
        getattr(estimator(), method)(images)
    with pytest.raises(NotFittedError) as lazy:
        getattr(estimator(), method)(da.from_array(images, chunks=2))
    assert str(lazy.value) == str(in_memory.value)
