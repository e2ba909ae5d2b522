"""
The original models, rebuilt as skrnn estimators
================================================

The design skrnn comes from describes three recurrent models. This example shows that each is
an skrnn estimator with the right parameters, trains them on data made here, and plots an
image regressor's predictions against the truth. You will learn how ``cell``,
``hidden_size``, ``head``, ``embedding_dim`` and ``loss`` map onto familiar architectures.

Runs in about a minute on a laptop CPU and saves ``original_models.png``.
"""

# %%
# A Keras text model
# ------------------
# ``Embedding(10000, 64, input_length=50) → SimpleRNN(64, return_sequences=True) →
# SimpleRNN(32) → Dense(16, relu) → Dense(1, sigmoid)``, trained with Adam on binary
# cross-entropy. In skrnn the Elman cell is ``cell="rnn"``, a tuple ``hidden_size`` stacks
# layers of different sizes, ``head`` adds the dense layer and ``loss="binary_cross_entropy"``
# gives the single sigmoid unit.
import numpy as np

from skrnn import RNNImageClassifier, RNNImageRegressor
from skrnn.datasets import load_digits_images, make_sentiment_sequences

# ``make_sentiment_sequences`` makes 50-word "reviews" of word ids in [0, 10000) whose
# label is the majority sentiment of the few sentiment words hidden among filler words.
reviews, sentiment = make_sentiment_sequences(800, random_state=0)

keras_like = RNNImageClassifier(
    cell="rnn",
    embedding_dim=64,
    n_tokens=10000,
    hidden_size=(64, 32),
    bidirectional=False,
    readout="last",
    head=(16,),
    loss="binary_cross_entropy",
    label_smoothing=0.0,
    optimizer="adam",
    lr=1e-3,
    lr_schedule="constant",
    max_epochs=12,
    random_state=0,
)
keras_like.fit(reviews[:600], sentiment[:600])
print(
    f"Keras-style text model, test accuracy: {keras_like.score(reviews[600:], sentiment[600:]):.3f}"
)

# %%
# A PyTorch image model
# ---------------------
# ``nn.RNN(input_size=8, hidden_size=64, batch_first=True)`` over the rows of each digit, and a
# ``nn.Linear`` on the last time step's output.
X, y = load_digits_images(return_X_y=True)
X_train, X_test, y_train, y_test = X[:1300], X[1300:], y[:1300], y[1300:]
torch_like = RNNImageClassifier(
    cell="rnn", hidden_size=64, bidirectional=False, readout="last", max_epochs=20, random_state=0
)
torch_like.fit(X_train, y_train)
print(f"PyTorch-style row RNN, digits test accuracy: {torch_like.score(X_test, y_test):.3f}")

# %%
# A regressor: where is the ink?
# ------------------------------
# ``RNNImageRegressor`` predicts continuous targets, here the (row, column) centre of mass of
# each digit's ink, and is scored with R².
rows, cols = np.indices(X.shape[1:])
ink = X.sum(axis=(1, 2))
centre = np.stack([(X * rows).sum(axis=(1, 2)) / ink, (X * cols).sum(axis=(1, 2)) / ink], 1)
regressor = RNNImageRegressor(max_epochs=20, random_state=0).fit(X_train, centre[:1300])
predicted = regressor.predict(X_test)
print(f"Ink centre regressor, test R²: {regressor.score(X_test, centre[1300:]):.3f}")

# %%
# Predicted against true centres.
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
for axis, name, column in zip(axes, ("row", "column"), range(2), strict=True):
    axis.scatter(centre[1300:, column], predicted[:, column], s=8, alpha=0.6)
    low, high = centre[:, column].min(), centre[:, column].max()
    axis.plot([low, high], [low, high], "k--", linewidth=1)
    axis.set_xlabel(f"true {name} of the ink centre")
    axis.set_ylabel(f"predicted {name}")
fig.suptitle("RNNImageRegressor on the digits")
fig.tight_layout()
fig.savefig("original_models.png", dpi=100)
print("Figure saved to original_models.png")
