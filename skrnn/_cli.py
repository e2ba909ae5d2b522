"""The ``skrnn`` command line (also ``python -m skrnn``).

Commands: ``demo`` (the bundled digits), ``cv`` (a cross-validated comparison of cells and
parameters on your data), ``train`` (fit and save a model) and ``predict`` (apply a saved
model). Mistakes in the arguments end with exit status 2 and a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import re
import sys
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
    given = [
        f"--{name.replace('_', '-')}" for name, value in mask_options.items() if value is not None
    ]
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
    if given and (folders is None or folders[1] is None):
        raise UsageError(
            f"{' and '.join(given)} read masks from image files; give a folder of masks "
            "(DATA with images/ and masks/, NAME/ and NAMEannot/, or --images and --masks)."
        )
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
    """``estimator.fit(X, y)``; a model too large for the memory, or a loss that turned NaN
    (e.g. too high a learning rate), ends in one line, with the estimator's own message."""
    from .exceptions import DistributedError, NonFiniteLossError

    try:
        estimator.fit(X, y)
    except (MemoryError, NonFiniteLossError, DistributedError) as error:
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


def _output_file(text: str, option: str) -> Path:
    """The file an option names for writing, refused when it is a folder or in none."""
    path = Path(text)
    if not text or path.is_dir():
        what = "is a folder" if text else "is empty"
        raise UsageError(f"{option} {text!r} {what}; give the name of a file to write.")
    if not path.parent.is_dir():
        raise UsageError(f"Cannot write {option} {path}: the folder {path.parent} does not exist.")
    return path


def _write_error(path: Path, error: OSError) -> UsageError:
    return UsageError(f"Cannot write {path}: {error.strerror or error}.")


# --------------------------------------------------------------------------- commands
def _cv(args) -> int:
    from sklearn.base import clone
    from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold
    from sklearn.utils import _safe_indexing

    from ._search import (
        best_index,
        cell_grid,
        format_results,
        grid_search,
        halving_search,
        search_results,
    )
    from .metrics import character_error_rate_scorer, mean_iou_scorer, sequence_accuracy_scorer

    if args.folds < 2:
        raise UsageError(f"--folds must be at least 2, got {args.folds}.")
    params = parse_params(args.param)
    if "cell" in params:
        raise UsageError("choose cells with --cells, not --param cell=...")
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
    json_path = _output_file(args.json, "--json") if args.json else None
    X, y, task, _ = load_data(
        args.data, image_size=args.image_size, color_mode=args.color_mode, **_data_options(args)
    )
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
        folds = list(splitter.split(np.zeros(len(X)), y))
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
            "results": rows,
            "best": rows[best_index(search)],
        }
        try:
            json_path.write_text(json.dumps(report, indent=2, default=str))
        except OSError as error:
            raise _write_error(json_path, error) from None
        if not args.quiet:
            print(f"Results written to {json_path}")
    return 0


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
    output = _output_file(args.output, "-o")
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


@contextlib.contextmanager
def _csv_rows(output, model, with_files: bool, with_proba: bool):
    """A CSV of predictions (to ``output``, or stdout) opened with its header; yields
    ``write(first_index, predictions, proba or None, filenames or None)``, which adds rows."""
    import csv

    try:
        handle = output.open("w", newline="") if output else sys.stdout
    except OSError as error:
        raise _write_error(output, error) from None
    try:
        writer = csv.writer(handle)
        header = ["index"] + (["filename"] if with_files else []) + ["prediction"]
        header += [f"proba_{label}" for label in model.classes_] if with_proba else []
        writer.writerow(header)

        def write(first, predicted, proba, filenames):
            for i, label in enumerate(predicted):
                row = [first + i] + ([filenames[i]] if with_files else []) + [label]
                row += [f"{p:.6g}" for p in proba[i]] if with_proba else []
                writer.writerow(row)

        yield write
    finally:
        if output:
            handle.close()


# Images a streamed prediction reads at a time.
_STREAM_CHUNK = 1024


def _predict_folder(model, model_path, files, args, output, image_size, color_mode) -> int:
    """``skrnn predict`` on a flat folder of images: read, predict and write the rows chunk by
    chunk, so a folder larger than the memory never is in memory (an ``.npz`` keeps only the
    predictions until it is written)."""
    from tqdm.auto import tqdm

    with_proba = hasattr(model, "predict_proba")
    npz = output is not None and output.suffix.lower() == ".npz"
    kept = {"predictions": [], "proba": [], "filenames": []}
    done = 0

    def read(part):
        try:
            return _read_files(part, image_size, color_mode, args.skip_errors)
        except (ValueError, OSError) as error:
            raise UsageError(f"Cannot read the images of {args.data}: {_message(error)}") from None

    # Images that do not suit the model stop before the progress bar starts.
    first = read(files[:_STREAM_CHUNK])
    try:
        if len(first[0]):
            model._check_X(first[0], reset=False)
    except ValueError as error:
        raise UsageError(
            f"{_data_name(args)} does not suit the model {model_path}: {_message(error)}"
        ) from None
    with contextlib.ExitStack() as stack:
        write = None
        if not npz:
            write = stack.enter_context(_csv_rows(output, model, True, with_proba))
        for start in tqdm(
            range(0, len(files), _STREAM_CHUNK),
            desc="predicting",
            unit="batch",
            disable=args.quiet,
        ):
            images, names = first if start == 0 else read(files[start : start + _STREAM_CHUNK])
            if not len(images):
                continue
            try:
                if with_proba:
                    proba = model.predict_proba(images)
                    predicted = model.classes_[proba.argmax(axis=1)]
                else:
                    proba, predicted = None, model.predict(images)
            except ValueError as error:
                raise UsageError(
                    f"{_data_name(args)} does not suit the model {model_path}: {_message(error)}"
                ) from None
            if npz:
                for key, value in (("predictions", predicted), ("proba", proba)):
                    if value is not None:
                        kept[key].append(value)
                kept["filenames"] += names
            else:
                write(done, predicted, proba, names)
            done += len(names)
    if npz:
        arrays = {"predictions": np.concatenate(kept["predictions"] or [np.empty(0)])}
        if with_proba and kept["proba"]:
            arrays["proba"], arrays["classes"] = np.concatenate(kept["proba"]), model.classes_
        arrays["filenames"] = np.asarray(kept["filenames"])
        try:
            np.savez_compressed(output, **arrays)
        except OSError as error:
            raise _write_error(output, error) from None
    if output is not None and not args.quiet:
        print(f"{done} predictions written to {output}")
    return 0


def _predict(args) -> int:
    from tqdm.auto import tqdm

    from ._persistence import load
    from ._recognizer import RNNSequenceRecognizer
    from ._segmenter import RNNSegmenter

    model_path = Path(args.model)
    output = _output_file(args.output, "-o") if args.output is not None else None
    if output is not None and output.suffix.lower() not in (".csv", ".npz"):
        raise UsageError(f"-o must end in .csv or .npz, got {output}.")
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
    segmenting = isinstance(model, RNNSegmenter)
    reading = isinstance(model, RNNSequenceRecognizer)
    height, width, channels = model.image_shape_
    image_size = args.image_size or (None if segmenting else (height, width))
    color_mode = args.color_mode or ("rgb" if channels == 3 else "grayscale")
    data_path = None if args.data is None else Path(args.data)
    files = None if segmenting or reading or args.images else _flat_image_folder(data_path)
    if files is not None:
        return _predict_folder(model, model_path, files, args, output, image_size, color_mode)
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
            **_data_options(args),
        )
    if segmenting and (output is None or output.suffix.lower() != ".npz"):
        raise UsageError("A segmenter predicts masks; write them with -o predictions.npz.")
    # Targets that cannot be scored stop here, not after the predictions' progress bar.
    if y is not None and (task == "recognition") != reading:
        raise UsageError(
            f"{_data_name(args)} holds {task} targets, but {model_path} holds an "
            f"{type(model).__name__}; give data without targets or with the targets it predicts."
        )
    if y is not None and (task == "segmentation") != segmenting:
        held, model_kind = ("labels", "a segmenter") if segmenting else ("masks", "a classifier")
        raise UsageError(
            f"{_data_name(args)} holds {held}, but {model_path} is {model_kind}; give data "
            f"without targets or with {'masks' if segmenting else 'class labels'}."
        )
    if y is not None and np.ndim(y) and len(y) != len(X):
        raise UsageError(
            f"{_data_name(args)} has {len(X)} images but {len(y)} targets; give one per image."
        )

    chunk = 1024
    predictions, probabilities = [], []
    with_proba = hasattr(model, "predict_proba") and not segmenting
    try:  # the model's own input checks: shapes, dtypes, finite values, known labels
        # Input that does not suit the model stops before the progress bar starts: all of a
        # labelled set (it is in memory, and scored anyway), else the first chunk (an .npy
        # file is read chunk by chunk).
        score = model.score(X, y) if y is not None and not args.quiet else None
        if reading and score is not None:
            score = _reading_scores(y, model.predict(X))
        model._check_X(X[:chunk], reset=False)
        for start in tqdm(
            range(0, len(X), chunk), desc="predicting", unit="batch", disable=args.quiet
        ):
            batch = X[start : start + chunk]
            if with_proba:
                proba = model.predict_proba(batch)
                probabilities.append(proba)
                predictions.append(model.classes_[proba.argmax(axis=1)])
            else:
                predictions.append(model.predict(batch))
    except ValueError as error:
        raise UsageError(
            f"{_data_name(args)} does not suit the model {model_path}: {_message(error)}"
        ) from None
    predicted = np.concatenate(predictions)
    if reading:  # text, not Python objects, in an .npz
        predicted = predicted.astype(str)
    proba = np.concatenate(probabilities) if probabilities else None
    # Messages go to stderr when the predictions themselves go to stdout.
    info = sys.stderr if output is None else sys.stdout
    if isinstance(score, str):
        print(f"on {_data_name(args)}: {score}", file=info)
    elif score is not None:
        metric = "mean IoU" if segmenting else "accuracy"
        print(f"{metric} on {_data_name(args)}: {score:.4f}", file=info)

    if output is not None and output.suffix.lower() == ".npz":
        arrays = {"predictions": predicted}
        if proba is not None:
            arrays["proba"], arrays["classes"] = proba, model.classes_
        if filenames is not None:
            arrays["filenames"] = np.asarray(filenames)
        try:
            np.savez_compressed(output, **arrays)
        except OSError as error:
            raise _write_error(output, error) from None
    else:
        with _csv_rows(output, model, filenames is not None, proba is not None) as write:
            write(0, predicted, proba, filenames)
    if output is not None and not args.quiet:
        print(f"{len(predicted)} predictions written to {output}", file=info)
    return 0


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
        help="colour-coded masks: the colour of label 0, 1, 2, ...",
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
            "score, the mean fit time and the rank of each."
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
            "and class probabilities as CSV (to stdout without -o), or masks in an .npz. "
            "When DATA has labels or masks, the score is reported too."
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
        "-o", "--output", help="predictions.csv or predictions.npz (default: CSV to stdout)"
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
    output = _output_file(args.output, "-o")
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
    try:
        export_onnx(model, output, input_dtype=args.input_dtype)
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
