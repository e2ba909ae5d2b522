"""Groups of images (drives, writers, patients, sessions) and folds that hold whole groups out.

Frames of one drive or lines of one writer look alike: a fold that trains on some of them and
scores on their neighbours measures how well the model recalls that drive, not how it does on a
new one. ``skrnn cv --groups`` and the benchmarks that choose defaults read each image's group
here and split with scikit-learn's :class:`~sklearn.model_selection.GroupKFold`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

__all__ = ["describe_groups", "group_folds", "groups_from_names"]

# Past this many groups, describe_groups lists the sizes only.
_LISTED_GROUPS = 10


def groups_from_names(names, pattern: str) -> np.ndarray:
    """The group of every file, found by a regular expression in its file name.

    Parameters
    ----------
    names : sequence of str or path
        The files; only the file name (the last part of each path) is searched.
    pattern : str
        A regular expression searched in each file name (:func:`re.search`): its first group in
        brackets is the file's group, or the whole match when it has none.

    Returns
    -------
    groups : ndarray of str, shape (n_files,)

    Raises
    ------
    ValueError
        When ``pattern`` is not a regular expression, or finds no group in some file name.

    Examples
    --------
    >>> from skrnn._groups import groups_from_names
    >>> groups_from_names(["train/0016E5_07959.png", "val/0001TP_006690.png"], r"^([^_]+)_")
    array(['0016E5', '0001TP'], dtype='<U6')
    """
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{pattern!r} is not a regular expression: {error}.") from None
    groups, unmatched = [], []
    for name in names:
        file_name = Path(str(name)).name
        match = compiled.search(file_name)
        group = None if match is None else match.group(1 if compiled.groups else 0)
        if not group:  # no match, an empty match, or a group in brackets that took no part
            unmatched.append(file_name)
        groups.append(group)
    if unmatched:
        raise ValueError(
            f"{pattern!r} finds no group in {len(unmatched)} of the {len(groups)} file names, "
            f"e.g. {unmatched[0]!r}; give a regular expression that finds every file's group in "
            "its name (its first group in brackets, or the whole match), e.g. '^([^_]+)_' for "
            "the part before the first _."
        )
    return np.asarray(groups, dtype=str)


def describe_groups(groups) -> str:
    """``"3 groups: 0001TP (62 images), 0006R0 (101), 0016E5 (305)"``, sizes only past ten."""
    names, sizes = np.unique(np.asarray(groups), return_counts=True)
    if len(names) > _LISTED_GROUPS:
        return (
            f"{len(names)} groups of {sizes.min()} to {sizes.max()} images "
            f"(median {np.median(sizes):g})"
        )
    listed = [f"{name} ({size})" for name, size in zip(names, sizes, strict=True)]
    listed[0] = listed[0].replace(")", " images)")
    return f"{len(names)} group{'s' if len(names) != 1 else ''}: {', '.join(listed)}"


def group_folds(groups, n_splits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` folds of :class:`~sklearn.model_selection.GroupKFold`: each scores on whole
    groups that its training part lacks.

    Parameters
    ----------
    groups : array-like of shape (n_samples,)
        The group of every sample.
    n_splits : int
        How many folds; at most the number of groups.

    Returns
    -------
    folds : list of (train, test) index arrays
        For the ``cv`` of a search or of :func:`~sklearn.model_selection.cross_val_score`.

    Raises
    ------
    ValueError
        When there are fewer groups than folds.
    """
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        fewer = f"give at most {n_groups} folds" if n_groups > 1 else "give at least 2 groups"
        raise ValueError(
            f"the data hold {describe_groups(groups)}, fewer than the {n_splits} folds; each "
            f"fold holds whole groups out, so {fewer}, or groups that split the data finer."
        )
    return list(GroupKFold(n_splits).split(np.zeros((len(groups), 1)), groups=groups))
