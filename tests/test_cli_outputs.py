"""The command line never destroys or half-writes a file.

Every output is checked before any work (its folder exists and can be written, it is none of
the inputs, also through a link), written whole or not at all, and keeps the mode of the file
it replaces. A segmenter's masks can go to a folder, one PNG file per image.
"""

import errno
import os
from pathlib import Path

import numpy as np
import pytest

import skrnn
from skrnn._cli import main

Image = pytest.importorskip("PIL.Image")

TINY = ["--param", "hidden_size=4", "--param", "max_epochs=1"]
SEG_TINY = [*TINY, "--param", "num_layers=1", "--param", "head=None"]


def write_photos(folder, names, *, size=12, seed=0):
    """Grey photos of a bright square on a dark ground, and their masks (0 and 255)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    masks = []
    for name in names:
        mask = np.zeros((size, size), np.uint8)
        top, left = rng.integers(0, size // 2, 2)
        mask[top : top + size // 2, left : left + size // 2] = 255
        photo = mask // 2 + rng.integers(0, 60, mask.shape).astype(np.uint8)
        Image.fromarray(photo).save(folder / name)
        masks.append(mask)
    return masks


@pytest.fixture(scope="module")
def files(tmp_path_factory, digits_npz):
    """Data, a classifier, and a segmenter trained on masks of 0 and 255."""
    root = tmp_path_factory.mktemp("outputs")
    seg = root / "seg"
    masks = write_photos(seg / "images", [f"f{i}.png" for i in range(6)])
    (seg / "masks").mkdir()
    for i, mask in enumerate(masks):
        Image.fromarray(mask).save(seg / "masks" / f"f{i}.png")
    model, seg_model = root / "digits.skrnn", root / "seg.skrnn"
    assert main(["train", str(digits_npz), "-o", str(model), "-q", *TINY]) == 0
    assert main(["train", str(seg), "-o", str(seg_model), "-q", *SEG_TINY]) == 0
    return {"data": digits_npz, "model": model, "seg": seg, "seg_model": seg_model}


def run(argv, capsys):
    """``(status, the stderr lines)`` of one in-process run."""
    capsys.readouterr()
    status = main([str(arg) for arg in argv])
    return status, capsys.readouterr().err.strip().splitlines()


def refuse_any_work(monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the command went to work although its output cannot be written")

    monkeypatch.setattr("skrnn._cli._fit", no_work)
    monkeypatch.setattr("skrnn._persistence.load", no_work)


# ------------------------------------------------------------------------ outputs that are inputs
@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "{model}", "{data}", "-o", "{data}"], "-o {data} is the data {data}"),
        (["predict", "{model}", "{data}", "-o", "{link}"], "is the data {data} (through a link)"),
        (["predict", "{model}", "{data}", "-o", "{hard}"], "is the data {data} (through a link)"),
        (["train", "{data}", "-o", "{data}"], "-o {data} is the data"),
        (["cv", "{data}", "--json", "{data}"], "--json {data} is the data"),
        (["export", "{model}", "-o", "{model}"], "-o {model} is the model file"),
        (["train", "{data}", "--param", "checkpoint={data}"], "--param checkpoint {data} is the"),
        (["train", "{data}", "-o", "{out}", "--param", "checkpoint={out}"], "is the model -o"),
    ],
)
def test_an_output_that_is_an_input_is_refused(argv, message, files, tmp_path, monkeypatch, capsys):
    data = tmp_path / "data.npz"
    data.write_bytes(files["data"].read_bytes())
    model = tmp_path / "model.skrnn"
    model.write_bytes(files["model"].read_bytes())
    (tmp_path / "link.npz").symlink_to(data)
    os.link(data, tmp_path / "hard.npz")
    names = {"data": data, "model": model, "out": tmp_path / "m.skrnn"}
    names |= {"link": tmp_path / "link.npz", "hard": tmp_path / "hard.npz"}
    before = data.read_bytes(), model.read_bytes()
    monkeypatch.setattr("skrnn._cli._fit", lambda *args: pytest.fail("trained"))
    status, err = run([arg.format(**names) for arg in argv], capsys)
    assert status == 2 and len(err) == 1
    assert message.format(**names) in err[0]
    assert (data.read_bytes(), model.read_bytes()) == before


def test_predicting_into_the_folder_of_the_photos_is_refused(files, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_photos(photos, ["a.png", "b.png"])
    before = {file.name: file.read_bytes() for file in photos.iterdir()}
    for data, output in [(photos, photos), (files["seg"], files["seg"] / "masks")]:
        status, err = run(["predict", files["seg_model"], data, "-o", output, "-q"], capsys)
        assert status == 2 and len(err) == 1
        assert f"-o {output} is " in err[0] and "writing there would destroy it" in err[0]
    assert {file.name: file.read_bytes() for file in photos.iterdir()} == before


# --------------------------------------------------------------------------- outputs checked first
@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs a folder nobody can write")
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "{data}", "-o", "/sys/m.skrnn", *TINY],
        ["train", "{data}", "--param", "checkpoint=/sys/run.ckpt", *TINY],
        ["cv", "{data}", "--json", "/sys/r.json", "--folds", "2", *TINY],
        ["predict", "{model}", "{data}", "-o", "/sys/p.csv"],
        ["predict", "{seg_model}", "{seg}", "-o", "/sys/masks/"],
        ["export", "{model}", "-o", "/sys/m.onnx"],
    ],
)
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(
    argv, files, tmp_path, monkeypatch, capsys
):
    try:  # even root cannot make files in /sys; where it can, there is nothing to test
        Path("/sys/.skrnn-probe").touch()
    except OSError:
        pass
    else:  # pragma: no cover
        os.unlink("/sys/.skrnn-probe")
        pytest.skip("/sys can be written here")
    refuse_any_work(monkeypatch)
    monkeypatch.chdir(tmp_path)  # the default -o model.skrnn
    status, err = run([arg.format(**files) for arg in argv], capsys)
    assert status == 2 and len(err) == 1
    assert "the folder /sys cannot be written" in err[0]


# --------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize(
    "checkpoint, message",
    [
        ("{notes}", "is a file that is not a skrnn checkpoint"),
        ("{tmp}/nowhere/run.ckpt", "the folder {tmp}/nowhere does not exist"),
        ("{tmp}", "is a folder; give the name of a file to write"),
    ],
)
def test_a_checkpoint_mistake_ends_in_one_line(checkpoint, message, files, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    names = {"notes": notes, "tmp": tmp_path}
    argv = ["train", files["data"], "-o", tmp_path / "m.skrnn", "-q", *TINY]
    status, err = run([*argv, "--param", f"checkpoint={checkpoint.format(**names)}"], capsys)
    assert status == 2 and len(err) == 1
    assert message.format(**names) in err[0]
    assert notes.read_text() == "my notes\n" and not (tmp_path / "m.skrnn").exists()


def test_cv_refuses_a_checkpoint_its_fits_would_share(files, tmp_path, capsys):
    argv = ["cv", files["data"], "--param", f"checkpoint={tmp_path / 'run.ckpt'}", *TINY]
    status, err = run(argv, capsys)
    assert status == 2 and len(err) == 1 and "cannot share one checkpoint file" in err[0]


# --------------------------------------------------------------------------- whole or not at all
def full_disk(fd):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "{model}", "{data}", "-o", "{out}.csv"],
        ["predict", "{model}", "{data}", "-o", "{out}.npz"],
        ["cv", "{data}", "--json", "{out}.json", "--folds", "2", "--cells", "gru", *TINY],
    ],
)
def test_an_output_that_cannot_be_finished_leaves_the_old_file(
    argv, files, tmp_path, monkeypatch, capsys
):
    """A full disk when the file is all but written: the old file stays, whole."""
    argv = [arg.format(**files, out=tmp_path / "out") for arg in argv]
    output = Path(argv[argv.index("-o" if "-o" in argv else "--json") + 1])
    output.write_text("the results of last week\n")
    monkeypatch.setattr(os, "fsync", full_disk)
    status, err = run([*argv, "-q"], capsys)
    assert status == 2 and len(err) == 1
    assert err[0].endswith(f"Cannot write {output}: No space left on device.")
    assert output.read_text() == "the results of last week\n"
    assert sorted(os.listdir(tmp_path)) == [output.name]  # no temporary file left behind


def test_predictions_stopped_half_way_leave_the_old_csv(files, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "new"
    write_photos(folder, ["a.png", "b.png", "c.png"], size=8)
    (folder / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # in the second chunk
    output = tmp_path / "p.csv"
    output.write_text("the predictions of last week\n")
    monkeypatch.setattr("skrnn._cli._STREAM_CHUNK", 2)
    status, err = run(["predict", files["model"], folder, "-o", output, "-q"], capsys)
    assert status == 2 and len(err) == 1 and "d.png" in err[0]
    assert output.read_text() == "the predictions of last week\n"


def test_a_model_saved_again_keeps_the_mode_of_its_file(files, tmp_path, capsys):
    model = tmp_path / "private.skrnn"
    model.write_bytes(b"")
    model.chmod(0o600)
    assert main(["train", str(files["data"]), "-o", str(model), "-q", *TINY]) == 0
    assert model.stat().st_mode & 0o777 == 0o600
    assert skrnn.load(model).n_iter_ == 1


# --------------------------------------------------------------------------- PNG masks
def test_a_segmenter_writes_one_png_mask_per_photo(files, tmp_path, monkeypatch, capsys):
    from skrnn._folders import read_images
    from skrnn.datasets import load_segmentation_folder

    photos = tmp_path / "photos"
    names = ["beach.png", "city.jpg", "dog.png", "eve.png", "fox.bmp"]
    write_photos(photos, names, size=16, seed=1)
    reads = []
    monkeypatch.setattr("skrnn._cli._STREAM_CHUNK", 2)
    monkeypatch.setattr(
        "skrnn._folders.read_images",
        lambda files, **kw: reads.append(len(files)) or read_images(files, **kw),
    )
    assert main(["predict", str(files["seg_model"]), str(photos), "-o", f"{tmp_path}/masks/"]) == 0
    assert reads == [2, 2, 1]  # chunk by chunk, never the whole folder
    assert f"5 masks written to {tmp_path / 'masks'}" in capsys.readouterr().out
    written = sorted(os.listdir(tmp_path / "masks"))
    assert written == ["beach.png", "city.png", "dog.png", "eve.png", "fox.png"]
    model = skrnn.load(files["seg_model"])
    expected = model.predict(read_images(sorted(photos.iterdir()), color_mode="grayscale"))
    assert Image.open(tmp_path / "masks" / "beach.png").mode == "L"
    # The masks folder reads back, beside the photos, as the labels predicted.
    back = load_segmentation_folder(photos, tmp_path / "masks").target
    np.testing.assert_array_equal(back, expected)
    assert set(np.unique(back)) <= {0, 255}


def test_a_palette_colours_the_masks_and_keeps_the_labels(tmp_path, capsys):
    from skrnn.datasets import make_shapes

    X, Y = make_shapes(n_samples=12, image_size=12, random_state=0)
    np.save(tmp_path / "X.npy", X)
    np.savez(tmp_path / "shapes.npz", X=X, Y=Y)
    model = tmp_path / "shapes.skrnn"
    assert main(["train", str(tmp_path / "shapes.npz"), "-o", str(model), "-q", *SEG_TINY]) == 0
    palette = ["0,0,0", "255,0,0", "0,255,0", "0,0,255"]
    argv = ["predict", model, tmp_path / "X.npy", "-o", tmp_path / "masks", "--palette"]
    assert run([*argv, *palette, "-q"], capsys)[0] == 0
    written = sorted(os.listdir(tmp_path / "masks"))
    assert written == [f"{i:02d}.png" for i in range(12)]  # rows of an array, by index
    mask = Image.open(tmp_path / "masks" / "03.png")
    assert mask.mode == "P" and mask.getpalette()[:12] == [0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]
    np.testing.assert_array_equal(np.asarray(mask), skrnn.load(model).predict(X[3:4])[0])
    # A palette without a colour for every label is refused before anything is written.
    status, err = run([*argv, *palette[:2]], capsys)
    assert status == 2 and len(err) == 1
    assert "the model predicts the labels [0, 1, 2, 3], but the palette has colours" in err[0]


@pytest.mark.parametrize(
    "kind, message",
    [
        ("classifier", "is a folder, which takes one PNG mask per image of a segmenter"),
        ("same stem", "the masks of {photos}/a.jpg and {photos}/a.png would both be written"),
        ("suffix", "-o must end in .csv or .npz, or name a folder"),
    ],
)
def test_masks_that_cannot_be_written_are_refused_first(kind, message, files, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_photos(photos, ["a.jpg", "a.png"] if kind == "same stem" else ["a.png"])
    model = files["model" if kind == "classifier" else "seg_model"]
    output = tmp_path / ("masks.png" if kind == "suffix" else "masks")
    if kind != "suffix":
        output.mkdir()
    status, err = run(["predict", model, photos, "-o", output, "-q"], capsys)
    assert status == 2 and len(err) == 1
    assert message.format(photos=photos) in err[0]
    assert not any(output.iterdir()) if output.is_dir() else not output.exists()


def test_masks_of_labels_above_255_are_16_bit_pngs(tmp_path):
    from skrnn._prediction_files import check_png_labels, png_masks

    classes = np.array([0, 300, 65535])
    masks = np.array([[[0, 300], [65535, 0]]])
    with png_masks(tmp_path, classes, count=1) as write:
        write(0, masks, None, ["/photos/scan.tif"])
    image = Image.open(tmp_path / "scan.png")
    assert image.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(image), masks[0])
    with pytest.raises(ValueError, match="holds labels from 0 to 65535"):
        check_png_labels(np.array([-1, 0]))


def test_masks_of_chunks_of_other_sizes_go_to_pngs_not_to_one_array(
    files, tmp_path, monkeypatch, capsys
):
    photos = tmp_path / "photos"
    write_photos(photos, ["a.png"], size=8)
    Image.fromarray(np.full((12, 10), 90, np.uint8)).save(photos / "b.png")
    monkeypatch.setattr("skrnn._cli._STREAM_CHUNK", 1)  # one size per chunk
    (tmp_path / "masks.npz").write_text("old masks\n")
    status, err = run(
        ["predict", files["seg_model"], photos, "-o", tmp_path / "masks.npz", "-q"], capsys
    )
    assert status == 2 and len(err) == 1
    assert "different sizes (8x8 and 10x12, width x height), so their masks do not fit" in err[0]
    assert (tmp_path / "masks.npz").read_text() == "old masks\n"
    assert (
        run(["predict", files["seg_model"], photos, "-o", tmp_path / "masks", "-q"], capsys)[0] == 0
    )
    sizes = {name: Image.open(tmp_path / "masks" / name).size for name in ("a.png", "b.png")}
    assert sizes == {"a.png": (8, 8), "b.png": (10, 12)}


def test_a_folder_mixing_depths_is_read_at_one_depth_in_every_chunk(
    files, tmp_path, monkeypatch, capsys
):
    # a.png (8-bit) and b.png (the same photo in 16 bits) fall in different chunks
    photos = tmp_path / "photos"
    write_photos(photos, ["a.png"], size=16, seed=1)
    eight = np.asarray(Image.open(photos / "a.png"))
    Image.fromarray(eight.astype(np.uint16) * np.uint16(257)).save(photos / "b.png")
    monkeypatch.setattr("skrnn._cli._STREAM_CHUNK", 1)
    status, _ = run(["predict", files["seg_model"], photos, "-o", f"{tmp_path}/masks/"], capsys)
    assert status == 0
    masks = [np.asarray(Image.open(tmp_path / "masks" / name)) for name in ("a.png", "b.png")]
    np.testing.assert_array_equal(masks[0], masks[1])
