"""``skrnn cv --groups``: folds that hold whole groups (drives, writers) out."""

import json

import numpy as np
import pytest
from PIL import Image

import skrnn._search
from skrnn._cli import main
from skrnn._groups import group_folds, groups_from_names
from skrnn.datasets import load_digits_images

TINY = ["--cells", "gru", "--param", "hidden_size=4", "--param", "max_epochs=1", "-q"]


@pytest.fixture(scope="module")
def writers_npz(tmp_path_factory):
    """60 digits of 3 classes by 6 "writers" of 10 digits each, in an array named writer."""
    X, y = load_digits_images(n_class=3, return_X_y=True)
    path = tmp_path_factory.mktemp("data") / "writers.npz"
    np.savez(path, X=X[:60], y=y[:60], writer=np.arange(60) // 10, ragged=np.zeros((60, 2)))
    return path


@pytest.fixture(scope="module")
def drives_folder(tmp_path_factory):
    """Class folders of 8x8 PNGs named like CamVid frames: DRIVE_FRAME.png, 3 drives."""
    root = tmp_path_factory.mktemp("drives")
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / label).mkdir()
        for drive in ("0001TP", "0006R0", "0016E5"):
            for frame in range(2):
                pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
                Image.fromarray(pixels).save(root / label / f"{drive}_{frame:05d}.png")
    return root


@pytest.fixture
def folds_used(monkeypatch):
    """The folds each search of ``skrnn cv`` is given, recorded."""
    used = []
    for name in ("grid_search", "halving_search"):
        search = getattr(skrnn._search, name)

        def record(*args, _search=search, cv, **kwargs):
            used.append(cv)
            return _search(*args, cv=cv, **kwargs)

        monkeypatch.setattr(skrnn._search, name, record)
    return used


def assert_groups_held_out(folds, groups, n_folds):
    assert len(folds) == n_folds
    tested = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tested), np.arange(len(groups)))  # every image scored once
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])


def test_cv_with_an_npz_array_of_groups_holds_writers_out(
    writers_npz, tmp_path, capsys, folds_used
):
    report = tmp_path / "cv.json"
    argv = ["cv", str(writers_npz), "--groups", "writer", "--folds", "3", *TINY[:-1]]
    assert main([*argv, "--json", str(report)]) == 0
    assert "--groups writer: 6 groups: 0 (10 images), 1 (10)" in capsys.readouterr().out
    [folds] = folds_used
    assert_groups_held_out(folds, np.arange(60) // 10, 3)
    groups = json.loads(report.read_text())["groups"]
    assert groups == {"spec": "writer", "sizes": {str(w): 10 for w in range(6)}}


def test_cv_halving_with_groups_holds_them_out(writers_npz, folds_used):
    argv = ["cv", str(writers_npz), "--groups", "writer", "--folds", "2", "--halving"]
    argv += ["--cells", "rnn", "gru", "--param", "hidden_size=4", "--param", "max_epochs=2", "-q"]
    assert main(argv) == 0
    [folds] = folds_used
    assert_groups_held_out(folds, np.arange(60) // 10, 2)


def test_cv_finds_drives_in_file_names(drives_folder, capsys, folds_used):
    argv = ["cv", str(drives_folder), "--groups", "^([^_]+)_", "--folds", "3", *TINY[:-1]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3 groups: 0001TP (4 images), 0006R0 (4), 0016E5 (4)" in out
    [folds] = folds_used
    names = sorted(p.name for p in drives_folder.rglob("*.png"))
    drives = np.array([name[:6] for name in names])
    # load_image_folder reads class a's files, then class b's: the same names in each.
    assert_groups_held_out(folds, np.concatenate([drives[::2], drives[::2]]), 3)


def test_whole_match_is_the_group_without_brackets():
    assert list(groups_from_names(["x/0016E5_1.png", "0001TP_2.png"], r"^\w{6}")) == [
        "0016E5",
        "0001TP",
    ]


@pytest.mark.parametrize(
    "data, spec, folds, message",
    [
        ("npz", "drive", 2, "has no array named 'drive'"),
        ("npz", "ragged", 2, "ragged in {data} has shape (60, 2)"),
        ("npz", "writer", 7, "6 groups: 0 (10 images)"),
        ("folder", "^(w\\d)_", 2, "finds no group in 12 of the 12 file names"),
        ("folder", "^([^_]+", 2, "is not a regular expression"),
        ("folder", "^([^_]+)_", 4, "give at most 3 folds"),
    ],
)
def test_bad_groups_end_in_one_line(writers_npz, drives_folder, capsys, data, spec, folds, message):
    path = writers_npz if data == "npz" else drives_folder
    argv = ["cv", str(path), "--groups", spec, "--folds", str(folds), *TINY]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("skrnn cv: error:") and err.count("\n") == 1
    assert message.format(data=path) in err


def test_fewer_groups_than_folds_is_refused():
    with pytest.raises(ValueError, match="fewer than the 3 folds.*give at most 2 folds"):
        group_folds(["a", "a", "b"], 3)
