"""
Generating handwritten digits pixel by pixel
============================================

:class:`skrnn.RNNImageGenerator` is a density estimator in the scikit-learn sense: ``fit``
learns a distribution over images, ``score_samples`` gives the log-likelihood of each image and
``sample`` draws new ones. Like PixelRNN, it reads an image in raster order and predicts each
pixel's discrete value from the pixels above and to the left of it.

This example shows how to

* fit a class-conditional generator on the bundled 8x8 digits,
* compare its test log-likelihood with a simple baseline that treats pixels as independent,
* draw new digits of a chosen class and save them as a grid.
"""

# %%
# The data
# --------
# The digits hold ink counts from 0 to 16, so the generator models 17 levels per pixel.
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skrnn import RNNImageGenerator
from skrnn.datasets import load_digits_images

X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
print(f"{len(X_train)} training and {len(X_test)} test images of shape {X.shape[1:]}")

# %%
# Fitting
# -------
# Passing the labels makes the model class-conditional: it learns ``p(image | digit)`` and
# can later be asked for a particular digit. A smaller network than the default keeps this
# example to about a minute on a laptop CPU; the defaults fit a little better (see
# ``benchmarks/generation.py``).
generator = RNNImageGenerator(hidden_size=128, max_epochs=20, random_state=0)
generator.fit(X_train, y_train)
print(f"{generator.n_levels_} levels, {generator.n_iter_} epochs")

# %%
# Test log-likelihood
# -------------------
# ``score`` is the mean log-likelihood in nats, so its negative is the number of nats needed
# to encode an image. Without labels the generator scores ``log p(image)`` by summing over the
# digits. The baseline treats every pixel as an independent categorical variable (with
# Laplace smoothing): it knows which pixels tend to be inked, but not how strokes continue.
train_levels = X_train.reshape(len(X_train), -1).astype(int)
test_levels = X_test.reshape(len(X_test), -1).astype(int)
counts = 1 + np.stack([(train_levels == level).sum(axis=0) for level in range(17)], axis=1)
log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))
baseline_nll = -log_probs[np.arange(64), test_levels].sum(axis=1).mean()

generator_nll = -generator.score(X_test)
print(f"test NLL, independent pixels: {baseline_nll:6.2f} nats per image")
print(f"test NLL, RNNImageGenerator:  {generator_nll:6.2f} nats per image")
print(f"{1 - generator_nll / baseline_nll:.0%} lower than the baseline")

# %%
# Sampling digits of each class
# -----------------------------
# ``sample`` draws images value by value. ``y`` asks for a class and ``random_state`` makes the
# draw reproducible; a ``temperature`` below 1 would give more typical, less varied digits.
n_per_class = 8
digits = np.repeat(generator.classes_, n_per_class)
samples = generator.sample(len(digits), y=digits, random_state=0)

fig, axes = plt.subplots(
    len(generator.classes_), n_per_class, figsize=(n_per_class, len(generator.classes_))
)
for ax, image in zip(axes.ravel(), samples, strict=True):
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=16)
    ax.set_axis_off()
fig.suptitle("Samples of RNNImageGenerator, one row per digit")
output = Path("skrnn_output") / "generated_digits.png"
output.parent.mkdir(exist_ok=True)
fig.savefig(output, dpi=80)
print(f"saved {output.resolve()}")
