"""What ``augment`` does to accuracy: the same estimator with and without it, side by side.

Digits: RNNImageClassifier on the bundled digits, 5 stratified folds, mean accuracy and median
fit time for each setting. CamVid (optional, a path to the SegNet-layout folder):

* real 28x28 photos to classify: crops of the CamVid photos centred on a pixel of each of the
  11 classes (training crops from the training photos, test crops from the validation photos),
  classified by RNNImageClassifier;
* RNNSegmenter trained on a few large photos and scored by mean IoU on the validation photos,
  the "few large images" case.

    python benchmarks/augmentation.py                         # digits only
    python benchmarks/augmentation.py --camvid DATA/camvid/CamVid --n-train 20 --max-epochs 40
    python benchmarks/augmentation.py --camvid DATA/camvid/CamVid --no-segmenter
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from skrnn import RNNImageClassifier, RNNSegmenter
from skrnn.datasets import load_digits_images, load_segmentation_folder

DIGIT_SETTINGS = {
    "augment=False": False,
    "augment=True (shift 0.1, scale 0.1)": True,
    "shift 0.15 only": {"shift": 0.15},
}
SEGMENTER_SETTINGS = {"augment=False": False, "augment=True": True}


def digits(seed: int) -> None:
    X, y = load_digits_images(return_X_y=True)
    folds = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y))
    print(f"\nDigits, 5 folds, RNNImageClassifier(random_state={seed}, augment=...)")
    print(f"{'setting':<40} {'mean acc':>9} {'std':>7} {'median fit s':>13}")
    for name, augment in DIGIT_SETTINGS.items():
        scores, times = [], []
        for train, test in folds:
            model = RNNImageClassifier(augment=augment, random_state=seed)
            start = time.perf_counter()
            model.fit(X[train], y[train])
            times.append(time.perf_counter() - start)
            scores.append(model.score(X[test], y[test]))
        print(
            f"{name:<40} {np.mean(scores):>9.4f} {np.std(scores):>7.4f} {np.median(times):>13.1f}",
            flush=True,
        )


CROP = 28
CROP_SETTINGS = {
    "augment=False": False,
    "augment=True (shift 0.1, scale 0.1)": True,
    "augment hflip, shift, scale, intensity": {
        "hflip": True,
        "shift": 0.1,
        "scale": 0.1,
        "intensity": 0.1,
    },
}


def class_crops(photos, masks, per_class: int, rng, ignore_label=11):
    """Crops of CROP x CROP pixels centred on pixels whose 5x5 neighbourhood has one class.

    Returns the crops and their classes: ``per_class`` of each class (fewer for a class that
    has fewer such pixels), each from a random photo and position.
    """
    half = CROP // 2
    crops, labels = [], []
    inner = masks[:, half : masks.shape[1] - half, half : masks.shape[2] - half]
    for label in np.unique(masks):
        if label == ignore_label:
            continue
        n, rows, cols = np.nonzero(inner == label)
        if len(n) == 0:
            continue
        order = rng.permutation(len(n))
        taken = 0
        for i in order:
            r, c = rows[i] + half, cols[i] + half
            if not (masks[n[i], r - 2 : r + 3, c - 2 : c + 3] == label).all():
                continue
            crops.append(photos[n[i], r - half : r + half, c - half : c + half])
            labels.append(label)
            taken += 1
            if taken == per_class:
                break
    return np.stack(crops), np.array(labels)


def camvid_crops(root: Path, seed: int, per_class: int = 200) -> None:
    train = load_segmentation_folder(root / "train", root / "trainannot", color_mode="rgb")
    val = load_segmentation_folder(root / "val", root / "valannot", color_mode="rgb")
    rng = np.random.default_rng(seed)
    X, y = class_crops(train.data, train.target, per_class, rng)
    X_test, y_test = class_crops(val.data, val.target, per_class // 2, rng)
    print(
        f"\nCamVid crops: {len(X)} training and {len(X_test)} test crops of {CROP}x{CROP}x3, "
        f"{len(np.unique(y))} classes; RNNImageClassifier(random_state={seed}, augment=...)"
    )
    print(f"{'setting':<40} {'test acc':>9} {'fit s':>8}")
    for name, augment in CROP_SETTINGS.items():
        model = RNNImageClassifier(augment=augment, random_state=seed)
        start = time.perf_counter()
        model.fit(X, y)
        elapsed = time.perf_counter() - start
        print(f"{name:<40} {model.score(X_test, y_test):>9.4f} {elapsed:>8.1f}", flush=True)


def camvid(
    root: Path, n_train: int, max_epochs: int, batch_size: int, seed: int, settings: list[str]
) -> None:
    train = load_segmentation_folder(root / "train", root / "trainannot", color_mode="rgb")
    val = load_segmentation_folder(root / "val", root / "valannot", color_mode="rgb")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(train.data), size=n_train, replace=False))
    X, Y = train.data[chosen], train.target[chosen]
    print(
        f"\nCamVid: {n_train} training photos of {X.shape[1]}x{X.shape[2]}, scored on "
        f"{len(val.data)} validation photos; RNNSegmenter(ignore_label=11, "
        f"max_epochs={max_epochs}, batch_size={batch_size}, class_weight='balanced')"
    )
    print(f"{'setting':<20} {'val mean IoU':>13} {'fit s':>8}")
    for name, augment in SEGMENTER_SETTINGS.items():
        if settings and name not in settings:
            continue
        model = RNNSegmenter(
            ignore_label=11,
            max_epochs=max_epochs,
            batch_size=batch_size,
            class_weight="balanced",
            augment=augment,
            random_state=seed,
        )
        start = time.perf_counter()
        model.fit(X, Y)
        elapsed = time.perf_counter() - start
        print(f"{name:<20} {model.score(val.data, val.target):>13.4f} {elapsed:>8.0f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--camvid", type=Path, help="CamVid folder (train/, trainannot/, ...)")
    parser.add_argument("--n-train", type=int, default=20)
    parser.add_argument("--max-epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--no-crops", action="store_true", help="skip the CamVid crops")
    parser.add_argument("--no-segmenter", action="store_true", help="skip the CamVid segmenter")
    parser.add_argument(
        "--camvid-setting",
        action="append",
        default=[],
        choices=list(SEGMENTER_SETTINGS),
        help="run only these CamVid settings (default: all)",
    )
    args = parser.parse_args(argv)
    if not args.no_digits:
        digits(args.seed)
    if args.camvid is not None and not args.no_crops:
        camvid_crops(args.camvid, args.seed)
    if args.camvid is not None and not args.no_segmenter:
        camvid(
            args.camvid,
            args.n_train,
            args.max_epochs,
            args.batch_size,
            args.seed,
            args.camvid_setting,
        )


if __name__ == "__main__":
    main()
