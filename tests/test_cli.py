import subprocess
import sys

import pytest

from skrnn._cli import _image_size, main


def test_help_lists_the_demo(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_unknown_command_exits_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["dance"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("text, size", [("32", (32, 32)), ("32,24", (32, 24)), ("32x24", (32, 24))])
def test_image_size_reads_one_or_two_numbers(text, size):
    assert _image_size(text) == size


@pytest.mark.parametrize("text", ["0", "32,0", "32,24,3", "big", "32,"])
def test_a_bad_image_size_exits_with_status_2(text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "data.npz", "--image-size", text])
    assert exit_info.value.code == 2
    assert f"expected HEIGHT,WIDTH or SIZE, got {text!r}" in capsys.readouterr().err


def test_demo_runs_end_to_end_as_a_module(tmp_path):
    figure = tmp_path / "demo.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "skrnn",
            "demo",
            "--max-epochs",
            "1",
            "--n-jobs",
            "1",
            "--quiet",
            "-o",
            str(figure),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    table = {row[0]: row for row in rows if row and row[0] in ("rnn", "lstm", "gru")}
    assert sorted(table) == ["gru", "lstm", "rnn"]
    [best] = [cell for cell, row in table.items() if row[-2:] == ["<-", "best"]]
    assert f"Best cell: {best}." in result.stdout  # the search's best cell is the one refitted
    assert "held-out test accuracy" in result.stdout
    assert f"saved to {figure}" in result.stdout
    assert figure.stat().st_size > 10_000
