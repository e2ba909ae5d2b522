"""
Reading strings of handwritten digits
=====================================

:class:`skrnn.RNNSequenceRecognizer` reads a line of symbols from an image without being told
where one symbol ends and the next begins. A recurrent network reads the line column by
column, and the CTC loss (connectionist temporal classification) lets it learn the alignment
between its steps and the target string by itself, as CRNN does for scene text.

This example shows how to

* make lines of handwritten digits with :func:`skrnn.datasets.make_digit_strings`,
* train a recogniser on lines and their strings alone,
* measure the share of lines read exactly and the character error rate, also on lines
  longer than any seen in training,
* show lines with what was read, the errors in red.
"""

# %%
# The data
# --------
# Each line holds 1 to 6 digits from scikit-learn's bundled 8x8 digits, with random gaps,
# vertical jitter and noise. The strings are the only targets.
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from skrnn import RNNSequenceRecognizer
from skrnn.datasets import make_digit_strings
from skrnn.metrics import character_error_rate, sequence_accuracy

X_train, y_train = make_digit_strings(2000, min_length=1, max_length=6, random_state=0)
X_test, y_test = make_digit_strings(300, min_length=1, max_length=6, random_state=1)
print(f"{len(X_train)} training lines of shape {X_train.shape[1:]}, e.g. {y_train[:4].tolist()}")

# %%
# Training
# --------
# The defaults: two 3x3 convolutions, a bidirectional GRU of 64 units reading two pixel
# columns per step, and CTC. On 2,000 lines this takes about a minute on a laptop CPU.
reader = RNNSequenceRecognizer(random_state=0).fit(X_train, y_train)
print(f"alphabet: {''.join(reader.alphabet_)}, {reader.n_iter_} epochs")

# %%
# Reading new lines
# -----------------
# ``score`` is the share of lines read exactly; the character error rate counts the edits
# (insertions, deletions, substitutions) per true digit. Longer lines, and so wider images
# than any in training, are read by the same network.
read = reader.predict(X_test)
print(f"lines read exactly: {sequence_accuracy(y_test, read):.1%}")
print(f"character error rate: {character_error_rate(y_test, read):.2%}")
X_long, y_long = make_digit_strings(200, min_length=8, max_length=10, random_state=2)
read_long = reader.predict(X_long)
print(
    f"8-10 digits (images {X_long.shape[2]} pixels wide, training {X_train.shape[2]}): "
    f"{sequence_accuracy(y_long, read_long):.1%} exact, "
    f"CER {character_error_rate(y_long, read_long):.2%}"
)

# %%
# What it read
# ------------
# The first lines of the test set, with what was read above each; a line read wrongly gets
# its reading in red beside the truth.
fig, axes = plt.subplots(6, 2, figsize=(8, 6))
for ax, image, truth, text in zip(axes.ravel(), X_test[:12], y_test[:12], read[:12], strict=True):
    ax.imshow(image, cmap="gray_r")
    ax.set_axis_off()
    wrong = text != truth
    ax.set_title(f"{text}  (true {truth})" if wrong else text, color="red" if wrong else "black")
fig.tight_layout()
output = Path("read_digit_strings.png")
fig.savefig(output, dpi=80)
print(f"saved {output}")
