"""The ``skrnn`` command line (also ``python -m skrnn``).

Commands: ``demo`` (the bundled digits), ``cv`` (a cross-validated comparison of cells and
parameters on your data), ``train`` (fit and save a model) and ``predict`` (apply a saved
model). Mistakes in the arguments end with exit status 2 and a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import json
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DATA_HELP = (
    "an .npz file with X and y (class labels) or Y / masks (segmentation masks), an .npy file "
    "of images (predict only), or a folder: one sub-folder of images per class; for "
    "segmentation, images/ and masks/ sub-folders, or NAME/ and NAMEannot/ folders (the SegNet "
    "layout: DATA is the folder that holds them, or NAME/ itself); or leave DATA out and give "
    "--images and --masks"
)

# skrnn cv --halving: the last round's epochs unless --param max_epochs says otherwise.
HALVING_MAX_EPOCHS = 30


class UsageError(Exception):
    """A mistake in the command's arguments or input files: reported in one line, status 2."""


# --------------------------------------------------------------------------- data
def _segmentation_folders(path: Path) -> tuple[Path, Path] | None:
    """``(images, masks)`` when ``path`` is a segmentation set in a layout we know, else None.

    The layouts: ``path/images/`` + ``path/masks/``; ``path/NAME/`` + ``path/NAMEannot/`` (the
    SegNet layout, one pair); or ``path`` itself is ``NAME/``, a folder of images, with a
    sibling ``NAMEannot/``.
    """
    from ._folders import image_files

    if (path / "images").is_dir() and (path / "masks").is_dir():
        return path / "images", path / "masks"
    pairs = sorted(
        child
        for child in path.iterdir()
        if child.is_dir() and (path / f"{child.name}annot").is_dir()
    )
    if len(pairs) == 1:
        return pairs[0], path / f"{pairs[0].name}annot"
    if len(pairs) > 1:
        names = ", ".join(f"{pair.name}/ + {pair.name}annot/" for pair in pairs)
        raise UsageError(
            f"{path} holds several image and mask folders ({names}); give one as DATA, e.g. "
            f"{pairs[0]} (its masks are read from {pairs[0].name}annot/), or use --images DIR "
            "--masks DIR."
        )
    name = path.resolve().name  # also for DATA given as "." or "train/.."
    masks = (path.parent if path.name == name else path.resolve().parent) / f"{name}annot"
    if name and masks.is_dir() and image_files(path):
        return path, masks
    return None


def _cli_wording(message: str) -> str:
    """A loader's message with its keyword options named as the command line's options."""

    def palette(match) -> str:
        colours = re.findall(r"\(([^)]*)\)", match.group(1))
        more = " ..." if "..." in match.group(1) else ""
        return "--palette " + " ".join(colour.replace(" ", "") for colour in colours) + more

    message = re.sub(
        r"mask_values=\[([^\]]*)\]",
        lambda match: "--mask-values " + match.group(1).replace(" ", ""),
        message,
    )
    message = re.sub(r"palette=\[([^\]]*)\]", palette, message)
    message = message.replace("mask_threshold=", "--mask-threshold ")
    message = message.replace("pass skip_errors=True", "pass --skip-errors")
    return message.replace("image_size=(height, width)", "--image-size H,W").replace(
        "pass image_size", "pass --image-size"
    )


def load_data(
    path=None,
    *,
    images=None,
    masks=None,
    image_size=None,
    color_mode="auto",
    mask_values=None,
    mask_threshold=None,
    palette=None,
    skip_errors=False,
    require_target=True,
):
    """Read ``(X, y, task, filenames)`` from an ``.npz`` / ``.npy`` file or image folders.

    ``path`` is DATA; ``images`` and ``masks`` the folders of ``--images`` / ``--masks``,
    instead of it. ``task`` is ``"classification"``, ``"segmentation"`` or ``"recognition"``
    (an ``.npz`` with ``strings``, or a folder with a transcription file, whose ``X`` is a list
    of lines of their own widths); ``y`` is None when
    the data hold no target and ``require_target`` is False. The mask options are those of
    :func:`skrnn.datasets.load_segmentation_folder`; with ``skip_errors``, unreadable image
    files are left out and ``filenames`` names the rows read. The loaders' warnings are
    printed on stderr.
    """
    mask_options = {
        "mask_values": mask_values,
        "mask_threshold": mask_threshold,
        "palette": palette,
    }
    if path is not None and (images is not None or masks is not None):
        raise UsageError("give DATA or --images DIR --masks DIR, not both.")
    if path is None and images is None:
        if masks is not None:
            raise UsageError("--masks needs --images: the folder of the images the masks label.")
        raise UsageError(f"no data given; DATA must be {DATA_HELP}.")
    if images is not None:
        folders = (Path(images), None if masks is None else Path(masks))
        if folders[1] is None and require_target:
            raise UsageError(
                f"--images {images} needs --masks DIR, the folder of their masks (paired by "
                "file name); for one sub-folder per class give the folder as DATA."
            )
    else:
        path = Path(path)
        if not path.exists():
            raise UsageError(f"{path} does not exist; DATA must be {DATA_HELP}.")
        folders = _segmentation_folders(path) if path.is_dir() else None
    if folders is None or folders[1] is None:
        _refuse_mask_options(mask_options)
    if folders is None and path.is_dir() and _transcription_file(path) is not None:
        return _load_lines(path, image_size, color_mode)
    if folders is not None or path.is_dir():
        reading = {"image_size": image_size, "color_mode": color_mode, "skip_errors": skip_errors}
        return _load_folders(path, folders, reading, mask_options, require_target)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if require_target:
            raise UsageError(f"{path} is an .npy file of images only; use an .npz with X and y.")
        try:
            X = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as error:
            raise UsageError(f"Cannot read {path}: {error}") from None
        _check_arrays(path, X)
        return X, None, "classification", None
    if suffix != ".npz":
        raise UsageError(f"{path} is not an .npz file or a folder; DATA must be {DATA_HELP}.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError) as error:
        raise UsageError(f"Cannot read {path} as an .npz file: {error}") from None
    if "X" not in arrays:
        raise UsageError(f"{path} has no array named X (it has {sorted(arrays)}).")
    X = arrays["X"]
    if "strings" in arrays:  # what each image reads: recognition
        strings = arrays["strings"]
        _check_arrays(path, X, strings, "strings")
        if strings.ndim != 1 or strings.dtype.kind not in "UO":
            raise UsageError(
                f"strings in {path} must be a 1-D array of text, one per image; got an array of "
                f"shape {strings.shape} and dtype {strings.dtype}."
            )
        return X, [str(text) for text in strings.tolist()], "recognition", None
    for key in ("Y", "masks", "y"):
        if key in arrays:
            y = arrays[key]
            _check_arrays(path, X, y, key)
            task = "segmentation" if key != "y" or y.ndim >= 3 else "classification"
            return X, y, task, None
    if require_target:
        raise UsageError(f"{path} has no target: add y (labels) or Y / masks (masks) to it.")
    _check_arrays(path, X)
    return X, None, "classification", None


def _refuse_mask_options(options: dict) -> None:
    """Refuse the options that read masks (``mask_values``, ``mask_threshold``, ``palette``
    in ``options``) for data without masks."""
    given = [
        f"--{name.replace('_', '-')}"
        for name in ("mask_values", "mask_threshold", "palette")
        if options.get(name) is not None
    ]
    if given:
        raise UsageError(
            f"{' and '.join(given)} read masks from image files; give a folder of masks "
            "(DATA with images/ and masks/, NAME/ and NAMEannot/, or --images and --masks)."
        )


def _check_arrays(path, X, y=None, key="y") -> None:
    """Refuse an X or a target that is one number: the estimators' checks count images."""
    if X.ndim == 0:
        raise UsageError(
            f"X in {path} is a single number; expected images, an array of shape (n, H, W) or "
            "(n, H, W, C)."
        )
    if y is not None and y.ndim == 0:
        raise UsageError(f"{key} in {path} is a single number; expected one target per image.")


def _transcription_file(folder: Path) -> Path | None:
    """The transcription file a folder of text lines holds, if any."""
    from ._lines import TRANSCRIPTION_FILES

    return next((folder / n for n in TRANSCRIPTION_FILES if (folder / n).is_file()), None)


def _load_lines(folder: Path, image_size, color_mode):
    """``load_data`` for a folder of text lines with a transcription file (recognition)."""
    from ._lines import load_line_folder

    try:
        data = load_line_folder(
            folder,
            height=None if image_size is None else image_size[0],
            color_mode="rgb" if color_mode == "rgb" else "grayscale",
        )
    except (ValueError, OSError) as error:
        raise UsageError(_cli_wording(_message(error))) from None
    return (
        data.images,
        [str(text) for text in data.target],
        "recognition",
        [str(name) for name in data.filenames],
    )


def _unlabelled_lines(folder: Path, height: int, color_mode: str):
    """A flat folder of text-line images without transcriptions, read at ``height``."""
    from ._folders import image_files
    from ._lines import _read_line_image

    files = image_files(folder)
    if not files:
        raise UsageError(
            f"{folder} holds no images (.png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp or .gif files)."
        )
    mode = "rgb" if color_mode == "rgb" else "grayscale"
    try:
        lines = [_read_line_image(file, mode, height) for file in files]
    except (OSError, ValueError) as error:
        raise UsageError(f"Cannot read the images of {folder}: {_message(error)}") from None
    return lines, None, "recognition", [str(file) for file in files]


def _load_folders(path, folders, reading, mask_options, require_target):
    """``load_data`` for folders: ``folders`` is ``(images, masks or None)`` or None;
    ``reading`` the loaders' image_size, color_mode and skip_errors."""
    from .datasets import load_image_folder, load_segmentation_folder

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            if folders is not None and folders[1] is not None:
                kind = "segmentation"
                data = load_segmentation_folder(*folders, **reading, **mask_options)
            elif folders is not None:
                return _unlabelled_folder(folders[0], **reading)
            elif any(child.is_dir() for child in path.iterdir()):
                kind = "classification"
                data = load_image_folder(path, **reading)
            elif require_target:
                raise UsageError(
                    f"{path} holds no class sub-folders; training needs the layout "
                    f"{path}/<class_name>/<image>.png, or images/ and masks/ sub-folders for "
                    "segmentation."
                )
            else:
                return _unlabelled_folder(path, **reading)
        except ValueError as error:
            raise UsageError(_cli_wording(str(error))) from None
        finally:
            for warning in caught:
                print(f"skrnn: warning: {_cli_wording(str(warning.message))}", file=sys.stderr)
    return data.data, data.target, kind, [str(f) for f in data.filenames]


def _unlabelled_folder(path: Path, image_size, color_mode, skip_errors):
    """A flat folder of images without labels, for ``predict``: the images read and their
    files (without those ``skip_errors`` left out)."""
    from ._folders import image_files

    if not path.is_dir():
        raise UsageError(f"{path} is not a folder of images.")
    files = image_files(path)
    if not files:
        raise UsageError(
            f"{path} holds no images (.png, .jpg, .jpeg, .bmp, .tif, .tiff, .webp or .gif files)."
        )
    images, read = _read_files(files, image_size, color_mode, skip_errors)
    return images, None, "classification", read


def _read_files(files, image_size, color_mode, skip_errors):
    """The images of ``files`` and the names of the files read (without those that
    ``skip_errors`` left out, whose warnings are passed on to the caller, which prints them)."""
    from ._folders import read_images

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images = read_images(
            files, image_size=image_size, color_mode=color_mode, skip_errors=skip_errors
        )
    skipped = set()
    for warning in caught:
        skipped.update(getattr(warning.message, "skipped", {}))
        warnings.warn(warning.message, stacklevel=3)
    return images, [str(f) for f in files if str(f) not in skipped]


def _flat_image_folder(path: Path | None) -> list | None:
    """The image files of ``path`` when it is a flat folder of images (no class or mask
    sub-folders), which ``skrnn predict`` reads chunk by chunk; else None."""
    from ._folders import image_files

    if path is None or not path.is_dir() or _segmentation_folders(path) is not None:
        return None
    if _transcription_file(path) is not None:
        return None
    if any(child.is_dir() and image_files(child) for child in path.iterdir()):
        return None
    return image_files(path) or None


def _data_options(args) -> dict:
    """The keyword arguments of :func:`load_data` that a command's data options give."""
    return {
        "images": args.images,
        "masks": args.masks,
        "mask_values": args.mask_values,
        "mask_threshold": args.mask_threshold,
        "palette": args.palette,
        "skip_errors": args.skip_errors,
    }


def _data_name(args) -> str:
    """The data as messages name it: DATA, or the --images folder."""
    return str(args.data if args.data is not None else args.images)


# --------------------------------------------------------------------------- parameters
def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets or quotes: ``(64,32),128`` -> 2 values."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse_value(text: str):
    """A Python literal when ``text`` is one (``64``, ``0.5``, ``True``, ``(64, 32)``), else the
    text itself (``adam``)."""
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_params(items) -> dict[str, list]:
    """``["hidden_size=64,128", "lr=0.01"]`` -> ``{"hidden_size": [64, 128], "lr": [0.01]}``."""
    params: dict[str, list] = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not values.strip():
            raise UsageError(f"--param expects NAME=VALUE or NAME=VALUE1,VALUE2,..., got {item!r}.")
        if name in params:
            raise UsageError(f"--param {name} is given twice; list all its values in one --param.")
        params[name] = [parse_value(value) for value in _split_top_level(values)]
    return params


def _message(error: Exception) -> str:
    """An exception's message on one line (sklearn's and KeyError's messages need help)."""
    message = str(error.args[0]) if error.args else str(error)
    return " ".join(message.split())


def _check_params(estimator, grid: list[dict], data=None) -> None:
    """Refuse unknown parameter names, unknown cells, invalid values and, given ``data`` as
    ``(X, y, name)``, data the estimator cannot fit, before any training."""
    from sklearn.base import clone
    from sklearn.utils._param_validation import InvalidParameterError

    known = estimator.get_params()
    for params in grid:
        for name in params:
            if name not in known:
                raise UsageError(
                    f"{type(estimator).__name__} has no parameter {name!r}; valid names are "
                    f"{', '.join(sorted(known))}."
                )
        candidate = clone(estimator).set_params(**params)
        try:
            # The estimator's own checks: types and ranges, cells, and the values fit refuses
            # (e.g. hidden_size=(0,)), so none of them ends in a traceback.
            candidate._check_params()
        except (InvalidParameterError, ValueError, TypeError, KeyError) as error:
            raise UsageError(_message(error)) from None
        if data is not None:
            _check_data(candidate, *data)


def _check_data(estimator, X, y, name: str) -> None:
    """Refuse images and targets that ``estimator`` cannot fit, with the checks its ``fit``
    runs first (shapes, dtypes, finite values, labels), so that no training starts on them."""
    try:
        images = estimator._check_X(X, reset=True)
        if len(images) < 2:
            raise UsageError(f"{name} holds {len(images)} image(s); fitting needs at least 2.")
        targets = estimator._encode_targets(y, images, fitting=True)
        estimator._learn_targets(targets, None)  # e.g. class_weight names classes y lacks
    except (ValueError, TypeError) as error:
        raise UsageError(f"{name} cannot be fitted: {_message(error)}") from None


def _fit(estimator, X, y) -> None:
    """``estimator.fit(X, y)``; a model too large for the memory, a loss that turned NaN
    (e.g. too high a learning rate), or what ``fit`` refuses once it runs (a checkpoint file of
    another fit, or a file that is not a checkpoint) ends in one line, with the estimator's own
    message."""
    from .exceptions import DistributedError, NonFiniteLossError

    try:
        estimator.fit(X, y)
    except (MemoryError, ValueError, NonFiniteLossError, DistributedError) as error:
        raise UsageError(_message(error) or "Training ran out of memory.") from None


def _make_estimator(task: str, random_state):
    from ._classifier import RNNImageClassifier
    from ._recognizer import RNNSequenceRecognizer
    from ._segmenter import RNNSegmenter

    estimator = {"segmentation": RNNSegmenter, "recognition": RNNSequenceRecognizer}.get(
        task, RNNImageClassifier
    )()
    return estimator.set_params(random_state=random_state)


def _reading_scores(y_true, y_pred) -> str:
    """Sequence accuracy and character error rate, as the commands print them."""
    from .metrics import character_error_rate, sequence_accuracy

    accuracy = sequence_accuracy(y_true, y_pred)
    try:
        cer = f"{character_error_rate(y_true, y_pred):.4f}"
    except ValueError:  # every reference is empty
        cer = "undefined (every reference is empty)"
    return f"sequence accuracy {accuracy:.4f}, character error rate {cer}"


def _describe(X) -> str:
    """``n images of shape ...`` (or of one height, for lines of their own widths)."""
    if isinstance(X, list):
        heights = {np.shape(image)[0] for image in X}
        return f"{len(X)} lines of height {', '.join(map(str, sorted(heights)))}"
    return f"{len(X)} images of shape {X.shape[1:]}"


def _single_values(params: dict[str, list]) -> dict:
    for name, values in params.items():
        if len(values) != 1:
            raise UsageError(
                f"--param {name} has {len(values)} values, but train fits one model; give one "
                "value (use `skrnn cv` to compare several)."
            )
    return {name: values[0] for name, values in params.items()}


def _output_file(text: str, option: str, inputs=()) -> Path:
    """The file an option names for writing, checked before any work: refused when it is
    empty or a folder, when its folder does not exist or cannot be written, and when it is
    one of ``inputs`` (see :func:`_check_writable`)."""
    path = Path(text)
    if not text or path.is_dir():
        what = "is a folder" if text else "is empty"
        raise UsageError(f"{option} {text!r} {what}; give the name of a file to write.")
    _check_writable(path, option, path.parent, inputs)
    return path


def _check_writable(path: Path, option: str, folder: Path, inputs) -> None:
    """Refuse ``path`` (the output of ``option``) when ``folder``, where it is written, does
    not exist or cannot be written, or when it is one of ``inputs``, ``(what, path)`` pairs
    (``("the model file", path)``), also through a link: writing it would destroy that input."""
    if not folder.is_dir():
        raise UsageError(f"Cannot write {option} {path}: the folder {folder} does not exist.")
    try:  # the one sure test (permissions, read-only disks, root): make a file there
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UsageError(
            f"Cannot write {option} {path}: the folder {folder} cannot be written "
            f"({error.strerror or error})."
        ) from None
    for what, given in inputs:
        if given is not None and _same_file(path, Path(given)):
            link = "" if os.path.abspath(path) == os.path.abspath(given) else " (through a link)"
            raise UsageError(
                f"{option} {path} is {what} {given}{link}; writing there would destroy it. "
                f"Give another {option}."
            )


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths are, or would be, one file or folder (through links, hard links
    included)."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist
        return False


def _write_error(path, error: OSError) -> UsageError:
    return UsageError(f"Cannot write {path}: {error.strerror or error}.")


def _check_checkpoint(checkpoint, inputs) -> None:
    """Refuse a ``--param checkpoint`` path the fit could not write, or one of ``inputs``,
    before any work; a file there that is not a checkpoint is refused by ``fit`` itself."""
    if isinstance(checkpoint, (str, os.PathLike)):
        _output_file(os.fspath(checkpoint), "--param checkpoint", inputs)


# --------------------------------------------------------------------------- commands
def _cv(args) -> int:
    from sklearn.base import clone
    from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold
    from sklearn.utils import _safe_indexing

    from ._groups import describe_groups, group_folds
    from ._search import (
        best_index,
        cell_grid,
        format_results,
        grid_search,
        halving_search,
        search_results,
    )
    from ._utils import write_atomically
    from .metrics import character_error_rate_scorer, mean_iou_scorer, sequence_accuracy_scorer

    if args.folds < 2:
        raise UsageError(f"--folds must be at least 2, got {args.folds}.")
    params = parse_params(args.param)
    if "cell" in params:
        raise UsageError("choose cells with --cells, not --param cell=...")
    if "checkpoint" in params:
        raise UsageError(
            "cv runs many fits, which cannot share one checkpoint file; --param checkpoint=PATH "
            "is for skrnn train, whose one fit resumes from it."
        )
    if args.factor is not None and not args.halving:
        raise UsageError("--factor is a setting of --halving; add --halving, or leave it out.")
    if args.halving:
        epochs = params.pop("max_epochs", [HALVING_MAX_EPOCHS])
        if len(epochs) != 1:
            raise UsageError(
                "--halving chooses the epochs of each round itself: give max_epochs one value, "
                f"the last round's epochs (e.g. --param max_epochs=30), not {len(epochs)}."
            )
        halving_epochs = epochs[0]
        if (
            not isinstance(halving_epochs, int)
            or isinstance(halving_epochs, bool)
            or halving_epochs < 1
        ):
            raise UsageError(
                f"--halving needs max_epochs to be a positive whole number of epochs, got "
                f"{halving_epochs!r}."
            )
    json_path = _output_file(args.json, "--json", [("the data", args.data)]) if args.json else None
    X, y, task, filenames = load_data(
        args.data, image_size=args.image_size, color_mode=args.color_mode, **_data_options(args)
    )
    groups = None if args.groups is None else _read_groups(args, filenames, len(X))
    estimator = _make_estimator(task, args.random_state)
    param_grid = cell_grid(args.cells, params)
    _check_params(estimator, list(ParameterGrid(param_grid)), (X, y, _data_name(args)))
    if task == "segmentation":
        splitter = KFold(args.folds, shuffle=True, random_state=args.random_state)
        # The table's header then reads "mean IoU": the mean over the folds of their mean IoU.
        scoring, score_name, column = mean_iou_scorer, "mean IoU", "IoU"
    elif task == "recognition" and args.halving:  # a halving search ranks by one metric
        splitter = KFold(args.folds, shuffle=True, random_state=args.random_state)
        scoring, score_name, column = sequence_accuracy_scorer, "sequence accuracy", "seq_accuracy"
    elif task == "recognition":
        splitter = KFold(args.folds, shuffle=True, random_state=args.random_state)
        # Ranked by the share of lines read exactly; the table shows the error rate beside it.
        scoring = {"seq_accuracy": sequence_accuracy_scorer, "CER": character_error_rate_scorer}
        score_name, column = "sequence accuracy and character error rate", "seq_accuracy"
    else:
        splitter = StratifiedKFold(args.folds, shuffle=True, random_state=args.random_state)
        scoring, score_name, column = None, "accuracy", "accuracy"
    try:  # the folds now, so that too many of them stop before any training
        if groups is None:
            folds = list(splitter.split(np.zeros(len(X)), y))
        else:  # whole groups held out: a score on groups that no training fold saw
            folds = group_folds(groups, args.folds)
    except ValueError as error:
        raise UsageError(
            f"--folds {args.folds} does not suit {_data_name(args)}: {_message(error)}"
        ) from None
    for train, _ in folds:  # e.g. too few images, or masks of one label, in a fold
        candidate = clone(estimator).set_params(**ParameterGrid(param_grid)[0])
        _check_data(
            candidate,
            _safe_indexing(X, train),
            _safe_indexing(y, train),
            f"A training fold (--folds {args.folds})",
        )
    if not args.quiet:
        print(f"{_data_name(args)}: {_describe(X)}, {task}, scored by {score_name}.")
        if groups is not None:
            print(
                f"--groups {args.groups}: {describe_groups(groups)}; every fold holds whole "
                "groups out (GroupKFold)."
            )
    if args.halving:
        search = halving_search(
            estimator,
            param_grid,
            cv=folds,
            max_epochs=halving_epochs,
            factor=args.factor or 3,
            scoring=scoring,
            n_jobs=args.n_jobs,
            verbose=0 if args.quiet else 1,
        )
        if not args.quiet:
            print(
                f"Successive halving over {len(ParameterGrid(param_grid))} candidates: each "
                f"round keeps the best 1/{args.factor or 3} of them and gives them "
                f"{args.factor or 3} times the epochs, up to {halving_epochs}."
            )
    else:
        search = grid_search(
            estimator,
            param_grid,
            cv=folds,
            scoring=scoring,
            n_jobs=args.n_jobs,
            verbose=0 if args.quiet else 1,
        )
    _fit(search, X, y)
    print("\n" + format_results(search, score_name=column))
    if args.json:
        rows = search_results(search)
        report = {
            "data": _data_name(args),
            "task": task,
            "estimator": type(estimator).__name__,
            "scoring": score_name,
            "folds": args.folds,
            **({} if groups is None else {"groups": _group_report(args.groups, groups)}),
            "results": rows,
            "best": rows[best_index(search)],
        }
        try:
            write_atomically(json_path, json.dumps(report, indent=2, default=str).encode())
        except OSError as error:
            raise _write_error(json_path, error) from None
        if not args.quiet:
            print(f"Results written to {json_path}")
    return 0


def _read_groups(args, filenames, n_images: int) -> np.ndarray:
    """The group of each of the ``n_images`` images, as ``--groups`` gives it: for images read
    from files (``filenames``), a regular expression over their file names; for an .npz file,
    the name of the array of their groups."""
    from ._groups import groups_from_names

    if filenames is not None:
        try:
            return groups_from_names(filenames, args.groups)
        except ValueError as error:
            raise UsageError(f"--groups {error}") from None
    path = Path(args.data)  # images from files always have names: this is the .npz file
    with np.load(path, allow_pickle=False) as archive:  # load_data has read it already
        if args.groups not in archive.files:
            raise UsageError(
                f"{path} has no array named {args.groups!r} (it has {sorted(archive.files)}); "
                "for an .npz file, --groups names the array of each image's group."
            )
        try:
            groups = archive[args.groups]
        except ValueError as error:  # e.g. an array of Python objects
            raise UsageError(f"Cannot read {args.groups} in {path}: {_message(error)}") from None
    if groups.shape != (n_images,):
        raise UsageError(
            f"{args.groups} in {path} has shape {groups.shape}; --groups needs one group per "
            f"image, an array of shape ({n_images},)."
        )
    return groups


def _group_report(spec: str, groups) -> dict:
    """``--groups`` and the size of each group, for the JSON report."""
    names, sizes = np.unique(groups, return_counts=True)
    return {"spec": spec, "sizes": {str(n): int(s) for n, s in zip(names, sizes, strict=True)}}


def _train(args) -> int:
    params = _single_values(parse_params(args.param))
    reports = True
    if args.distributed:
        from . import distributed

        if not distributed.init():
            raise UsageError(
                "--distributed trains in the processes that torchrun starts; launch the command "
                "as torchrun --nproc-per-node N -m skrnn fit DATA --distributed (or python -m "
                "torch.distributed.run ...)."
            )
        params["distributed"] = True
        reports = distributed.rank() == 0  # one process reports (and writes the model)
        args.quiet = args.quiet or not reports
    output = _output_file(args.output, "-o", [("the data", args.data)])
    _check_checkpoint(params.get("checkpoint"), [("the data", args.data), ("the model -o", output)])
    X, y, task, _ = load_data(
        args.data, image_size=args.image_size, color_mode=args.color_mode, **_data_options(args)
    )
    estimator = _make_estimator(task, args.random_state)
    _check_params(estimator, [params], (X, y, _data_name(args)))
    estimator.set_params(**params)
    if not args.quiet and "verbose" not in params:
        estimator.set_params(verbose=1)  # skorch's progress bar and per-epoch table
    start = time.perf_counter()
    _fit(estimator, X, y)
    elapsed = time.perf_counter() - start
    try:
        estimator.save(output)
    except OSError as error:
        raise _write_error(output, error) from None
    if not args.quiet:
        if task == "recognition":
            scores = _reading_scores(y, estimator.predict(X))
        else:
            metric = "mean IoU" if task == "segmentation" else "accuracy"
            scores = f"{metric} {estimator.score(X, y):.4f}"
        print(f"Trained {estimator!r} on {_describe(X)} in {elapsed:.1f} s; training {scores}.")
    if reports:
        print(f"Model saved to {output}")
    if args.distributed:  # every process ends here together, leaving nothing in flight
        from . import distributed

        distributed.finish()
    return 0


# Images a prediction reads, predicts and writes at a time.
_STREAM_CHUNK = 1024


def _prediction_output(text: str | None, inputs) -> tuple[Path | None, str]:
    """Where ``skrnn predict -o`` writes and how: ``(path, "csv" | "npz" | "png")``; without
    ``-o``, ``(None, "csv")`` (stdout). A folder (one that exists, a name ending in ``/`` or
    one without a suffix) takes one PNG mask per image."""
    if text is None:
        return None, "csv"
    path = Path(text)
    if text and (path.is_dir() or text.endswith(("/", os.sep)) or not path.suffix):
        if path.exists() and not path.is_dir():
            raise UsageError(
                f"-o {text} is a file; give a folder for PNG masks, or a .csv or .npz file."
            )
        _check_writable(path, "-o", path if path.is_dir() else path.parent, inputs)
        return path, "png"
    if text and path.suffix.lower() not in (".csv", ".npz"):
        raise UsageError(
            f"-o must end in .csv or .npz, or name a folder for a segmenter's PNG masks, got "
            f"{path}."
        )
    return _output_file(text, "-o", inputs), path.suffix.lower()[1:]


def _input_paths(args, data_path: Path | None) -> list[tuple[str, Path | None]]:
    """What ``skrnn predict`` reads, as ``(what, path)`` pairs: no output may be one of them."""
    inputs = [("the model file", Path(args.model)), ("the data", data_path)]
    inputs += [("the --images folder", args.images), ("the --masks folder", args.masks)]
    if data_path is not None and data_path.is_dir():
        folders = _segmentation_folders(data_path) or ()
        inputs += [("a folder of the data", folder) for folder in folders]
    return inputs


def _unsuited(args, error: Exception) -> UsageError:
    return UsageError(f"{_data_name(args)} does not suit the model {args.model}: {_message(error)}")


def _folder_chunks(files: list, args, image_size, color_mode):
    """``(images, their files)`` of a folder, a chunk at a time: never the whole in memory;
    every chunk at the depth of the whole folder, read from the files' headers first."""
    from ._folders import common_depth, to_depth

    try:
        depth = common_depth(files)
        for start in range(0, len(files), _STREAM_CHUNK):
            chunk = files[start : start + _STREAM_CHUNK]
            images, names = _read_files(chunk, image_size, color_mode, args.skip_errors)
            yield to_depth(images, depth), names
    except (ValueError, OSError) as error:
        raise UsageError(
            f"Cannot read the images of {_data_name(args)}: {_cli_wording(_message(error))}"
        ) from None


def _array_chunks(X, filenames):
    """``(images, their files or None)`` of images in memory (or an ``.npy`` file, read a chunk
    at a time); one empty chunk for no images, which the model's checks refuse."""
    for start in range(0, max(len(X), 1), _STREAM_CHUNK):
        names = None if filenames is None else filenames[start : start + _STREAM_CHUNK]
        yield X[start : start + _STREAM_CHUNK], names


def _write_predictions(model, chunks, count: int, writer, with_proba: bool, args) -> int:
    """Predict ``chunks`` of ``(images, files)``, ``count`` images in all, and hand each chunk
    to ``writer`` (one of :mod:`skrnn._prediction_files`); the number of images predicted. The
    first chunk is checked against the model before the progress bar starts."""
    from tqdm.auto import tqdm

    from ._recognizer import RNNSequenceRecognizer

    as_text = isinstance(model, RNNSequenceRecognizer)  # text, not Python objects, in an .npz
    first = next(chunks)
    try:  # the model's own input checks: shapes, dtypes, finite values
        model._check_X(first[0], reset=False)
    except ValueError as error:
        raise _unsuited(args, error) from None
    done = 0
    try:
        with writer as write:
            for images, names in tqdm(
                itertools.chain([first], chunks),
                total=-(-count // _STREAM_CHUNK),
                desc="predicting",
                unit="batch",
                disable=args.quiet,
            ):
                try:
                    if with_proba:
                        proba = model.predict_proba(images)
                        predicted = model.classes_[proba.argmax(axis=1)]
                    else:
                        proba, predicted = None, model.predict(images)
                except ValueError as error:
                    raise _unsuited(args, error) from None
                try:
                    write(done, predicted.astype(str) if as_text else predicted, proba, names)
                except ValueError as error:
                    raise UsageError(f"Cannot write -o {args.output}: {_message(error)}.") from None
                done += len(predicted)
    except OSError as error:
        raise _write_error(args.output or "the standard output", error) from None
    return done


def _png_writer(model, output: Path, filenames, count: int, palette):
    """The writer of one PNG mask per image into ``output``, after the checks that it can
    write every one: labels a PNG holds, and one mask name per image."""
    from ._prediction_files import check_png_labels, mask_file_name, png_masks

    try:
        import PIL  # noqa: F401 - the masks' encoder, needed before a folder is made
    except ImportError:  # pragma: no cover - pillow is installed in the test env
        raise UsageError("Writing PNG masks needs Pillow: pip install 'skrnn[images]'.") from None
    try:
        check_png_labels(model.classes_, palette)
    except ValueError as error:
        raise UsageError(f"Cannot write -o {output}: {_message(error)}.") from None
    seen = {}
    for name in filenames or ():
        mask = mask_file_name(name)
        if mask in seen:
            raise UsageError(
                f"-o {output}: the masks of {seen[mask]} and {name} would both be written to "
                f"{output / mask}; give the images different names."
            )
        seen[mask] = name
    return png_masks(output, model.classes_, count=count, palette=palette)


def _load_predictor(model_path: Path):
    """The model of ``skrnn predict``: one that predicts."""
    from ._persistence import load

    if not model_path.is_file():
        raise UsageError(f"The model file {model_path} does not exist.")
    try:
        model = load(model_path)
    except (ValueError, OSError) as error:
        raise UsageError(f"Cannot load the model {model_path}: {error}") from None
    if not hasattr(model, "predict"):
        raise UsageError(
            f"{model_path} holds an {type(model).__name__}, which does not predict; skrnn "
            "predict applies classifiers, regressors and segmenters."
        )
    return model


def _predict(args) -> int:
    from ._prediction_files import csv_rows, npz_arrays
    from ._recognizer import RNNSequenceRecognizer
    from ._segmenter import RNNSegmenter

    model_path = Path(args.model)
    data_path = None if args.data is None else Path(args.data)
    output, kind = _prediction_output(args.output, _input_paths(args, data_path))
    model = _load_predictor(model_path)
    segmenting = isinstance(model, RNNSegmenter)
    reading = isinstance(model, RNNSequenceRecognizer)
    if kind == "png" and not segmenting:
        raise UsageError(
            f"-o {args.output!r} {'is' if output.is_dir() else 'names'} a folder, which takes one "
            f"PNG mask per image of a segmenter, but {model_path} holds an "
            f"{type(model).__name__}; give the name of a .csv or .npz file to write."
        )
    if segmenting and kind == "csv":
        raise UsageError(
            "A segmenter predicts masks; write them with -o masks.npz, or as one PNG file per "
            "image with -o FOLDER/."
        )
    height, width, channels = model.image_shape_
    image_size = args.image_size or (None if segmenting else (height, width))
    color_mode = args.color_mode or ("rgb" if channels == 3 else "grayscale")
    options = _data_options(args)
    # With -o FOLDER/, --palette colours the masks written; it reads masks where DATA has them.
    palette = args.palette if kind == "png" else None
    if palette is not None and args.masks is None:
        if data_path is None or not data_path.is_dir() or not _segmentation_folders(data_path):
            options["palette"] = None
    if args.images is None:
        source = data_path
    else:  # a folder of images alone streams; with DATA or --masks, load_data reads them
        source = Path(args.images) if args.data is None and args.masks is None else None
    files = None if reading else _flat_image_folder(source)
    score = None
    if files is not None:
        _refuse_mask_options(options)
        chunks = _folder_chunks(files, args, image_size, color_mode)
        count, filenames = len(files), files
    else:
        X, y, filenames = _predict_data(args, model, data_path, image_size, color_mode, options)
        # Targets that cannot be scored stop here, not after the predictions' progress bar.
        try:
            score = model.score(X, y) if y is not None and not args.quiet else None
            if reading and score is not None:
                score = _reading_scores(y, model.predict(X))
        except ValueError as error:
            raise _unsuited(args, error) from None
        chunks, count = _array_chunks(X, filenames), len(X)
    with_proba = hasattr(model, "predict_proba") and not segmenting
    if kind == "png":
        writer = _png_writer(model, output, filenames, count, palette)
    else:
        classes = model.classes_ if with_proba else None
        write_to = npz_arrays if kind == "npz" else csv_rows
        writer = write_to(output, classes, with_files=filenames is not None, with_proba=with_proba)
    done = _write_predictions(model, chunks, count, writer, with_proba, args)
    # Messages go to stderr when the predictions themselves go to stdout.
    info = sys.stderr if output is None else sys.stdout
    if isinstance(score, str):
        print(f"on {_data_name(args)}: {score}", file=info)
    elif score is not None:
        metric = "mean IoU" if segmenting else "accuracy"
        print(f"{metric} on {_data_name(args)}: {score:.4f}", file=info)
    if output is not None and not args.quiet:
        written = "masks written to" if kind == "png" else "predictions written to"
        print(f"{done} {written} {output}", file=info)
    return 0


def _predict_data(args, model, data_path, image_size, color_mode, options):
    """``(X, y or None, filenames or None)`` that ``skrnn predict`` reads whole: an ``.npz``,
    an ``.npy`` (read a chunk at a time), a labelled folder or lines of text; targets that do
    not suit the model are refused."""
    from ._recognizer import RNNSequenceRecognizer
    from ._segmenter import RNNSegmenter

    segmenting = isinstance(model, RNNSegmenter)
    reading = isinstance(model, RNNSequenceRecognizer)
    if reading and data_path is not None and data_path.is_dir():
        # Lines keep their widths: a folder is read at the model's height, with its
        # transcription file if it has one.
        if _transcription_file(data_path) is not None:
            X, y, task, filenames = _load_lines(data_path, image_size, color_mode)
        else:
            X, y, task, filenames = _unlabelled_lines(data_path, image_size[0], color_mode)
    else:
        X, y, task, filenames = load_data(
            args.data,
            image_size=image_size,
            color_mode=color_mode,
            require_target=False,
            **options,
        )
    if y is not None and (task == "recognition") != reading:
        raise UsageError(
            f"{_data_name(args)} holds {task} targets, but {args.model} holds an "
            f"{type(model).__name__}; give data without targets or with the targets it predicts."
        )
    if y is not None and (task == "segmentation") != segmenting:
        held, model_kind = ("labels", "a segmenter") if segmenting else ("masks", "a classifier")
        raise UsageError(
            f"{_data_name(args)} holds {held}, but {args.model} is {model_kind}; give data "
            f"without targets or with {'masks' if segmenting else 'class labels'}."
        )
    if y is not None and np.ndim(y) and len(y) != len(X):
        raise UsageError(
            f"{_data_name(args)} has {len(X)} images but {len(y)} targets; give one per image."
        )
    return X, y, filenames


def _demo(args) -> int:
    from ._demo import run_demo

    output = _output_file(args.output, "-o")
    try:
        from matplotlib.figure import Figure
    except ImportError:  # run_demo says that it draws no figure
        pass
    else:
        formats = Figure().canvas.get_supported_filetypes()
        if output.suffix and output.suffix[1:].lower() not in formats:
            raise UsageError(
                f"-o {output}: matplotlib cannot write {output.suffix} files; give a name "
                f"ending in one of .{', .'.join(sorted(formats))}."
            )
    run_demo(output=args.output, quiet=args.quiet, n_jobs=args.n_jobs, max_epochs=args.max_epochs)
    return 0


# --------------------------------------------------------------------------- parser
def _image_size(text: str) -> tuple[int, int]:
    from ._validation import check_int_pair

    try:
        sizes = [int(part) for part in text.lower().replace("x", ",").split(",")]
        return check_int_pair(sizes[0] if len(sizes) == 1 else sizes, "--image-size")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHT,WIDTH or SIZE, got {text!r}") from None


def _positive_int(text: str) -> int:
    if _whole_number(text, 1) is None:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _halving_factor(text: str) -> int:
    if _whole_number(text, 2) is None:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of at least 2 (each round keeps 1/FACTOR), got {text!r}"
        )
    return int(text)


def _whole_number(text: str, least: int) -> int | None:
    """``text`` as an int of at least ``least``, or None."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= least else None


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of parallel jobs (1, 2, ...; -1 for all cores), got {text!r}"
        )
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to {2**32 - 1}, got {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers V1,V2,..., got {text!r}") from None


def _colour(text: str) -> tuple[int, int, int]:
    try:
        colour = tuple(int(part) for part in text.split(","))
    except ValueError:
        colour = ()
    if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
        raise argparse.ArgumentTypeError(f"expected a colour R,G,B (0 to 255), got {text!r}")
    return colour


def _add_data_options(parser, *, predict=False):
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="instead of DATA: a folder of images, paired with --masks by file name"
        + (" (alone: images to predict)" if predict else ""),
    )
    parser.add_argument(
        "--masks",
        metavar="DIR",
        help="with --images: the folder of their label masks (segmentation)",
    )
    parser.add_argument(
        "--image-size",
        type=_image_size,
        default=None,
        metavar="H,W",
        help="resize images read from a folder to H,W pixels"
        + (" (default: the model's size)" if predict else ""),
    )
    parser.add_argument(
        "--color-mode",
        choices=["auto", "grayscale", "rgb"],
        default=None if predict else "auto",
        help="how to read images from a folder"
        + (
            " (default: as the model was trained)"
            if predict
            else " (default: auto, RGB when any image is in colour, else grayscale)"
        ),
    )
    masks = parser.add_mutually_exclusive_group()
    masks.add_argument(
        "--mask-values",
        type=_int_list,
        metavar="V1,V2",
        help="the label values of masks read from files, e.g. 0,255: every pixel takes the "
        "nearest (for JPEG masks, whose compression smears the labels)",
    )
    masks.add_argument(
        "--mask-threshold",
        type=float,
        metavar="T",
        help="binary masks: pixels above T become label 1, the others label 0",
    )
    masks.add_argument(
        "--palette",
        type=_colour,
        nargs="+",
        metavar="R,G,B",
        help="colour-coded masks: the colour of label 0, 1, 2, ..."
        + (" (also the colours of the PNG masks -o FOLDER/ writes)" if predict else ""),
    )
    parser.add_argument(
        "--skip-errors",
        action="store_true",
        help="leave out image files of a folder that cannot be read (each listed in a "
        "warning) instead of stopping at the first",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the results")


PARAM_HELP = (
    "an estimator parameter, NAME=VALUE; values are Python literals where possible "
    "(64, 0.01, True, (64, 32)), else strings; repeat --param for more parameters"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skrnn", description="Recurrent neural networks over images, the scikit-learn way."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    demo = commands.add_parser(
        "demo",
        help="grid search over cells on the bundled digits",
        description=(
            "Grid search over the rnn, lstm and gru cells with 3-fold cross-validation on the "
            "bundled handwritten digits, then the held-out accuracy of the best cell and a "
            "figure of its confusion matrix and training curve."
        ),
    )
    demo.add_argument(
        "-o", "--output", default="skrnn_demo.png", help="where to save the figure (PNG)"
    )
    demo.add_argument(
        "--n-jobs", type=_n_jobs, default=None, help="parallel fits (default: all cores)"
    )
    demo.add_argument(
        "--max-epochs", type=_positive_int, default=25, help="epochs per fit (default: 25)"
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="print only the results")
    demo.set_defaults(handler=_demo)

    cv = commands.add_parser(
        "cv",
        help="compare cells and parameters by cross-validation on your data",
        description=(
            "Cross-validate RNNImageClassifier (accuracy) or, for masks, RNNSegmenter (mean "
            "IoU) for every combination of --cells and --param values, as one GridSearchCV "
            "over every setting and fold, and print the mean and standard deviation of the "
            "score, the mean fit time and the rank of each. With --groups, every fold holds "
            "whole groups out."
        ),
        epilog="example: skrnn cv data.npz --cells rnn gru --param hidden_size=32,64 "
        "--param max_epochs=10 --json results.json",
    )
    cv.add_argument("data", metavar="DATA", nargs="?", help=DATA_HELP)
    cv.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"], help="cells to compare")
    cv.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    cv.add_argument(
        "--param",
        action="append",
        metavar="NAME=V1,V2",
        help=PARAM_HELP + "; several values make a grid",
    )
    cv.add_argument("--n-jobs", type=_n_jobs, default=None, help="parallel fits (default: 1)")
    cv.add_argument(
        "--halving",
        action="store_true",
        help="successive halving over the epochs (scikit-learn's HalvingGridSearchCV with "
        f"resource='max_epochs'): short fits of every setting, the best go on longer, up to "
        f"max_epochs (default: {HALVING_MAX_EPOCHS})",
    )
    cv.add_argument(
        "--factor",
        type=_halving_factor,
        default=None,
        help="with --halving: each round keeps 1/FACTOR of the settings (default: 3)",
    )
    cv.add_argument(
        "--groups",
        metavar="SPEC",
        help="hold whole groups of images out in every fold (drives, writers, patients: "
        "scikit-learn's GroupKFold): for an .npz DATA the name of its array of each image's "
        "group; for images read from files a regular expression searched in each file name, "
        "whose first group in brackets (or whole match) is the group, e.g. '^([^_]+)_' for the "
        "part before the first _",
    )
    cv.add_argument("--random-state", type=_seed, default=0, help="seed (default: 0)")
    cv.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    _add_data_options(cv)
    cv.set_defaults(handler=_cv)

    train = commands.add_parser(
        "train",
        aliases=["fit"],
        help="fit a model on your data and save it",
        description=(
            "Fit RNNImageClassifier on labels or RNNSegmenter on masks and save it with "
            "estimator.save (a safe model file: safetensors weights and JSON; read it back "
            "with skrnn.load or `skrnn predict`)."
        ),
        epilog=(
            "example: skrnn train data.npz -o model.skrnn --param cell=lstm; in 4 processes: "
            "torchrun --nproc-per-node 4 -m skrnn fit data.npz --distributed"
        ),
    )
    train.add_argument("data", metavar="DATA", nargs="?", help=DATA_HELP)
    train.add_argument(
        "-o", "--output", default="model.skrnn", help="model file (default: model.skrnn)"
    )
    train.add_argument("--param", action="append", metavar="NAME=VALUE", help=PARAM_HELP)
    train.add_argument("--random-state", type=_seed, default=0, help="seed (default: 0)")
    train.add_argument(
        "--distributed",
        action="store_true",
        help=(
            "train one model in the processes torchrun starts (data parallelism; launch as "
            "torchrun --nproc-per-node N -m skrnn fit ... --distributed); only the first "
            "process prints and writes the model"
        ),
    )
    _add_data_options(train)
    train.set_defaults(handler=_train)

    predict = commands.add_parser(
        "predict",
        help="predict with a saved model",
        description=(
            "Load a model saved by `skrnn train` (or estimator.save) and predict DATA: labels "
            "and class probabilities as CSV (to stdout without -o), or masks in an .npz or as "
            "one PNG file per image. When DATA has labels or masks, the score is reported too."
        ),
        epilog="example: skrnn predict model.skrnn new_images/ -o predictions.csv",
    )
    predict.add_argument("model", metavar="MODEL", help="a model file")
    predict.add_argument(
        "data",
        metavar="DATA",
        nargs="?",
        help=DATA_HELP.replace("or a folder:", "or a folder of images,"),
    )
    predict.add_argument(
        "-o",
        "--output",
        help="predictions.csv or predictions.npz (default: CSV to stdout); for a segmenter, "
        "masks.npz or a FOLDER/ that gets one PNG mask per image, named after it",
    )
    _add_data_options(predict, predict=True)
    predict.set_defaults(handler=_predict)

    export = commands.add_parser(
        "export",
        help="export a saved model to ONNX",
        description=(
            "Write a model saved by `skrnn train` (or estimator.save) as one ONNX graph from "
            "raw images to labels and probabilities (classifiers), values (regressors) or "
            "per-pixel labels and probabilities (segmenters), checked against the model in "
            "onnxruntime. Needs the export extra: pip install 'skrnn[export]'."
        ),
        epilog="example: skrnn export model.skrnn -o model.onnx --input-dtype uint8",
    )
    export.add_argument("model", metavar="MODEL", help="a model file")
    export.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    export.add_argument(
        "--input-dtype",
        default=None,
        metavar="DTYPE",
        help="the dtype of the graph's images, e.g. uint8 or float32 (default: float32)",
    )
    export.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    export.set_defaults(handler=_export)
    return parser


def _export(args) -> int:
    from ._persistence import load

    model_path = Path(args.model)
    output = _output_file(args.output, "-o", [("the model file", model_path)])
    if not model_path.is_file():
        raise UsageError(f"The model file {model_path} does not exist.")
    try:
        from ._export import export_onnx
    except ImportError as error:  # pragma: no cover - the export extra is missing
        raise UsageError(f"export needs pip install 'skrnn[export]' ({error}).") from None
    try:
        model = load(model_path)
    except (ValueError, OSError) as error:
        raise UsageError(f"Cannot load the model {model_path}: {error}") from None
    from ._utils import open_atomically

    try:
        with open_atomically(output, "wb") as file:  # a failed export leaves the old file
            export_onnx(model, file, input_dtype=args.input_dtype)
    except ImportError as error:
        raise UsageError(f"export needs pip install 'skrnn[export]' ({error}).") from None
    except (TypeError, ValueError) as error:
        raise UsageError(f"Cannot export {model_path}: {error}") from None
    except OSError as error:
        raise _write_error(output, error) from None
    if not args.quiet:
        print(
            f"wrote {output} ({type(model).__name__}, input dtype {args.input_dtype or 'float32'})"
        )
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line each, without the source line Python prints under them."""
    print(f"skrnn: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.handler(args)
        except UsageError as error:
            print(f"skrnn {args.command}: error: {' '.join(str(error).split())}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
