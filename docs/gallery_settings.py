"""How the docs build shrinks the gallery examples (imported by ``conf.py``).

The examples train for a minute or more each, as a user would run them. The gallery caps every
fit at a few epochs so that ``make docs`` stays within minutes on two CPU cores; the figures
then show briefly trained models. ``SKRNN_DOCS_FULL=1 make docs`` runs them unchanged.
"""

import functools
import os

import skrnn

#: The most epochs any fit of a gallery example trains for in the docs build.
DOCS_MAX_EPOCHS = int(os.environ.get("SKRNN_DOCS_MAX_EPOCHS", "5"))
ESTIMATORS = (
    skrnn.RNNImageClassifier,
    skrnn.RNNImageRegressor,
    skrnn.RNNSegmenter,
    skrnn.RNNImageGenerator,
    skrnn.RNNSequenceRecognizer,
)


def _capped(fit):
    @functools.wraps(fit)
    def capped_fit(self, *args, **kwargs):
        epochs = self.max_epochs
        if epochs == "auto" or (isinstance(epochs, int) and epochs > DOCS_MAX_EPOCHS):
            self.max_epochs = DOCS_MAX_EPOCHS
        return fit(self, *args, **kwargs)

    capped_fit.skrnn_docs_capped = True
    return capped_fit


def shrink() -> None:
    """Cap the training length of every skrnn estimator (once per process)."""
    if os.environ.get("SKRNN_DOCS_FULL"):
        return
    for cls in ESTIMATORS:
        if not getattr(cls.fit, "skrnn_docs_capped", False):
            cls.fit = _capped(cls.fit)
