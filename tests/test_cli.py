"""The ``mict`` dispatcher: lazy command modules, one-line errors, --debug, --version; and a
light ``import mictnet``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mictnet import __version__
from mictnet.cli import COMMANDS, main
from mictnet.engine.runlog import write_metrics_csv


def test_help_lists_every_command_without_importing_them(capsys) -> None:
    code = ("import sys; from mictnet.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in sys.modules if m.startswith('mictnet.tools.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(name in text and help_line.split()[0] in text
               for name, (_, help_line) in COMMANDS.items())


def test_version(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"mict {__version__}"


def test_os_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path, capsys) -> None:
    write_metrics_csv(tmp_path / "metrics.csv", [{
        "epoch": 1, "step": 1, "lr": 0.1, "train_loss": 0.5, "train_top1": 0.5,
        "test_loss": None, "test_top1": None, "test_top5": None, "epoch_seconds": 1.0,
        "clips_per_s": 1.0}])
    inside_a_file = tmp_path / "metrics.csv" / "curves.png"
    argv = ["plot", str(tmp_path), "--out", str(inside_a_file)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(inside_a_file.parent) in err and len(err.splitlines()) == 1
    assert main(["--debug", *argv]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_import_mictnet_is_light() -> None:
    code = ("import sys, mictnet; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'cv2', 'matplotlib', 'tensorboard', 'onnx'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    import mictnet

    assert callable(mictnet.load)
