import subprocess
import sys

import pytest

from skrnn._cli import main


def test_help_lists_the_demo(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_unknown_command_exits_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["dance"])
    assert exit_info.value.code == 2


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
    for cell in ("rnn", "lstm", "gru"):
        assert f"\n{cell} " in result.stdout
    assert "held-out test accuracy" in result.stdout
    assert f"saved to {figure}" in result.stdout
    assert figure.stat().st_size > 10_000
