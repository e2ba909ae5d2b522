import csv
import json

import numpy as np
import pytest

import skrnn
from skrnn._cli import main, parse_params
from skrnn.datasets import make_shapes

TINY = ["--param", "hidden_size=4", "--param", "max_epochs=1", "--param", "batch_size=64"]


@pytest.fixture(scope="module")
def shapes_npz(tmp_path_factory):
    X, Y = make_shapes(n_samples=8, image_size=16, random_state=0)
    path = tmp_path_factory.mktemp("data") / "shapes.npz"
    np.savez(path, X=X, Y=Y)
    return path


SEG_TINY = ["--param", "hidden_size=4", "--param", "num_layers=1", "--param", "head=None"]
SEG_TINY += ["--param", "max_epochs=1"]


@pytest.mark.parametrize("command", ["cv", "train", "predict", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: skrnn " + command in capsys.readouterr().out


def test_param_values_are_python_literals_or_strings():
    params = parse_params(["hidden_size=64,128", "head=(16, 8),None", "optimizer=adam", "lr=1e-2"])
    assert params == {
        "hidden_size": [64, 128],
        "head": [(16, 8), None],
        "optimizer": ["adam"],
        "lr": [0.01],
    }


def results_table(out: str) -> tuple[str, list[list[str]]]:
    """The header and the rows (split into words) of the table that ``skrnn cv`` prints."""
    lines = out.strip().splitlines()
    header = max(i for i, line in enumerate(lines) if "fit time (s)" in line)
    return lines[header], [line.split() for line in lines[header + 1 :]]


def test_cv_compares_every_cell_and_grid_point(digits_npz, tmp_path, capsys):
    report = tmp_path / "cv.json"
    argv = ["cv", str(digits_npz), "--cells", "rnn", "gru", "--folds", "2", "--quiet"]
    argv += ["--param", "hidden_size=4,6", "--param", "max_epochs=1", "--json", str(report)]
    assert main(argv) == 0
    header, rows = results_table(capsys.readouterr().out)
    assert header.split() == "cell hidden_size mean accuracy std fit time (s) rank".split()
    assert [row[:2] for row in rows] == [["rnn", "4"], ["rnn", "6"], ["gru", "4"], ["gru", "6"]]
    [best_row] = [row for row in rows if row[-2:] == ["<-", "best"]]

    results = json.loads(report.read_text())
    assert results["task"] == "classification"
    assert len(results["results"]) == 4
    first = results["results"][0]
    assert first["params"] == {"cell": "rnn", "hidden_size": 4, "max_epochs": 1}
    assert len(first["fold_scores"]) == 2
    assert first["mean_score"] == pytest.approx(np.mean(first["fold_scores"]))
    assert 0 <= first["mean_score"] <= 1 and first["mean_fit_time"] > 0
    best = results["best"]
    assert best["rank"] == 1
    assert best["mean_score"] == max(row["mean_score"] for row in results["results"])
    cell, hidden_size = best["params"]["cell"], best["params"]["hidden_size"]
    assert best_row[:3] == [cell, str(hidden_size), f"{best['mean_score']:.4f}"]


def test_cv_says_how_many_fits_it_runs(digits_npz, capsys):
    argv = ["cv", str(digits_npz), "--cells", "rnn", "lstm", "gru", "--folds", "2", *TINY]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Fitting 2 folds for each of 3 candidates, totalling 6 fits" in out
    _, rows = results_table(out)
    assert [row[0] for row in rows] == ["rnn", "lstm", "gru"]


def test_cv_on_masks_scores_segmenters_by_mean_iou(shapes_npz, capsys):
    argv = ["cv", str(shapes_npz), "--cells", "gru", "--folds", "2", "--quiet", *SEG_TINY]
    assert main(argv) == 0
    header, [row] = results_table(capsys.readouterr().out)
    assert header.split()[:3] == ["cell", "mean", "IoU"]
    assert row[0] == "gru" and row[-2:] == ["<-", "best"]
    assert 0 <= float(row[1]) <= 1


def test_train_then_predict_to_csv_and_npz(digits_npz, tmp_path, capsys):
    model = tmp_path / "digits.skrnn"
    argv = ["train", str(digits_npz), "-o", str(model), "--quiet", *TINY, "--param", "cell=lstm"]
    assert main(argv) == 0
    assert model.is_file()

    predictions = tmp_path / "predictions.csv"
    assert main(["predict", str(model), str(digits_npz), "-o", str(predictions), "-q"]) == 0
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 90
    assert set(rows[0]) == {"index", "prediction", "proba_0", "proba_1", "proba_2"}
    assert sum(float(rows[0][f"proba_{k}"]) for k in range(3)) == pytest.approx(1, abs=1e-4)

    from skrnn import load

    X = np.load(digits_npz)["X"]
    expected = load(model).predict(X)
    assert [int(row["prediction"]) for row in rows] == expected.tolist()

    as_npz = tmp_path / "predictions.npz"
    assert main(["predict", str(model), str(digits_npz), "-o", str(as_npz)]) == 0
    assert "accuracy on" in capsys.readouterr().out
    saved = np.load(as_npz)
    np.testing.assert_array_equal(saved["predictions"], expected)
    assert saved["proba"].shape == (90, 3)


def test_predict_writes_csv_to_stdout_without_output(digits_npz, tmp_path, capsys):
    model = tmp_path / "digits.skrnn"
    assert main(["train", str(digits_npz), "-o", str(model), "-q", *TINY]) == 0
    capsys.readouterr()
    assert main(["predict", str(model), str(digits_npz)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("index,prediction,proba_0")
    assert len(captured.out.splitlines()) == 91
    assert "accuracy on" in captured.err


def test_train_and_predict_from_image_folders(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for name, low in (("dark", 0), ("light", 150)):
        for i in range(6):
            pixels = rng.integers(low, low + 100, (8, 8)).astype(np.uint8)
            (tmp_path / "train" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(tmp_path / "train" / name / f"{i}.png")
    (tmp_path / "new").mkdir()
    for i in range(3):  # larger, unlabelled: predict resizes them to the model's 8x8
        Image.fromarray(rng.integers(0, 255, (16, 16)).astype(np.uint8)).save(
            tmp_path / "new" / f"n{i}.png"
        )
    model = tmp_path / "m.skrnn"
    assert main(["train", str(tmp_path / "train"), "-o", str(model), "-q", *TINY]) == 0
    out = tmp_path / "p.csv"
    assert main(["predict", str(model), str(tmp_path / "new"), "-o", str(out), "-q"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [row["filename"].rsplit("/", 1)[-1] for row in rows] == ["n0.png", "n1.png", "n2.png"]
    assert {row["prediction"] for row in rows} <= {"0", "1"}


def test_segmenter_train_and_predict_masks(shapes_npz, tmp_path):
    model = tmp_path / "seg.skrnn"
    assert main(["train", str(shapes_npz), "-o", str(model), "-q", *SEG_TINY]) == 0
    out = tmp_path / "masks.npz"
    assert main(["predict", str(model), str(shapes_npz), "-o", str(out), "-q"]) == 0
    assert np.load(out)["predictions"].shape == (8, 16, 16)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cv", "missing.npz"], "missing.npz does not exist"),
        (["cv", "{digits}", "--param", "hidden_size"], "--param expects NAME=VALUE"),
        (["cv", "{digits}", "--param", "hiden_size=4"], "has no parameter 'hiden_size'"),
        (["cv", "{digits}", "--cells", "rnn", "cnn"], "cnn"),
        (["cv", "{digits}", "--param", "hidden_size=-3"], "hidden_size"),
        (["train", "{digits}", "--param", "hidden_size=4,8"], "has 2 values"),
        (["train", "{digits}", "--param", "hidden_size=(0,)"], "positive ints, got (0,)"),
        (["train", "{digits}", "--param", "head=(8, -1)"], "head must be a tuple"),
        (["train", "{text}"], "is not an .npz file or a folder"),
        (["predict", "{text}", "{digits}"], "Cannot load the model"),
        (["predict", "nomodel.skrnn", "{digits}"], "does not exist"),
    ],
)
def test_argument_errors_exit_2_with_one_line(argv, message, digits_npz, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    argv = [arg.format(digits=digits_npz, text=text) for arg in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


# --------------------------------------------------------------------------- image and mask folders
def write_segmentation_pairs(images_dir, masks_dir, *, n=6, size=12, mask_suffix=".png"):
    """Bright squares on dark photos, masks of 0 (background) and 255 (square)."""
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    images_dir.mkdir(parents=True)
    masks_dir.mkdir(parents=True)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        top, left = rng.integers(0, size // 2, 2)
        mask[top : top + size // 2, left : left + size // 2] = 255
        photo = np.stack([mask // 2 + rng.integers(0, 60, mask.shape).astype(np.uint8)] * 3, -1)
        Image.fromarray(photo).save(images_dir / f"f{i}.png")
        Image.fromarray(mask).save(masks_dir / f"f{i}{mask_suffix}", quality=70)


def test_train_and_predict_on_the_segnet_layout(tmp_path, capsys):
    root = tmp_path / "CamVid"
    write_segmentation_pairs(root / "train", root / "trainannot")
    model = tmp_path / "seg.skrnn"
    assert main(["train", str(root), "-o", str(model), "-q", *SEG_TINY]) == 0

    from skrnn import load

    segmenter = load(model)
    assert segmenter.classes_.tolist() == [0, 255]
    assert segmenter.image_shape_ == (12, 12, 3)  # colour photos stay in colour by default

    # NAME/ beside NAMEannot/ is a labelled set too: predict scores it.
    write_segmentation_pairs(root / "val", root / "valannot", n=3)
    out = tmp_path / "masks.npz"
    assert main(["predict", str(model), str(root / "val"), "-o", str(out)]) == 0
    assert f"mean IoU on {root / 'val'}: " in capsys.readouterr().out
    saved = np.load(out)
    assert saved["predictions"].shape == (3, 12, 12)
    assert [name.rsplit("/", 1)[-1] for name in saved["filenames"]] == [
        "f0.png",
        "f1.png",
        "f2.png",
    ]


def test_train_with_images_and_masks_options(tmp_path):
    write_segmentation_pairs(tmp_path / "photos", tmp_path / "labels")
    model = tmp_path / "seg.skrnn"
    argv = ["train", "--images", str(tmp_path / "photos"), "--masks", str(tmp_path / "labels")]
    assert main([*argv, "-o", str(model), "-q", "--color-mode", "grayscale", *SEG_TINY]) == 0
    from skrnn import load

    assert load(model).image_shape_ == (12, 12, 1)


def test_jpeg_masks_stop_with_the_options_that_fix_them(tmp_path, capsys):
    write_segmentation_pairs(tmp_path / "images", tmp_path / "masks", mask_suffix=".jpg")
    argv = ["train", str(tmp_path), "-o", str(tmp_path / "m.skrnn"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "are JPEG files" in err
    assert "--mask-values 0,255" in err and "--mask-threshold 127" in err

    assert main([*argv, "--mask-threshold", "127", *SEG_TINY]) == 0
    from skrnn import load

    assert load(tmp_path / "m.skrnn").classes_.tolist() == [0, 1]


def test_load_data_prints_the_loaders_warnings_in_command_line_terms(tmp_path, capsys):
    from skrnn._cli import load_data

    Image = pytest.importorskip("PIL.Image")
    rows, cols = np.mgrid[:400, :400]
    disc = Image.fromarray(
        (((rows - 200) ** 2 + (cols - 180) ** 2 < 120**2) * 255).astype(np.uint8)
    )
    small = disc.resize((40, 40), Image.Resampling.BOX)  # soft edges: dozens of grey levels
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for i in range(2):
        small.save(tmp_path / "masks" / f"{i}.png")
        small.save(tmp_path / "images" / f"{i}.png")
    X, Y, task, _ = load_data(tmp_path)
    assert task == "segmentation" and X.shape == (2, 40, 40)
    err = capsys.readouterr().err
    assert err.startswith("skrnn: warning: ")
    assert "--mask-values 0,255" in err and "--mask-threshold 127" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "{seg}", "--images", "{seg}/images"], "give DATA or --images DIR --masks DIR"),
        (["train", "--masks", "{seg}/masks"], "--masks needs --images"),
        (["train", "--images", "{seg}/images"], "needs --masks DIR"),
        (["train"], "no data given"),
        (["train", "{many}"], "holds several image and mask folders (train/ + trainannot/, val/"),
        (["train", "{digits}", "--mask-values", "0,255"], "--mask-values read masks from image"),
        (["train", "{seg}", "--mask-values", "0,1,2"], "far from all of --mask-values 0,1,2"),
        (["train", "{seg}", "--palette", "0,0,0"], "not in the palette: (255, 255, 255)"),
    ],
)
def test_folder_argument_errors_exit_2_with_one_line(argv, message, digits_npz, tmp_path, capsys):
    seg, many = tmp_path / "seg", tmp_path / "many"
    write_segmentation_pairs(seg / "images", seg / "masks", n=2)
    for name in ("train", "val"):
        write_segmentation_pairs(many / name, many / f"{name}annot", n=1)
    argv = [arg.format(seg=seg, many=many, digits=digits_npz) for arg in argv]
    assert main([*argv, "-o", str(tmp_path / "m.skrnn")]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert len(captured.err.strip().splitlines()) == 1


def test_a_bad_palette_colour_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "data/", "--palette", "0,0"])
    assert exit_info.value.code == 2
    assert "expected a colour R,G,B (0 to 255), got '0,0'" in capsys.readouterr().err


def test_skip_errors_leaves_unreadable_files_out_of_train_and_predict(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for name, low in (("dark", 0), ("light", 150)):
        (tmp_path / "train" / name).mkdir(parents=True)
        for i in range(5):
            pixels = rng.integers(low, low + 100, (8, 8)).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "train" / name / f"{i}.png")
    (tmp_path / "train" / "dark" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    model = tmp_path / "m.skrnn"
    train = ["train", str(tmp_path / "train"), "-o", str(model), "-q", *TINY]
    assert main(train) == 2
    error = capsys.readouterr().err.strip()
    assert "broken.png" in error and "pass --skip-errors" in error and "\n" not in error
    assert main([*train, "--skip-errors"]) == 0
    assert "broken.png" in capsys.readouterr().err  # one warning line names it
    (tmp_path / "new").mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (8, 8)).astype(np.uint8)).save(
            tmp_path / "new" / f"n{i}.png"
        )
    (tmp_path / "new" / "a_broken.png").write_bytes(b"")
    assert main(["predict", str(model), str(tmp_path / "new")]) == 2
    capsys.readouterr()
    out = tmp_path / "p.csv"
    assert (
        main(["predict", str(model), str(tmp_path / "new"), "--skip-errors", "-o", str(out)]) == 0
    )
    assert "a_broken.png" in capsys.readouterr().err
    rows = list(csv.DictReader(out.open()))
    assert [row["filename"].rsplit("/", 1)[-1] for row in rows] == ["n0.png", "n1.png"]


def test_export_writes_an_onnx_graph_that_predicts_like_the_model(digits_npz, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    model, graph = tmp_path / "digits.skrnn", tmp_path / "digits.onnx"
    assert main(["train", str(digits_npz), "-o", str(model), "-q", *TINY]) == 0
    assert main(["export", str(model), "-o", str(graph), "--input-dtype", "uint8"]) == 0
    assert "wrote" in capsys.readouterr().out
    X = np.load(digits_npz)["X"][:10].astype(np.uint8)
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    labels = session.run(["label"], {"images": X})[0]
    np.testing.assert_array_equal(labels, skrnn.load(model).predict(X))
    assert main(["export", str(tmp_path / "missing.skrnn"), "-o", str(graph)]) == 2
    assert main(["export", str(digits_npz), "-o", str(graph)]) == 2
    assert main(["export", str(model), "-o", str(tmp_path / "no" / "x.onnx")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("skrnn export: error:") for line in errors)


def test_recognition_data_trains_a_recognizer_and_reports_cer(tmp_path, capsys):
    from skrnn.datasets import make_digit_strings

    X, y = make_digit_strings(60, min_length=1, max_length=3, random_state=0)
    data = tmp_path / "lines.npz"
    np.savez(data, X=X, strings=np.asarray(y, dtype=str))
    model = tmp_path / "reader.skrnn"
    params = ["--param", "max_epochs=2", "--param", "hidden_size=8", "--param", "conv=(4,)"]
    assert main(["train", str(data), "-o", str(model), *params]) == 0
    out = capsys.readouterr().out
    assert "RNNSequenceRecognizer" in out and "character error rate" in out
    assert main(["cv", str(data), "--folds", "2", "--cells", "gru", "-q", *params]) == 0
    table = capsys.readouterr().out
    assert "mean seq_accuracy" in table and "mean CER" in table
    predictions = tmp_path / "read.csv"
    assert main(["predict", str(model), str(data), "-o", str(predictions)]) == 0
    assert "sequence accuracy" in capsys.readouterr().out
    rows = list(csv.DictReader(predictions.open()))
    assert len(rows) == 60 and all(set(row["prediction"]) <= set("0123456789") for row in rows)
    # a folder of line images with a transcription file
    Image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "lines"
    folder.mkdir()
    with (folder / "labels.csv").open("w") as file:
        file.write("file,text\n")
        for i in range(4):
            Image.fromarray((X[i] * 255 / 16).astype(np.uint8)).save(folder / f"{i}.png")
            file.write(f"{i}.png,{y[i]}\n")
    assert main(["predict", str(model), str(folder), "-o", str(predictions)]) == 0
    assert "on " in capsys.readouterr().out
    (folder / "labels.csv").unlink()
    assert main(["predict", str(model), str(folder), "-o", str(predictions), "-q"]) == 0
    assert [row["filename"].rsplit("/", 1)[-1] for row in csv.DictReader(predictions.open())] == [
        f"{i}.png" for i in range(4)
    ]


def test_predict_streams_a_folder_chunk_by_chunk(tmp_path, monkeypatch, capsys):
    """A flat folder is read, predicted and written a chunk at a time, never whole."""
    Image = pytest.importorskip("PIL.Image")
    import skrnn._cli
    import skrnn._folders

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (40, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(40) % 3)
    model = tmp_path / "m.skrnn"
    assert main(["train", str(tmp_path / "d.npz"), "-o", str(model), "-q", *TINY]) == 0
    (tmp_path / "many").mkdir()
    for i, pixels in enumerate(X):
        Image.fromarray(pixels).save(tmp_path / "many" / f"{i:02d}.png")
    reads = []
    read_images = skrnn._folders.read_images
    monkeypatch.setattr(skrnn._cli, "_STREAM_CHUNK", 16)
    monkeypatch.setattr(
        skrnn._folders,
        "read_images",
        lambda files, **kw: reads.append(len(files)) or read_images(files, **kw),
    )
    for output in ("p.csv", "p.npz"):
        reads.clear()
        argv = ["predict", str(model), str(tmp_path / "many"), "-o", str(tmp_path / output), "-q"]
        assert main(argv) == 0
        assert reads == [16, 16, 8]  # three chunks, never the whole folder
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    expected = skrnn.load(model).predict_proba(X)
    assert [int(row["index"]) for row in rows] == list(range(40))
    assert [row["filename"].rsplit("/", 1)[-1] for row in rows] == [
        f"{i:02d}.png" for i in range(40)
    ]
    np.testing.assert_allclose(
        [[float(row[f"proba_{c}"]) for c in range(3)] for row in rows], expected, atol=1e-5
    )
    saved = np.load(tmp_path / "p.npz")
    np.testing.assert_allclose(saved["proba"], expected, rtol=1e-5, atol=1e-6)
    assert len(saved["filenames"]) == 40


def test_train_distributed_outside_torchrun_says_how_to_launch(digits_npz, tmp_path, capsys):
    argv = ["fit", str(digits_npz), "-o", str(tmp_path / "m.skrnn"), "--distributed", *TINY]
    assert main(argv) == 2
    assert "torchrun --nproc-per-node N -m skrnn fit" in capsys.readouterr().err
