"""
What the model looks at: importance maps
========================================

:func:`skrnn.inspection.importance_map` says, for each image, how much each region of it
moved a prediction, and :class:`skrnn.plotting.ImportanceDisplay` draws the image, the map
and the map over the image. Two methods (through Captum):

* ``"occlusion"`` replaces the estimator's own reading units one at a time (here the rows
  that ``order="rows"`` reads) by the training mean, so the map shows the effect of each row;
* ``"integrated_gradients"`` integrates the gradients from the training-mean image to the
  image, pixel by pixel.

Positive values raised the log-probability of the predicted class.
"""

# %%
# A classifier on the bundled digits
# ----------------------------------
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from skrnn import RNNImageClassifier
from skrnn.datasets import load_digits_images
from skrnn.plotting import ImportanceDisplay

X, y = load_digits_images(return_X_y=True)
clf = RNNImageClassifier(random_state=0).fit(X[:1500], y[:1500])
print(f"test accuracy {clf.score(X[1500:], y[1500:]):.3f}")

# %%
# The maps of three test digits, by each method
# ---------------------------------------------
for method in ("occlusion", "integrated_gradients"):
    display = ImportanceDisplay.from_estimator(clf, X[1500:1503], method=method)
    display.figure_.suptitle(f"RNNImageClassifier() on the digits, method={method!r}")
    output = Path(f"importance_{method}.png")
    display.figure_.savefig(output, dpi=72)
    print(f"saved {output}")
