"""Plots in scikit-learn's Display style. matplotlib is imported only when plotting."""

from __future__ import annotations

import numpy as np


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


class TrainingCurveDisplay:
    """Training curve of a fitted skrnn estimator: losses and validation score per epoch.

    Create it with :meth:`from_estimator`; its attributes follow scikit-learn's displays.

    Parameters
    ----------
    history : list of dict
        Per-epoch records, as in an estimator's ``history_``.
    estimator_name : str, default=None

    Attributes
    ----------
    ax_ : matplotlib Axes
        The loss axes.
    score_ax_ : matplotlib Axes or None
        The twin axes of the validation score, when the history has one.
    figure_ : matplotlib Figure
    lines_ : dict of str to matplotlib Line2D
        One line per plotted history key.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from skrnn import RNNImageClassifier
    >>> from skrnn.datasets import load_digits_images
    >>> from skrnn.plotting import TrainingCurveDisplay
    >>> X, y = load_digits_images(return_X_y=True)
    >>> clf = RNNImageClassifier(hidden_size=16, max_epochs=2, random_state=0).fit(X, y)
    >>> sorted(TrainingCurveDisplay.from_estimator(clf).lines_)
    ['train_loss']
    """

    def __init__(self, history, estimator_name=None):
        self.history = history
        self.estimator_name = estimator_name

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the ``history_`` of a fitted estimator."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator, "history_")
        return cls(estimator.history_, type(estimator).__name__).plot(ax=ax)

    def plot(self, *, ax=None):
        """Draw the curves on ``ax`` (a new figure when None); return ``self``."""
        ax = _axes(ax)
        epochs = np.array([record["epoch"] for record in self.history])
        self.lines_ = {}
        for key, style in (("train_loss", "-"), ("valid_loss", "--")):
            if all(key in record for record in self.history):
                values = [record[key] for record in self.history]
                (self.lines_[key],) = ax.plot(epochs, values, style, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        self.score_ax_ = None
        score_keys = [k for k in self.history[-1] if k.startswith("valid_") and k != "valid_loss"]
        score_keys = [k for k in score_keys if not k.endswith(("_best", "_count"))]
        if score_keys:
            self.score_ax_ = ax.twinx()
            for key in score_keys:
                values = [record.get(key, np.nan) for record in self.history]
                (self.lines_[key],) = self.score_ax_.plot(epochs, values, ":", label=key)
            self.score_ax_.set_ylabel("validation score")
        handles = list(self.lines_.values())
        ax.legend(handles, [h.get_label() for h in handles], loc="best")
        ax.set_title(f"Training curve{f' of {self.estimator_name}' if self.estimator_name else ''}")
        self.ax_ = ax
        self.figure_ = ax.figure
        return self
