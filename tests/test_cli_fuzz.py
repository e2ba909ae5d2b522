"""The command line never answers a user's mistake with a traceback.

A seeded fuzz runs ``skrnn`` in-process over combinations of commands, data that is missing or
of the wrong kind, bad option and ``--param`` values and unknown options. Every run must exit
with status 0 or 2, and a failure must say so in one ``skrnn ...: error: ...`` line. Below it,
one regression test per kind of mistake the fuzz found.
"""

from __future__ import annotations

import random
import time
import zipfile

import numpy as np
import pytest

from skrnn._cli import main
from skrnn.datasets import load_digits_images, make_shapes

N_CASES = 1000
SEED = 20240616


# --------------------------------------------------------------------------- the files
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Good and bad inputs, by name: data files and folders, model files, output paths."""
    Image = pytest.importorskip("PIL.Image")
    root = tmp_path_factory.mktemp("fuzz")
    X, y = load_digits_images(n_class=3, return_X_y=True)
    X, y = X[:30], y[:30]
    shapes_X, shapes_Y = make_shapes(n_samples=6, image_size=8, random_state=0)
    rng = np.random.default_rng(0)

    def npz(name, **arrays):
        np.savez(root / name, **arrays)
        return root / name

    paths = {
        "missing": root / "nowhere" / "missing.npz",
        "missing_dir": root / "nowhere",
        "digits": npz("digits.npz", X=X, y=y),
        "shapes": npz("shapes.npz", X=shapes_X, Y=shapes_Y),
        "wrong_keys": npz("wrong_keys.npz", a=X, b=y),
        "X_only": npz("X_only.npz", X=X),
        "y_only": npz("y_only.npz", y=y),
        "X_strings": npz("X_strings.npz", X=np.full((30, 8, 8), "a"), y=y),
        "X_complex": npz("X_complex.npz", X=X.astype(complex), y=y),
        "X_bool": npz("X_bool.npz", X=X > 8, y=y),
        "X_1d": npz("X_1d.npz", X=X[:, 0, 0], y=y),
        "X_2d": npz("X_2d.npz", X=X.reshape(30, -1), y=y),
        "X_5d": npz("X_5d.npz", X=X[:, :, :, None, None], y=y),
        "X_nan": npz("X_nan.npz", X=np.full((30, 8, 8), np.nan), y=y),
        "X_empty": npz("X_empty.npz", X=X[:0], y=y[:0]),
        "X_one": npz("X_one.npz", X=X[:1], y=y[:1]),
        "X_zero_size": npz("X_zero_size.npz", X=np.zeros((30, 0, 8)), y=y),
        "y_short": npz("y_short.npz", X=X, y=y[:5]),
        "y_2d": npz("y_2d.npz", X=X, y=np.stack([y, y], 1)),
        "y_float": npz("y_float.npz", X=X, y=rng.random(30)),
        "y_nan": npz("y_nan.npz", X=X, y=np.where(y == 0, np.nan, y)),
        "y_one_class": npz("y_one_class.npz", X=X, y=np.zeros(30, int)),
        "y_strings": npz("y_strings.npz", X=X, y=np.array(["a", "b", "c"])[y]),
        "Y_wrong_shape": npz("Y_wrong_shape.npz", X=shapes_X, Y=shapes_Y[:, :4]),
        "Y_short": npz("Y_short.npz", X=shapes_X, Y=shapes_Y[:2]),
        "Y_float": npz("Y_float.npz", X=shapes_X, Y=shapes_Y + 0.5),
        "X_scalar": npz("X_scalar.npz", X=np.float32(3), y=y),
        "y_scalar": npz("y_scalar.npz", X=X, y=np.int64(1)),
        "scalar_npy": root / "scalar.npy",
        "images_npy": root / "images.npy",
        "vector_npy": root / "vector.npy",
        "empty_file": root / "empty.npz",
        "text": root / "notes.txt",
        "text_npz": root / "text.npz",
        "text_npy": root / "text.npy",
        "empty_dir": root / "empty_dir",
        "no_images": root / "no_images",
        "bad_png": root / "bad_png",
        "mixed_sizes": root / "mixed_sizes",
        "flat_images": root / "flat_images",
        "seg": root / "seg",
        "model_dir": root / "a_folder.skrnn",
        "zip_model": root / "zip.skrnn",
    }
    np.save(paths["images_npy"], X)
    np.save(paths["vector_npy"], y)
    np.save(paths["scalar_npy"], np.float32(1))
    paths["empty_file"].write_bytes(b"")
    paths["text"].write_text("hello\n")
    paths["text_npz"].write_text("not an archive\n")
    paths["text_npy"].write_text("not an array\n")
    paths["empty_dir"].mkdir()
    paths["model_dir"].mkdir()
    for name in ("cats", "dogs"):  # class folders without a single image
        (paths["no_images"] / name).mkdir(parents=True)
        (paths["no_images"] / name / "readme.txt").write_text("no images here")
        (paths["bad_png"] / name).mkdir(parents=True)
        (paths["bad_png"] / name / "0.png").write_text("not a png")
        (paths["bad_png"] / name / "1.png").write_bytes(b"")
        (paths["mixed_sizes"] / name).mkdir(parents=True)
    for i, size in enumerate((6, 8, 10)):
        pixels = rng.integers(0, 255, (size, size)).astype(np.uint8)
        Image.fromarray(pixels).save(paths["mixed_sizes"] / ("cats", "dogs")[i % 2] / f"{i}.png")
    paths["flat_images"].mkdir()
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (8, 8)).astype(np.uint8)).save(
            paths["flat_images"] / f"{i}.png"
        )
    for folder in ("images", "masks"):
        (paths["seg"] / folder).mkdir(parents=True)
    for i in range(3):
        mask = np.zeros((8, 8), np.uint8)
        mask[2:6, 2:6] = 255
        Image.fromarray(mask).save(paths["seg"] / "masks" / f"{i}.png")
        Image.fromarray(mask // 2 + 20).save(paths["seg"] / "images" / f"{i}.png")
    with zipfile.ZipFile(paths["zip_model"], "w") as archive:
        archive.writestr("hello.txt", "not a model")

    from skrnn import RNNImageClassifier, RNNImageGenerator, RNNSegmenter

    tiny = dict(hidden_size=4, max_epochs=1, random_state=0)
    paths["model"] = root / "digits.skrnn"
    RNNImageClassifier(**tiny).fit(X, y).save(paths["model"])
    paths["seg_model"] = root / "shapes.skrnn"
    RNNSegmenter(**tiny, num_layers=1, head=None).fit(shapes_X, shapes_Y).save(paths["seg_model"])
    paths["generator"] = root / "generator.skrnn"
    RNNImageGenerator(**tiny).fit(X // 4).save(paths["generator"])
    return paths


# --------------------------------------------------------------------------- the generator
DATA = [
    "missing", "missing_dir", "digits", "shapes", "wrong_keys", "X_only", "y_only",
    "X_strings", "X_complex", "X_bool", "X_1d", "X_2d", "X_5d", "X_nan", "X_empty", "X_one",
    "X_zero_size", "y_short", "y_2d", "y_float", "y_nan", "y_one_class", "y_strings",
    "Y_wrong_shape", "Y_short", "Y_float", "X_scalar", "y_scalar", "images_npy", "vector_npy",
    "scalar_npy",
    "empty_file", "text", "text_npz", "text_npy", "empty_dir", "no_images", "bad_png",
    "mixed_sizes", "flat_images", "seg", "model", "model_dir",
]  # fmt: skip
MODELS = [
    "model",
    "seg_model",
    "generator",
    "text",
    "digits",
    "zip_model",
    "model_dir",
    "missing",
    "empty_file",
]
GOOD_PARAMS = {"hidden_size": "4", "max_epochs": "1", "num_layers": "1", "batch_size": "64"}
BAD_PARAMS = [
    "hidden_size=a", "hidden_size=0", "hidden_size=-3", "hidden_size=(4,0)", "hidden_size=4.5",
    "hidden_size=[]", "hidden_size=()", "hidden_size=(4,4,4)", "hidden_size=None",
    "hidden_size=True", "lr=-1", "lr=0", "lr=nan", "lr=abc", "lr=1e999", "max_epochs=0",
    "max_epochs=-1", "max_epochs=1.5", "max_epochs=abc", "cell=nope", "cell=3", "cell=None",
    "batch_size=0", "batch_size=-5", "batch_size=a", "num_layers=0", "num_layers=x",
    "optimizer=nope", "optimizer=3", "device=nope", "device=cuda:9", "verbose=abc",
    "callbacks=[1]", "callbacks=abc", "head=abc", "head=(8,-1)", "head=(0,)",
    "random_state=-1", "random_state=abc", "nope=1", "hiden_size=4", "_private=1",
    "hidden_size", "=4", "hidden_size=", "a b=1", "hidden_size=4,,8", "hidden_size=(4,",
    "hidden_size=4,8", "lr={1: 2}", "max_epochs=[1]", "lr=1j", "bidirectional=maybe",
    "augment=nope", "dropout=2", "dropout=-0.5", "weight_decay=-1", "class_weight=abc",
    "ignore_label=abc", "ignore_label=1.5", "patience=-2", "warm_start=7",
    "class_weight={9: 1}", "lr=1e300", "loss=binary_cross_entropy", "image_shape=(3,3)",
    "embedding_dim=3", "n_threads=0", "device='cuda:0'",
]  # fmt: skip
BAD_DATA_OPTIONS = [
    ["--image-size", "0x5"], ["--image-size", "-1"], ["--image-size", "abc"],
    ["--image-size", "5x5x5"], ["--image-size", ""], ["--image-size", "1e9"],
    ["--image-size", "99999999,99999999"], ["--color-mode", "nope"], ["--palette", "300,0,0"],
    ["--palette", "a,b,c"], ["--palette", "0,0"], ["--palette", "0,0,0", "0,0,0"],
    ["--mask-values", "a,b"], ["--mask-values", ""], ["--mask-values", "0,-1"],
    ["--mask-values", "5"], ["--mask-threshold", "abc"], ["--mask-threshold", "nan"],
    ["--mask-threshold", "-1"], ["--images", "{empty_dir}"], ["--masks", "{empty_dir}"],
    ["--images", "{missing_dir}", "--masks", "{missing_dir}"],
    ["--images", "{seg}/images", "--masks", "{empty_dir}"],
    ["--images", "{text}", "--masks", "{text}"], ["--images", "{flat_images}"],
    ["--image-size", "4"], ["--color-mode", "rgb", "--image-size", "8"],
]  # fmt: skip
GOOD_DATA_OPTIONS = [
    [], ["--image-size", "8"], ["--image-size", "8x8"], ["--color-mode", "grayscale"],
    ["--color-mode", "rgb"], ["--mask-threshold", "127"], ["--mask-values", "0,255"],
    ["--palette", "0,0,0", "255,255,255"],
]  # fmt: skip
CV_OPTIONS = [
    ["--folds", "-1"], ["--folds", "0"], ["--folds", "1"], ["--folds", "abc"],
    ["--folds", "100"], ["--folds", "11"], ["--cells", "nope"], ["--cells", "rnn", "nope"],
    ["--cells", ""], ["--cells"], ["--n-jobs", "0"], ["--n-jobs", "abc"],
    ["--random-state", "-1"], ["--random-state", "abc"], ["--random-state", str(2**40)],
    ["--json", "{missing_dir}/r.json"], ["--json", "{empty_dir}"], ["--json", "{text}/r.json"],
    ["--param", "cell=gru"],
]  # fmt: skip
TRAIN_OPTIONS = [
    ["-o", "{missing_dir}/m.skrnn"], ["-o", "{empty_dir}"], ["-o", "{text}/m.skrnn"],
    ["-o", ""], ["--random-state", "-1"], ["--random-state", "abc"],
    ["--random-state", str(2**40)],
]  # fmt: skip
# A folder is a segmenter's output (PNG masks): one of the run's own, so no input changes.
PREDICT_OPTIONS = [
    ["-o", "{missing_dir}/p.csv"], ["-o", "{out}"], ["-o", "{out}/p.txt"],
    ["-o", "{text}/p.csv"], ["-o", "{empty_dir}.npz"], ["-o", ""], ["-o", "{out}/p.npz"],
    ["-o", "{out}/p.csv"], ["-o", "{out}/masks/"],
]  # fmt: skip
DEMO_BAD = [
    ["--max-epochs", "0"], ["--max-epochs", "-1"], ["--max-epochs", "abc"],
    ["--n-jobs", "0"], ["--n-jobs", "abc"], ["-o", "{missing_dir}/demo.png"],
    ["-o", "{empty_dir}"], ["-o", "{out}/demo.nope"], ["-o", "{text}/demo.png"], ["-o", ""],
]  # fmt: skip
UNKNOWN = [["--nope"], ["-z"], ["--param"], ["--folds"], ["--max-epochs"], ["extra", "args"]]


def fuzz_argv(rng: random.Random, files: dict, out) -> list[str]:
    """One command line: mostly a user's mistake, now and then a tiny run that works."""
    command = rng.choice(["cv", "train", "train", "predict", "predict", "demo", "dance", None])
    names = {name: str(path) for name, path in files.items()} | {"out": str(out)}

    def fill(options):
        return [option.format(**names) for option in options]

    if command is None:
        return fill(rng.choice(UNKNOWN))
    argv = [command]
    if command == "demo":
        argv += fill(rng.choice(DEMO_BAD))
        if rng.random() < 0.3:
            argv += fill(rng.choice(DEMO_BAD))
        return [*argv, "--quiet"]
    good_data = ["digits", "shapes", "seg"]
    if command == "predict":
        argv.append(names[rng.choice(MODELS[:2] if rng.random() < 0.5 else MODELS)])
        good_data += ["flat_images", "images_npy"]
    if rng.random() < 0.9:
        argv.append(names[rng.choice(good_data if rng.random() < 0.4 else DATA)])
    options = rng.choice([[[]]] * 5 + [GOOD_DATA_OPTIONS, BAD_DATA_OPTIONS])
    argv += fill(rng.choice(options))
    if command == "predict":
        argv += fill(rng.choice(PREDICT_OPTIONS + [[]]))
    else:
        params = dict(GOOD_PARAMS)
        bad = []
        for _ in range(rng.choice([0, 0, 1, 2])):
            item = rng.choice(BAD_PARAMS)
            name, sep, _ = item.partition("=")
            if sep and name in params and rng.random() < 0.8:
                del params[name]  # else: the name is given twice
            bad.append(item)
        for item in [f"{name}={value}" for name, value in params.items()] + bad:
            argv += ["--param", item]
        extra = CV_OPTIONS if command == "cv" else TRAIN_OPTIONS
        if rng.random() < 0.4:
            argv += fill(rng.choice(extra))
        if command == "cv" and "--folds" not in argv:
            argv += ["--folds", "2", "--cells", "gru"]
        if command == "train" and "-o" not in argv:
            argv += ["-o", str(out / "m.skrnn")]
    if rng.random() < 0.15:
        argv += fill(rng.choice(UNKNOWN))
    if rng.random() < 0.8:
        argv.append("-q")
    return argv


def run_cli(argv, capsys) -> tuple[object, str, str]:
    """``(status, stdout, stderr)`` of one in-process run; status is the exception it raised
    when it raised one other than SystemExit."""
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    except Exception as error:  # noqa: BLE001 - the fuzz reports it with its argv
        status = error
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def problem(argv, status, out, err) -> str | None:
    """What is wrong with one run's outcome, or None when it is as promised."""
    if isinstance(status, Exception):
        return f"raised {type(status).__name__}: {status}"
    if status not in (0, 2):
        return f"exit status {status!r}"
    for text in (out, err):
        if "Traceback" in text or 'File "' in text:
            return f"a traceback: {text[-300:]!r}"
    lines = [line for line in err.splitlines() if not line.startswith("skrnn: warning: ")]
    if status == 2 and not (lines and lines[-1].startswith("skrnn") and ": error: " in lines[-1]):
        return f"no error line: {err[-300:]!r}"
    if status == 2 and not lines[0].startswith("usage: ") and len(lines) != 1:
        return f"{len(lines)} lines on stderr: {err[-300:]!r}"
    return None


def refuse_to_run_the_demo(**kwargs):
    raise AssertionError(f"the demo ran with {kwargs}, but every fuzzed demo has a mistake")


def test_no_argument_combination_ends_in_a_traceback(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("skrnn._demo.run_demo", refuse_to_run_the_demo)
    rng = random.Random(SEED)
    problems, statuses, durations = [], {0: 0, 2: 0}, []
    for case in range(N_CASES):
        out = tmp_path / str(case)
        out.mkdir()
        argv = fuzz_argv(rng, files, out)
        start = time.perf_counter()
        status, stdout, stderr = run_cli(argv, capsys)
        durations.append((time.perf_counter() - start, argv))
        found = problem(argv, status, stdout, stderr)
        if found:
            problems.append(f"skrnn {' '.join(argv)}\n    -> {found}")
        elif status in statuses:
            statuses[status] += 1
    slowest = "\n".join(f"{s:.1f} s: skrnn {' '.join(argv)}" for s, argv in sorted(durations)[-5:])
    assert not problems, f"{len(problems)} of {N_CASES} cases:\n" + "\n".join(problems)
    assert statuses[0] >= 10 and statuses[2] >= 200, (statuses, slowest)  # both outcomes
    assert sum(seconds for seconds, _ in durations) < 60, f"the fuzz is slow; slowest:\n{slowest}"


# --------------------------------------------------------------------------- what the fuzz found
def one_error_line(capsys) -> str:
    """The one line a refused command wrote on stderr (warnings aside)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("skrnn: warning: ")]
    if lines and lines[0].startswith("usage: "):  # argparse's errors: the usage, then one line
        lines = lines[-1:]
    assert len(lines) == 1 and ": error: " in lines[0], err
    assert "Traceback" not in err
    return lines[0]


def exits_2(argv, files, capsys) -> str:
    """Run ``skrnn`` on ``argv`` (``{name}`` replaced by the file of that name); the error."""
    for name, path in files.items():
        argv = [arg.replace(f"{{{name}}}", str(path)) for arg in argv]
    try:
        status = main(argv)
    except SystemExit as exit_info:
        status = exit_info.code
    assert status == 2
    return one_error_line(capsys)


TRAIN = ["train", "-q", "--param", "hidden_size=4", "--param", "max_epochs=1"]


@pytest.mark.parametrize(
    "data, message",
    [
        ("X_strings", "X_strings.npz cannot be fitted: dtype='numeric' is not compatible"),
        ("X_5d", "X has 5 dimension(s)"),
        ("X_nan", "Input X contains NaN"),
        ("X_empty", "0 sample(s)"),
        ("y_short", "X has 30, y has 5"),
        ("y_one_class", "needs at least two classes"),
        ("y_float", "Unknown label type: continuous"),
        ("Y_wrong_shape", "y must hold one label mask per image"),
        ("Y_float", "y must hold integer class labels"),
        ("X_one", "holds 1 image(s); fitting needs at least 2"),
    ],
)
def test_data_that_fit_refuses_stops_before_training(data, message, files, tmp_path, capsys):
    error = exits_2([*TRAIN, "{" + data + "}", "-o", str(tmp_path / "m.skrnn")], files, capsys)
    assert message in error
    assert not (tmp_path / "m.skrnn").exists()


@pytest.mark.parametrize(
    "data, message",
    [("X_scalar", "X in {path} is a single number"), ("y_scalar", "y in {path} is a single")],
)
def test_an_npz_of_single_numbers_is_refused(data, message, files, capsys):
    error = exits_2(["cv", "{" + data + "}"], files, capsys)
    assert message.format(path=files[data]) in error


def test_a_bad_parameter_for_this_data_is_refused_before_training(files, tmp_path, capsys):
    argv = [*TRAIN, "{digits}", "-o", str(tmp_path / "m.skrnn"), "--param", "class_weight={9: 1}"]
    assert "class_weight names classes [9]" in exits_2(argv, files, capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{shapes}", "--folds", "100"], "--folds 100 does not suit"),
        (["{digits}", "--folds", "20"], "--folds 20 does not suit"),
        (["{seg}", "--folds", "2"], "A training fold (--folds 2) holds 1 image(s)"),
    ],
)
def test_cv_refuses_folds_it_cannot_fit(argv, message, files, capsys):
    assert message in exits_2(["cv", *argv, "--cells", "gru", *TRAIN[2:]], files, capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cv", "{digits}", "--n-jobs", "0"], "expected a number of parallel jobs"),
        (["cv", "{digits}", "--random-state", "-1"], "expected a seed from 0 to 4294967295"),
        (["train", "{digits}", "--random-state", str(2**40)], "expected a seed"),
        (["demo", "--max-epochs", "0"], "--max-epochs: expected a positive integer, got '0'"),
        (["demo", "--n-jobs", "0"], "expected a number of parallel jobs"),
    ],
)
def test_bad_jobs_seeds_and_epochs_are_argument_errors(argv, message, files, capsys):
    assert message in exits_2(argv, files, capsys)


@pytest.mark.parametrize(
    "output, message",
    [
        ("{missing_dir}/demo.png", "the folder {missing_dir} does not exist"),
        ("{empty_dir}", "is a folder; give the name of a file to write"),
        ("", "-o '' is empty"),
        ("{empty_dir}/demo.nope", "matplotlib cannot write .nope files"),
    ],
)
def test_demo_checks_its_figure_path_before_running(output, message, files, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr("skrnn._demo.run_demo", refuse_to_run_the_demo)
    message = message.format(**{name: str(path) for name, path in files.items()})
    assert message in exits_2(["demo", "-o", output], files, capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        ([*TRAIN, "{digits}", "-o", "{empty_dir}"], "is a folder"),
        ([*TRAIN, "{digits}", "-o", ""], "-o '' is empty"),
        (["cv", "{digits}", "--json", "{missing_dir}/r.json"], "does not exist"),
        (["cv", "{digits}", "--json", "{empty_dir}"], "--json '{empty_dir}' is a folder"),
        (["predict", "{model}", "{digits}", "-o", "{text}/p.csv"], "does not exist"),
        (["predict", "{model}", "{digits}", "-o", "{empty_dir}"], "is a folder"),
    ],
)
def test_outputs_are_checked_before_any_work(argv, message, files, monkeypatch, capsys):
    def no_fit(*args, **kwargs):
        raise AssertionError("trained although the output cannot be written")

    monkeypatch.setattr("skrnn._cli._fit", no_fit)
    names = {name: str(path) for name, path in files.items()}
    assert message.format(**names) in exits_2(argv, files, capsys)


@pytest.mark.parametrize(
    "model, data, message",
    [
        ("generator", "digits", "{generator} holds an RNNImageGenerator, which does not predict"),
        ("model", "shapes", "shapes.npz holds masks, but {model} is a classifier"),
        ("seg_model", "digits", "digits.npz holds labels, but {seg_model} is a segmenter"),
        ("model", "y_short", "y_short.npz has 30 images but 5 targets"),
        ("model", "vector_npy", "does not suit the model {model}:"),
        ("model", "X_strings", "does not suit the model {model}: dtype='numeric'"),
        ("model", "y_strings", "y contains labels ['a', 'b', 'c'] that are not among"),
    ],
)
def test_predict_refuses_data_that_does_not_suit_the_model(
    model, data, message, files, tmp_path, capsys
):
    names = {name: str(path) for name, path in files.items()}
    argv = ["predict", "{" + model + "}", "{" + data + "}", "-o", str(tmp_path / "p.npz")]
    error = exits_2(argv, files, capsys)
    assert message.format(**names) in error


def test_predict_checks_the_images_before_its_progress_bar(files, capsys):
    argv = ["predict", str(files["model"]), str(files["flat_images"]), "--image-size", "4"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "predicting" not in err
    assert err.count("\n") == 1 and "fitted on (8, 8)" in err


def test_a_model_too_large_for_the_memory_ends_in_one_line(files, tmp_path, monkeypatch, capsys):
    def out_of_memory(self, X, y):
        raise MemoryError("Building the model ran out of memory on cpu. Make the model smaller.")

    monkeypatch.setattr("skrnn.RNNImageClassifier.fit", out_of_memory)
    error = exits_2([*TRAIN, "{digits}", "-o", str(tmp_path / "m.skrnn")], files, capsys)
    assert error.endswith("ran out of memory on cpu. Make the model smaller.")


def test_a_diverging_fit_ends_in_one_line(files, tmp_path, capsys):
    argv = [*TRAIN, "{digits}", "-o", str(tmp_path / "m.skrnn"), "--param", "lr=1e300"]
    assert "became NaN or infinite in epoch 1" in exits_2(argv, files, capsys)


def test_warnings_are_printed_as_one_line_each(files, tmp_path, capsys):
    X, y = np.load(files["digits"])["X"], np.load(files["digits"])["y"]
    y = np.where(np.arange(len(y)) < 2, 3, y)  # class 3 has 2 images, fewer than 3 folds
    np.savez(tmp_path / "rare.npz", X=X, y=y)
    argv = ["cv", str(tmp_path / "rare.npz"), "--folds", "3", "--cells", "gru", "-q"]
    assert main([*argv, "--param", "hidden_size=4", "--param", "max_epochs=1"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("skrnn: warning: The least populated class in y has only 2 members")
    assert all(line.startswith("skrnn: warning: ") for line in err.splitlines())
