"""The ``mict`` dispatcher: lazy command modules, one-line errors, --debug, --version; and a
light ``import mictnet``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mictnet import __version__
from mictnet.cli import COMMANDS, build_parser, main
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
    assert err.startswith("error: ") and str(inside_a_file.parent) in err
    assert len(err.splitlines()) == 1
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


def _sub_parser(command: str):
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_shows_the_defaults(command: str) -> None:
    parser = _sub_parser(command)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                and not isinstance(action, argparse._HelpAction)):
            assert "default" in formatter._get_help_string(action), (command, action.dest)


def test_amp_auto_and_quick_demo_explained() -> None:
    assert "auto: bf16/fp16 on CUDA, bf16 on a CPU that runs it natively, else fp32" in (
        " ".join(_sub_parser("evaluate").format_help().split()))
    assert "(about a minute on 2 cores)" in " ".join(_sub_parser("demo").format_help().split())


@pytest.mark.parametrize("argv", [
    ["predict", "v.mp4", "--checkpoint", "c.pt", "--top", "0"],
    ["predict", "v.mp4", "--checkpoint", "c.pt", "--clips", "0"],
    ["evaluate", "--checkpoint", "c.pt", "--batch-size", "0"],
    ["evaluate", "--checkpoint", "c.pt", "--clips", "0"],
    ["evaluate", "--checkpoint", "c.pt", "--workers", "-1"],
    ["evaluate", "--checkpoint", "c.pt", "--frames", "-1"],
    ["sweep", "--checkpoint", "c.pt", "--lengths", "-1"],
    ["synth", "out", "--frames", "0"],
    ["synth", "out", "--classes", "-3"],
    ["synth", "out", "--size", "64x0"],
    ["prepare", "--dataset", "folder", "--root", "r", "--out", "o", "--quality", "101"],
    ["prepare", "--dataset", "folder", "--root", "r", "--out", "o", "--workers", "0"],
])
def test_numeric_argument_errors_exit_2_before_any_work(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"argument {argv[-2]}" in capsys.readouterr().err


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--frames", "-1", "data.frames must be positive"),
    ("--batch-size", "0", "optim.batch_size must be positive"),
    ("--workers", "-1", "data.workers must be >= 0"),
    ("--epochs", "0", "schedule.epochs must be positive"),
])
def test_config_numbers_are_checked_before_the_run_folder(tmp_path: Path, capsys, flag: str,
                                                          value: str, message: str) -> None:
    assert main(["train", "--root", str(tmp_path), "--out", str(tmp_path / "run"), flag,
                 value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {flag}: ") and message in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["check", "prepare"])
def test_missing_dataset_root_is_named(tmp_path: Path, capsys, command: str) -> None:
    nope = tmp_path / "nope"
    extra = ["--out", str(tmp_path / "cache")] if command == "prepare" else []
    assert main([command, "--dataset", "ucf101", "--root", str(nope), *extra]) == 2
    assert capsys.readouterr().err == f"error: {nope}: no such dataset root\n"
    assert main([command, "--dataset", "list", "--root", str(tmp_path / "l.txt"), *extra]) == 2
    assert "l.txt: no such list file" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    assert main([command, "--dataset", "ucf101", "--root", str(tmp_path / "a-file"), *extra]) == 2
    assert "a-file: the dataset root is not a folder" in capsys.readouterr().err


def test_check_and_prepare_take_a_list_root(tmp_path: Path, make_video, capsys) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "a" / "one.avi", 4)
    make_video(videos / "b" / "two.avi", 4)
    listing = tmp_path / "lists" / "all.txt"
    listing.parent.mkdir()
    listing.write_text(f"{videos / 'a' / 'one.avi'} a\n{videos / 'b' / 'two.avi'} b\n")
    base = ["--dataset", "list", "--root", str(listing)]
    assert main(["check", *base]) == 1  # absolute paths outside the list's folder
    capsys.readouterr()
    assert main(["check", *base, "--list-root", str(videos)]) == 0
    assert main(["prepare", *base, "--list-root", str(videos), "--out", str(tmp_path / "c"),
                 "--size", "32x24"]) == 0
    assert "2 videos prepared" in capsys.readouterr().out


def test_synth_into_a_file_is_one_line(tmp_path: Path, capsys) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    assert main(["synth", str(target), "--classes", "2", "--groups", "3",
                 "--clips-per-group", "1", "--frames", "4", "--size", "16x16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(target) in err and len(err.splitlines()) == 1


def test_benchmark_takes_batch_size_and_the_old_batch_with_a_note(capsys) -> None:
    parser = build_parser("benchmark")
    assert parser.parse_args(["benchmark", "--batch-size", "2", "4"]).batch == [2, 4]
    assert parser.parse_args(["benchmark"]).batch == [1, 8]
    assert capsys.readouterr().err == ""
    assert parser.parse_args(["benchmark", "--batch", "3"]).batch == [3]
    assert "--batch is deprecated; use --batch-size" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["benchmark", "--batch-size", "0"])
    assert info.value.code == 2


def test_unknown_model_is_named_before_any_video_is_opened(tmp_path: Path, capsys) -> None:
    argv = ["train", "--model", "nope", "--dataset", "folder", "--root", str(tmp_path / "none"),
            "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope'; choose one of mict_resnet18" in err
    assert not (tmp_path / "run").exists()


def test_command_help_lines_come_from_the_table(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert COMMANDS["predict"][1].capitalize() in capsys.readouterr().out


def test_print_config_shows_the_resolved_configuration_without_training(tmp_path: Path,
                                                                          capsys) -> None:
    assert main(["train", "--preset", "demo", "--epochs", "3", "--data.resize", "40", "36",
                 "--print-config", "--out", str(tmp_path / "run")]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["schedule"]["epochs"] == 3 and cfg["data"]["resize"] == [40, 36]
    assert cfg["preset"] == "demo" and not (tmp_path / "run").exists()


def test_list_options_take_values_or_one_yaml_list(capsys) -> None:
    for values in (["32", "24"], ["[32,24]"]):
        assert main(["train", "--data.resize", *values, "--print-config"]) == 0
        assert yaml.safe_load(capsys.readouterr().out)["data"]["resize"] == [32, 24]


def test_an_unknown_flag_shows_the_commands_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--no-such-flag", "1"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "usage: mict train" in err and "mict train: error: unrecognized arguments: " \
        "--no-such-flag 1" in err


def test_help_after_a_preset_shows_the_presets_values(capsys) -> None:
    for argv, epochs in ((["train", "--help"], 120), (["train", "--preset", "demo", "--help"], 6),
                         (["crossval", "--preset", "demo-quick", "--help"], 8)):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 0
        assert f"(schedule.epochs, default {epochs})" in " ".join(capsys.readouterr().out.split())


def test_run_commands_take_their_flags_from_the_inference_section(capsys, tmp_path) -> None:
    """evaluate, predict and serve declare no device, precision or clip flags of their own:
    flag, help and default come from ``InferenceConfig``, values are checked by it."""
    import dataclasses

    from mictnet.engine.train_config import InferenceConfig

    helps = {f.name: " ".join(f.metadata["help"].split()) for f in
             dataclasses.fields(InferenceConfig)}
    for command, names in (("evaluate", helps), ("predict", ("clips", "device", "amp")),
                           ("serve", ("clips", "device", "amp"))):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for name in names:
            assert helps[name] in text, (command, name)
    assert "(default: 5)" in text  # serve's own default for --clips
    with pytest.raises(ValueError, match="--batch-size must be >= 1, got 0"):
        InferenceConfig(batch_size=0)  # in Python too, not only on the command line
