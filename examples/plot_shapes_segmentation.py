"""
======================================================
Segmenting shapes with recurrent sweeps (RNNSegmenter)
======================================================

This example trains :class:`skrnn.RNNSegmenter` to label every pixel of noisy
synthetic images as background, circle, rectangle or triangle. You will learn how to:

* make a segmentation data set with :func:`skrnn.datasets.make_shapes`,
* fit a segmenter on images and label masks, and predict masks for new images, even of
  another size,
* measure the result with the intersection over union (IoU) of each class.

Shapes of every class have the same range of brightness, so no threshold can tell them
apart: the network must recognise their form. Each layer of the segmenter reads the image
with recurrent cells down and up every column and then left and right along every row, so
every pixel's label can depend on the whole shape it belongs to (ReNet / ReSeg).

It runs in about a minute on a laptop CPU.
"""

# %%
# The data
# --------
# 600 training and 100 test images of 32x32 pixels. ``Y`` holds one label per pixel:
# 0 background, 1 circle, 2 rectangle, 3 triangle.
from pathlib import Path

from skrnn import RNNSegmenter
from skrnn.datasets import SHAPE_NAMES, make_shapes
from skrnn.metrics import iou_per_class, mean_iou

# Where the figure is written; change it to save elsewhere.
OUTPUT_PATH = Path("shapes_segmentation.png")

X_train, Y_train = make_shapes(n_samples=600, image_size=32, random_state=0)
X_test, Y_test = make_shapes(n_samples=100, image_size=32, random_state=1)
class_names = list(SHAPE_NAMES)
print(f"training images {X_train.shape}, masks {Y_train.shape}; classes {class_names}")

# %%
# Training
# --------
# The defaults sweep 2x2 patches with two layers of bidirectional GRU sweeps of 32 units and
# upsample back to the pixel grid. ``verbose=1`` would print the loss of every epoch.
segmenter = RNNSegmenter(random_state=0)
segmenter.fit(X_train, Y_train)

# %%
# Evaluation
# ----------
# The score of a segmenter is the mean IoU over the classes; the IoU of each class shows
# which shapes are hardest.
Y_pred = segmenter.predict(X_test)
print(f"mean IoU on test images: {mean_iou(Y_test, Y_pred):.3f}")
for name, iou in zip(class_names, iou_per_class(Y_test, Y_pred), strict=True):
    print(f"  IoU {name:<10} {iou:.3f}")

# %%
# The sweeps do not depend on the image size, so the same model segments larger images.
X_large, Y_large = make_shapes(n_samples=20, image_size=48, random_state=2)
print(f"mean IoU on 48x48 images: {segmenter.score(X_large, Y_large):.3f}")

# %%
# Images, true masks and predicted masks
# --------------------------------------
from skrnn.plotting import SegmentationDisplay  # noqa: E402

display = SegmentationDisplay.from_predictions(
    X_test, Y_test, Y_pred, label_names=class_names, max_images=5
)
fig = display.figure_
fig.suptitle(f"RNNSegmenter on make_shapes (mean IoU {mean_iou(Y_test, Y_pred):.3f})")
fig.tight_layout(rect=(0, 0.05, 1, 1))
fig.savefig(OUTPUT_PATH, dpi=100)
print(f"figure saved to {OUTPUT_PATH.resolve()}")
