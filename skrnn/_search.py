"""Grid search over recurrent cells and parameters, and its results as a text table.

``skrnn cv`` and ``skrnn demo`` compare settings the same way: one
:class:`~sklearn.model_selection.GridSearchCV` over every setting and every fold, so parallel
workers never wait for the last fold of one setting before starting the next, and one table of
its ``cv_results_``: the mean and standard deviation of the test score, the mean fit time and
the rank of each setting, the best one marked.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "best_index",
    "cell_grid",
    "format_results",
    "grid_search",
    "halving_search",
    "search_results",
]


def cell_grid(cells, params=None) -> list[dict[str, list]]:
    """A ``param_grid`` that crosses every cell with every combination of ``params``.

    One dict per cell, so the search's settings (and the rows of its table) come grouped by
    cell, in the order the cells are given.

    Parameters
    ----------
    cells : list of str
        The cells to compare, e.g. ``["rnn", "lstm", "gru"]``.
    params : dict of str to list, default=None
        The values to try for other estimator parameters, e.g. ``{"hidden_size": [32, 64]}``.

    Returns
    -------
    param_grid : list of dict
        A ``param_grid`` for :class:`~sklearn.model_selection.GridSearchCV`.

    Examples
    --------
    >>> from skrnn._search import cell_grid
    >>> cell_grid(["rnn", "gru"], {"hidden_size": [32, 64]})
    [{'cell': ['rnn'], 'hidden_size': [32, 64]}, {'cell': ['gru'], 'hidden_size': [32, 64]}]
    """
    return [{"cell": [cell], **(params or {})} for cell in cells]


def grid_search(estimator, param_grid, *, cv, scoring=None, n_jobs=None, verbose=0):
    """A :class:`~sklearn.model_selection.GridSearchCV` that compares settings and stops there.

    It runs every setting on every fold as one pool of ``n_jobs`` parallel fits, raises the
    first error of a fit instead of scoring it as NaN, and does not refit the best setting
    (``refit=False``): the caller decides what to do with it.

    Parameters
    ----------
    estimator : estimator
        The estimator whose settings are compared.
    param_grid : dict or list of dict
        The settings, as for GridSearchCV (see :func:`cell_grid`).
    cv : cross-validation generator
        The splitter, e.g. a :class:`~sklearn.model_selection.StratifiedKFold`.
    scoring : str, callable or None, default=None
        How a fold is scored; None uses the estimator's ``score``.
    n_jobs : int or None, default=None
        Fits run in parallel; None means 1 and -1 all cores.
    verbose : int, default=0
        1 prints one line, "Fitting K folds for each of N candidates, totalling M fits".

    Returns
    -------
    search : GridSearchCV
        Not fitted yet.

    Examples
    --------
    >>> from skrnn import RNNImageClassifier
    >>> from skrnn._search import cell_grid, grid_search
    >>> search = grid_search(RNNImageClassifier(), cell_grid(["rnn", "gru"]), cv=3)
    >>> search.error_score, search.refit
    ('raise', False)
    """
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(estimator, param_grid, **_search_params(cv, scoring, n_jobs, verbose))


def _search_params(cv, scoring, n_jobs, verbose) -> dict:
    """What every search here is given: raise a fit's first error, refit nothing."""
    return dict(
        scoring=scoring, n_jobs=n_jobs, refit=False, cv=cv, verbose=verbose, error_score="raise"
    )


def halving_search(
    estimator, param_grid, *, cv, max_epochs, factor=3, scoring=None, n_jobs=None, verbose=0
):
    """A successive-halving search whose resource is the epochs: every setting trains a few
    epochs, the best third (``1 / factor``) goes on with ``factor`` times as many, and so on,
    until the last round trains ``max_epochs``.

    This is scikit-learn's :class:`~sklearn.model_selection.HalvingGridSearchCV` with
    ``resource="max_epochs"`` and ``max_resources=max_epochs``, the fewest epochs chosen so
    that the last round has the most (``min_resources="exhaust"``), raising the first error
    of a fit and without refitting the best setting, as :func:`grid_search`. Each round
    trains its settings afresh, each with a learning-rate schedule over its own epochs.

    Parameters
    ----------
    estimator : estimator
        The estimator whose settings are compared; any skrnn estimator (all take an int
        ``max_epochs``).
    param_grid : dict or list of dict
        The settings, without ``max_epochs`` (see :func:`cell_grid`).
    cv : cross-validation generator
        The splitter.
    max_epochs : int
        The epochs of the last round.
    factor : int, default=3
        How many times fewer settings each round keeps, and how many times more epochs it
        gives them.
    scoring : str, callable or None, default=None
        How a fold is scored (one metric); None uses the estimator's ``score``.
    n_jobs : int or None, default=None
        Fits run in parallel; None means 1 and -1 all cores.
    verbose : int, default=0
        1 prints each round's candidates and resources.

    Returns
    -------
    search : HalvingGridSearchCV
        Not fitted yet.

    Raises
    ------
    ValueError
        If ``param_grid`` sets ``max_epochs``, the resource the search chooses itself.

    Examples
    --------
    >>> from skrnn import RNNImageClassifier
    >>> from skrnn._search import cell_grid, halving_search
    >>> search = halving_search(RNNImageClassifier(), cell_grid(["rnn", "gru"]), cv=3,
    ...                         max_epochs=30)
    >>> search.resource, search.max_resources, search.refit
    ('max_epochs', 30, False)
    """
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    grids = param_grid if isinstance(param_grid, list) else [param_grid]
    if any("max_epochs" in grid for grid in grids):
        raise ValueError(
            "A halving search chooses max_epochs itself (its resource): leave it out of the "
            "grid and give the last round's epochs as max_epochs."
        )
    return HalvingGridSearchCV(
        estimator,
        param_grid,
        factor=factor,
        resource="max_epochs",
        max_resources=int(max_epochs),
        min_resources="exhaust",
        **_search_params(cv, scoring, n_jobs, verbose),
    )


def _metrics(search) -> list[tuple[str, int]]:
    """``(name, sign)`` of each metric of a search, the one that ranks first: ``("score", 1)``
    for one metric; with a dict of scorers, their names, and -1 for a scorer of a negated
    error rate (``sign=-1``), whose table column shows the rate itself."""
    if isinstance(search.scoring, dict):
        return [(name, getattr(scorer, "sign", 1)) for name, scorer in search.scoring.items()]
    return [("score", 1)]


def best_index(search) -> int:
    """The index of the best setting of a fitted search, as GridSearchCV's ``best_index_``.

    Parameters
    ----------
    search : GridSearchCV
        A fitted search; it need not have refitted the best setting.

    Returns
    -------
    index : int
        The search's own ``best_index_`` where it has one (a halving search's best setting
        is among those of its last round), else the first setting ranked 1 in
        ``cv_results_``.
    """
    if hasattr(search, "best_index_"):
        return int(search.best_index_)
    return int(np.argmin(search.cv_results_[f"rank_test_{_metrics(search)[0][0]}"]))


def search_results(search) -> list[dict]:
    """One plain dict per setting of a fitted search, in the search's order (JSON-ready).

    Parameters
    ----------
    search : GridSearchCV
        A fitted search, scored by one metric.

    Returns
    -------
    rows : list of dict
        ``params``, ``mean_score``, ``std_score``, ``mean_fit_time`` (seconds),
        ``fold_scores`` (one per fold) and ``rank`` (1 is best) of each setting, by the
        first metric; with several metrics, ``other_scores`` holds the means of the others
        (error rates as rates).
    """
    results = search.cv_results_
    (name, _), others = _metrics(search)[0], _metrics(search)[1:]
    folds = [results[f"split{fold}_test_{name}"] for fold in range(search.n_splits_)]
    rows = []
    for i, params in enumerate(results["params"]):
        row = {
            "params": params,
            "mean_score": float(results[f"mean_test_{name}"][i]),
            "std_score": float(results[f"std_test_{name}"][i]),
            "mean_fit_time": float(results["mean_fit_time"][i]),
            "fold_scores": [float(scores[i]) for scores in folds],
            "rank": int(results[f"rank_test_{name}"][i]),
        }
        if others:
            row["other_scores"] = {
                other: sign * float(results[f"mean_test_{other}"][i]) for other, sign in others
            }
        rows.append(row)
    return rows


def _varying_params(settings: list[dict]) -> list[str]:
    """The parameters that tell the settings apart, the cell first whenever there is one (and
    the first parameter when a single setting leaves nothing to tell apart)."""
    names = list(dict.fromkeys(name for params in settings for name in params))
    shown = [
        name
        for name in names
        if name == "cell" or len({repr(params.get(name)) for params in settings}) > 1
    ]
    shown.sort(key=lambda name: name != "cell")
    return shown or names[:1]


def format_results(search, *, score_name: str = "score") -> str:
    """A text table of a fitted search's ``cv_results_``, the best setting marked.

    One row per setting, in the search's order: a column for each parameter that differs
    between settings (and the cell), then the mean and standard deviation of the test score
    over the folds, the mean fit time in seconds and the rank.

    Parameters
    ----------
    search : GridSearchCV
        A fitted search, scored by one metric.
    score_name : str, default="score"
        What the score is, for the header (``"accuracy"`` gives "mean accuracy").

    Returns
    -------
    table : str
        The table, one line per setting after a header line, without a final newline.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skrnn._search import format_results
    >>> X, y = load_iris(return_X_y=True)
    >>> search = GridSearchCV(DecisionTreeClassifier(random_state=0), {"max_depth": [1, 3]})
    >>> print(format_results(search.fit(X, y), score_name="accuracy"))
    max_depth  mean accuracy     std  fit time (s)  rank
    1                 0.6667  0.0000          ...     2
    3                 0.9600  0.0249          ...     1  <- best
    """
    rows = search_results(search)
    names = _varying_params([row["params"] for row in rows])
    values = [[str(row["params"].get(name, "")) for row in rows] for name in names]
    widths = [
        max(len(name), *(len(value) for value in column))
        for name, column in zip(names, values, strict=True)
    ]
    score_header = f"mean {score_name}"
    score_width = max(len(score_header), 6)
    others = list(rows[0].get("other_scores", {}))
    lines = [
        "  ".join(name.ljust(width) for name, width in zip(names, widths, strict=True))
        + f"  {score_header:>{score_width}} {'std':>7}"
        + "".join(f" {'mean ' + other:>{max(len(other) + 5, 8)}}" for other in others)
        + f" {'fit time (s)':>13} {'rank':>5}"
    ]
    best = best_index(search)
    for i, row in enumerate(rows):
        labels = "  ".join(
            column[i].ljust(width) for column, width in zip(values, widths, strict=True)
        )
        extra = "".join(
            f" {row['other_scores'][other]:>{max(len(other) + 5, 8)}.4f}" for other in others
        )
        lines.append(
            f"{labels}  {row['mean_score']:>{score_width}.4f} {row['std_score']:>7.4f}{extra} "
            f"{row['mean_fit_time']:>13.2f} {row['rank']:>5}" + ("  <- best" if i == best else "")
        )
    return "\n".join(lines)
