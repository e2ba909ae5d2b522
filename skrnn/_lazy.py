"""Prediction on a ``dask.array`` of images: a lazy ``dask.array``, computed chunk by chunk.

The prediction methods of the estimators are wrapped by :func:`dask_aware`: given a dask
array they return a dask array whose chunks are the input's chunks of images, each predicted
by the ordinary method where the chunk lives (a worker of a Dask cluster). The fitted
estimator enters the task graph once, as a single key that every chunk depends on, so a
cluster ships it once to each worker that needs it, not with every chunk.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.utils.validation import check_is_fitted


def is_dask_array(X) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (without importing dask)."""
    return type(X).__module__.startswith("dask.array") and hasattr(X, "map_blocks")


def _predict_chunk(chunk, estimator, method: str):
    return getattr(estimator, method)(np.asarray(chunk))


def dask_aware(outputs):
    """Decorator: a prediction method that, on a dask array, returns a lazy dask array.

    An unfitted estimator raises sklearn's ``NotFittedError`` at once, as on an array.
    ``outputs(estimator, X)`` gives ``(shape of one image's output, dtype)``: ``()`` and the
    classes' dtype for labels, ``(n_classes,)`` and float32 for probabilities, ``(H, W)``
    for a mask.
    """

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, X, *args, **kwargs):
            if not is_dask_array(X):
                return method(self, X, *args, **kwargs)
            # Before ``outputs``, which reads fitted attributes: an unfitted estimator says so.
            check_is_fitted(self, "net_")
            return _lazy(self, method.__name__, X, outputs(self, X), args, kwargs)

        return wrapper

    return decorate


def _lazy(estimator, name: str, X, output: tuple, args, kwargs):
    import dask
    import dask.array as da

    if args or kwargs:
        raise TypeError(f"{name} on a dask array takes the images alone.")
    if X.ndim < 2:
        raise ValueError(
            f"X is a dask array of shape {X.shape}; {name} expects a batch of images or flat "
            "rows, with the samples along the first axis."
        )
    if any(np.isnan(size) for size in X.shape[1:]):
        raise ValueError(
            "X is a dask array whose image sizes are unknown (nan in its shape); call "
            "X.compute_chunk_sizes() first."
        )
    tail, dtype = output
    # Whole images in every chunk: the samples are split, never an image.
    X = X.rechunk({axis: -1 for axis in range(1, X.ndim)})
    model = dask.delayed(estimator, pure=True, traverse=False)
    chunks = (X.chunks[0],) + tuple((int(size),) for size in tail)
    extra = X.ndim - 1 - len(tail)  # axes of an image that its output drops (or gains)
    return da.map_blocks(
        _predict_chunk,
        X,
        model,
        name,
        dtype=dtype,
        chunks=chunks,
        drop_axis=list(range(1 + len(tail), X.ndim)) if extra > 0 else [],
        new_axis=list(range(X.ndim, 1 + len(tail))) if extra < 0 else None,
        meta=np.empty((0,) * (1 + len(tail)), dtype=dtype),
    )
