"""RNNSegmenter with its defaults on CamVid: mean and per-class IoU on the validation photos.

Takes the CamVid folder in the SegNet layout (train/, trainannot/, val/, valannot/; label 11
is void and ignored), as a user would pass their own copy:

    python benchmarks/camvid.py ../shared/data/camvid/CamVid [--param max_epochs=40 ...]

Prints the epochs that max_epochs="auto" chose, the fit time, the prediction speed of
RNNSegmenter.predict on the validation photos, and their mean and per-class IoU. (The
random-forest baseline of the data's README is not part of this script yet.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from skrnn import RNNSegmenter
from skrnn._cli import parse_params
from skrnn.datasets import load_segmentation_folder
from skrnn.metrics import iou_per_class

CLASSES = [
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the CamVid folder (train/, trainannot/, ...)")
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args(argv)
    params = {
        name: value for name, (value, *_) in parse_params(args.param).items()
    }  # the CLI's NAME=VALUE reading

    train = load_segmentation_folder(args.root / "train", args.root / "trainannot")
    val = load_segmentation_folder(args.root / "val", args.root / "valannot")
    model = RNNSegmenter(ignore_label=11, random_state=args.random_state, **params)
    start = time.perf_counter()
    model.fit(train.data, train.target)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    predicted = model.predict(val.data)
    speed = len(val.data) / (time.perf_counter() - start)
    per_class = iou_per_class(val.target, predicted, ignore_label=11)
    print(
        f"RNNSegmenter(ignore_label=11, {', '.join(args.param) or 'defaults'}): "
        f"{model.n_iter_} epochs, fit {fit:.0f} s, predict {speed:.1f} images/s"
    )
    print(f"val mean IoU {np.nanmean(per_class):.4f}")
    for name, iou in zip(CLASSES, per_class, strict=False):
        print(f"  {name:<11} {iou:.3f}")


if __name__ == "__main__":
    main()
