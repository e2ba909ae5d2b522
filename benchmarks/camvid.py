"""RNNSegmenter with its defaults on CamVid, side by side with a per-pixel random forest.

Takes the CamVid folder in the SegNet layout (train/, trainannot/, val/, valannot/; label 11
is void and ignored), as a user would pass their own copy:

    python benchmarks/camvid.py ../shared/data/camvid/CamVid [--n-train 20] [--figure F.png]
                                [--param max_epochs=40 ...] [--no-forest] [--select lodo]

Both models train on the same training photos (all 367, or ``--n-train`` drawn with the
random state) and are scored on the 101 validation photos. The baseline is the classic
per-pixel random forest (100 trees, depth 16) on scikit-image's ``multiscale_basic_features``
(intensity, edges and texture at several scales), trained on 600 random labelled pixels per
training photo. Prints the epochs that ``max_epochs="auto"`` chose, fit times, prediction
speed, pixel accuracy and mean and per-class IoU; ``--figure`` saves photos, true masks and
both models' masks. The mean IoU is also given on two fixed halves of the validation photos:
the half the defaults were chosen on, and the half held out from every choice. Needs the
``bench`` extra (scikit-image, matplotlib, pillow).

``--select lodo`` scores the configuration the way a choice of defaults must be scored: leave
one drive out over the train and val frames (three drives: 0001TP, 0006R0, 0016E5; a frame's
drive is its file name's part before the first ``_``). Each drive is scored by a model trained
on the frames of the other two (``--n-train`` of them, drawn with the random state), and the
per-drive and mean mean IoU are printed, with the usual val score only beside them: the val
frames are all of 0016E5, a drive whose other frames are in train/, so the val score is that of
a drive the model has seen. ``--n-test`` scores that many frames of each held-out drive (a smoke
test); the default is all.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from skrnn import RNNSegmenter
from skrnn._cli import parse_params
from skrnn._groups import describe_groups, groups_from_names
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
VOID = 11
# The usual CamVid colours of the classes above, then black for void.
PALETTE = np.array(
    [
        [128, 128, 128],
        [128, 0, 0],
        [192, 192, 128],
        [128, 64, 128],
        [60, 40, 222],
        [128, 128, 0],
        [192, 128, 128],
        [64, 64, 128],
        [64, 0, 128],
        [64, 64, 0],
        [0, 128, 192],
        [0, 0, 0],
    ],
    dtype=np.uint8,
)
PIXELS_PER_IMAGE = 600
# A CamVid frame's drive: its file name's part before the first _ (0016E5 of 0016E5_07959.png).
DRIVE = r"^([^_]+)_"


def pixel_features(image):
    """scikit-image's multiscale intensity, edge and texture features of every pixel of one
    photo, as rows ``(H * W, n_features)``."""
    from skimage.feature import multiscale_basic_features

    features = multiscale_basic_features(image, channel_axis=-1).astype(np.float32)
    return features.reshape(-1, features.shape[-1])


def fit_forest(images, masks, random_state):
    """The per-pixel random forest, on PIXELS_PER_IMAGE labelled pixels of each photo."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(random_state)
    rows, labels = [], []
    for image, mask in zip(images, masks, strict=True):
        labelled = np.flatnonzero(mask.ravel() != VOID)
        chosen = rng.choice(labelled, min(PIXELS_PER_IMAGE, len(labelled)), replace=False)
        rows.append(pixel_features(image)[chosen])
        labels.append(mask.ravel()[chosen])
    forest = RandomForestClassifier(
        n_estimators=100, max_depth=16, n_jobs=-1, random_state=random_state
    )
    return forest.fit(np.concatenate(rows), np.concatenate(labels))


def predict_forest(forest, images):
    return np.stack(
        [forest.predict(pixel_features(image)).reshape(image.shape[:2]) for image in images]
    )


def save_figure(path, images, truth, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [("photo", None), ("truth", truth)] + rows
    fig, axes = plt.subplots(
        len(images), len(columns), figsize=(2.6 * len(columns), 2.0 * len(images))
    )
    for i, image in enumerate(images):
        for j, (title, masks) in enumerate(columns):
            ax = axes[i, j]
            ax.imshow(image if masks is None else PALETTE[masks[i]])
            ax.set_axis_off()
            if i == 0:
                ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=75)
    print(f"figure saved to {path}")


def mean_iou(truth, predicted):
    per_class = iou_per_class(truth, predicted, ignore_label=VOID, labels=range(len(CLASSES)))
    return float(np.nanmean(per_class)), per_class


def val_halves(n):
    """Two fixed halves of the validation photos: "tune" (50 photos), the half on which the
    defaults were chosen, and "held out" (51), never looked at while choosing them."""
    order = np.random.default_rng(0).permutation(n)
    return np.sort(order[:50]), np.sort(order[50:])


def report(name, truth, predicted, seconds, speed):
    miou, per_class = mean_iou(truth, predicted)
    labelled = truth != VOID
    accuracy = float((truth[labelled] == predicted[labelled]).mean())
    tune, held_out = val_halves(len(truth))
    return {
        "name": name,
        "fit": seconds,
        "speed": speed,
        "accuracy": accuracy,
        "miou": miou,
        "tune": mean_iou(truth[tune], predicted[tune])[0],
        "held_out": mean_iou(truth[held_out], predicted[held_out])[0],
        "per_class": per_class,
    }


def leave_one_drive_out(train, val, params, args):
    """The mean IoU of each drive of the train and val frames, scored by an RNNSegmenter
    trained on the frames of the other drives: ``{drive: (train frames, epochs, mean IoU)}``."""
    from sklearn.model_selection import LeaveOneGroupOut

    images = np.concatenate([train.data, val.data])
    masks = np.concatenate([train.target, val.target])
    drives = groups_from_names([*train.filenames, *val.filenames], DRIVE)
    print(f"leave one drive out over train/ and val/: {describe_groups(drives)}")
    rng = np.random.default_rng(args.random_state)
    scores = {}
    for fit_on, held_out in LeaveOneGroupOut().split(images, groups=drives):
        drive = drives[held_out[0]]
        if args.n_train is not None:
            fit_on = np.sort(rng.choice(fit_on, min(args.n_train, len(fit_on)), replace=False))
        if args.n_test is not None:
            held_out = held_out[: args.n_test]
        model = RNNSegmenter(ignore_label=VOID, random_state=args.random_state, **params)
        model.fit(images[fit_on], masks[fit_on])
        miou = mean_iou(masks[held_out], model.predict(images[held_out]))[0]
        scores[drive] = (len(fit_on), model.n_iter_, miou)
        print(f"  {drive} held out ({len(held_out)} frames): mean IoU {miou:.4f}", flush=True)
    return scores


def print_lodo(label, scores, val_miou, val_drives):
    print(f"\nleave one drive out, {label}")
    print(f"{'held-out drive':<16}  {'trained on':>10}  {'epochs':>6}  {'mean IoU':>8}")
    for drive, (n_fit, epochs, miou) in scores.items():
        print(f"{drive:<16}  {n_fit:10d}  {epochs:6d}  {miou:8.4f}")
    mean = np.mean([miou for *_, miou in scores.values()])
    print(f"{'mean over drives':<16}  {'':>10}  {'':>6}  {mean:8.4f}")
    print(
        f"beside it, val only: {val_miou:.4f} (val/ is all {', '.join(val_drives)}, a drive "
        "train/ also holds: a score on a drive the model has seen)"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="the CamVid folder (train/, trainannot/, ...)")
    parser.add_argument("--n-train", type=int, default=None, help="train on this many photos")
    parser.add_argument("--param", action="append", default=[], help="NAME=VALUE")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--no-forest", action="store_true", help="skip the forest baseline")
    parser.add_argument("--figure", type=Path, default=None, help="save example masks here")
    parser.add_argument(
        "--select",
        choices=["val", "lodo"],
        default="val",
        help="val: score on val/ only; lodo: also leave one drive out over train/ and val/, "
        "with val only beside it",
    )
    parser.add_argument(
        "--n-test", type=int, default=None, help="lodo: score this many frames of each drive"
    )
    args = parser.parse_args(argv)
    params = {name: value for name, (value, *_) in parse_params(args.param).items()}

    train = load_segmentation_folder(args.root / "train", args.root / "trainannot")
    val = load_segmentation_folder(args.root / "val", args.root / "valannot")
    if args.select == "lodo":
        lodo = leave_one_drive_out(train, val, params, args)
    X, y = train.data, train.target
    if args.n_train is not None:
        chosen = np.random.default_rng(args.random_state).choice(
            len(X), args.n_train, replace=False
        )
        X, y = X[np.sort(chosen)], y[np.sort(chosen)]
    print(f"{len(X)} training photos, {len(val.data)} validation photos of {X.shape[1:]}")

    results, masks = [], []
    model = RNNSegmenter(ignore_label=VOID, random_state=args.random_state, **params)
    start = time.perf_counter()
    model.fit(X, y)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    predicted = model.predict(val.data)
    speed = len(val.data) / (time.perf_counter() - start)
    label = f"RNNSegmenter({', '.join(args.param) or 'defaults'}), {model.n_iter_} epochs"
    results.append(report(label, val.target, predicted, fit, speed))
    masks.append(("RNNSegmenter", predicted))
    if args.select == "lodo":
        val_drives = np.unique(groups_from_names(val.filenames, DRIVE))
        print_lodo(label.rsplit(", ", 1)[0], lodo, results[0]["miou"], val_drives)

    if not args.no_forest:
        start = time.perf_counter()
        forest = fit_forest(X, y, args.random_state)
        fit = time.perf_counter() - start
        start = time.perf_counter()
        predicted = predict_forest(forest, val.data)
        speed = len(val.data) / (time.perf_counter() - start)
        results.append(
            report("random forest, multiscale features", val.target, predicted, fit, speed)
        )
        masks.append(("random forest", predicted))

    width = max(len(r["name"]) for r in results)
    print(
        f"\n{'model':<{width}}  {'fit s':>7}  {'img/s':>6}  {'pixel acc':>9}  {'mean IoU':>8}  "
        f"{'tune half':>9}  {'held out':>8}"
    )
    for r in results:
        print(
            f"{r['name']:<{width}}  {r['fit']:7.0f}  {r['speed']:6.1f}  {r['accuracy']:9.4f}  "
            f"{r['miou']:8.4f}  {r['tune']:9.4f}  {r['held_out']:8.4f}"
        )
    print(
        "\nIoU per class\n"
        + f"{'class':<11}"
        + "".join(f"  {r['name'].split(',')[0][:14]:>14}" for r in results)
    )
    for k, name in enumerate(CLASSES):
        print(f"{name:<11}" + "".join(f"  {r['per_class'][k]:14.3f}" for r in results))

    if args.figure is not None:
        shown = np.linspace(0, len(val.data) - 1, 4).astype(int)
        save_figure(
            args.figure,
            val.data[shown],
            val.target[shown],
            [(title, m[shown]) for title, m in masks],
        )


if __name__ == "__main__":
    main()
