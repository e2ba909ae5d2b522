"""Data sets that ship with skrnn or that it makes: nothing is downloaded."""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch


def load_digits_images(*, n_class: int = 10, return_X_y: bool = False):
    """scikit-learn's bundled handwritten digits as ``(n, 8, 8)`` images.

    The pixel values are the original 0-16 ink counts as float64, so the images keep their 17
    discrete levels.

    Parameters
    ----------
    n_class : int, default=10
        Number of classes to return (digits ``0`` to ``n_class - 1``).
    return_X_y : bool, default=False
        Return ``(images, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch
        ``images`` (and its alias ``data``) of shape (n, 8, 8), ``target`` (n,),
        ``target_names``, ``DESCR``. Or ``(images, target)`` with ``return_X_y=True``.

    Examples
    --------
    >>> from skrnn.datasets import load_digits_images
    >>> X, y = load_digits_images(return_X_y=True)
    >>> X.shape, y.shape
    ((1797, 8, 8), (1797,))
    """
    from sklearn.datasets import load_digits

    digits = load_digits(n_class=n_class)
    images = digits.images.astype(np.float64)
    if return_X_y:
        return images, digits.target
    return Bunch(
        data=images,
        images=images,
        target=digits.target,
        target_names=digits.target_names,
        DESCR=digits.DESCR,
    )
