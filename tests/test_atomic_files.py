"""Files are written whole or not at all, and a file written again keeps its mode."""

import os

import pytest

from skrnn._utils import open_atomically, write_atomically


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_a_file_written_again_keeps_its_mode(tmp_path, mode):
    path = tmp_path / "model.skrnn"
    path.write_bytes(b"old")
    path.chmod(mode)
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o7777 == mode


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_new_file_follows_the_umask(tmp_path, umask):
    before = os.umask(umask)
    try:
        write_atomically(tmp_path / "new.bin", b"data")
    finally:
        os.umask(before)
    assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_link_keeps_pointing_at_the_file_it_names(tmp_path):
    target = tmp_path / "models" / "v3.skrnn"
    target.parent.mkdir()
    target.write_bytes(b"old")
    target.chmod(0o600)
    link = tmp_path / "current.skrnn"
    link.symlink_to(target)
    write_atomically(link, b"new")
    assert link.is_symlink() and target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_body_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="half-way"):
        with open_atomically(path, "w") as file:
            file.write("index,prediction\n0,")
            raise RuntimeError("stopped half-way")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["predictions.csv"]


def test_text_is_written_with_the_options_given(tmp_path):
    path = tmp_path / "rows.csv"
    with open_atomically(path, "w", newline="") as file:
        file.write("a\r\nb\n")
    assert path.read_bytes() == b"a\r\nb\n"


def test_a_link_is_replaced_not_followed_when_asked(tmp_path):
    # masks written into a folder by name: a link there must not lead to an input image
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"the photo")
    (tmp_path / "masks").mkdir()
    link = tmp_path / "masks" / "photo.png"
    link.symlink_to(photo)
    write_atomically(link, b"a mask", follow_links=False)
    assert photo.read_bytes() == b"the photo"
    assert not link.is_symlink() and link.read_bytes() == b"a mask"
