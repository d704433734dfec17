"""The experiment commands end to end on a tiny synthetic UCF-101-layout folder of real videos:
``mict train`` (and ``--resume``), ``mict evaluate``, ``mict sweep``, ``mict plot``,
``mict crossval``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mictnet.cli import main
from mictnet.data.synthetic import SynthConfig, generate_dataset
from mictnet.engine.runlog import read_metrics_csv

pytestmark = pytest.mark.slow  # trains models

# the tiny net (registered by tiny_clips) keeps this fast; one thread avoids oversubscription
FAST = ["--model", "tiny_video_net", "--frames", "8", "--crop-size", "32", "--batch-size", "4",
        "--workers", "0", "--lr", "0.05", "--no-progress", "--set", "data.resize=[32, 32]",
        "--set", "runtime.threads=1", "--set", "runtime.tensorboard=false",
        "--set", "model.dropout=0.0"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 classes × 3 groups × 2 clips of 8 frames, 32×32 (split 1 tests on group 1)."""
    import tiny_clips  # noqa: F401  (registers tiny_video_net)

    out = tmp_path_factory.mktemp("synth")
    return generate_dataset(out, SynthConfig(classes=2, groups=3, clips_per_group=2, frames=8,
                                             size=(32, 32)), progress=False)


@pytest.fixture(scope="module")
def run(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "--dataset", "ucf101", "--root", str(videos), "--split", "1",
                 "--epochs", "2", "--out", str(run_dir), *FAST]) == 0
    return run_dir


def test_train_writes_the_run_folder(run: Path, videos: Path) -> None:
    for name in ("config.yaml", "last.pt", "best.pt", "metrics.csv", "train.log"):
        assert (run / name).is_file(), name
    rows = read_metrics_csv(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and [r["step"] for r in rows] == [2, 4]
    text = (run / "config.yaml").read_text()
    assert f"root: {videos}" in text  # absolute root: the run folder is self-contained
    assert "- ZoomIn" in text  # flip restricted to synth.json's flip-safe classes


def test_resume_of_a_finished_run_and_its_rules(run: Path, capsys) -> None:
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert len(read_metrics_csv(run / "metrics.csv")) == 2  # nothing repeated
    assert main(["train", "--resume", str(run), "--lr", "0.1"]) == 2
    assert "drop --lr" in capsys.readouterr().err
    assert main(["train", "--resume", str(run.parent / "nothing")]) == 2


def test_train_refuses_to_overwrite_and_reports_bad_roots(run: Path, videos: Path, tmp_path,
                                                          capsys) -> None:
    assert main(["train", "--root", str(videos), "--out", str(run), *FAST]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--root", str(tmp_path / "missing"), "--out",
                 str(tmp_path / "r"), *FAST]) == 2
    assert "missing" in capsys.readouterr().err


def test_evaluate_matches_training_measurement(run: Path, tmp_path: Path, capsys) -> None:
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--workers", "0",
                 "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    best = max(r["test_top1"] for r in read_metrics_csv(run / "metrics.csv"))
    assert report["top1"] == pytest.approx(best)  # the same protocol: first 8 frames, centre
    assert report["num_samples"] == 4 and report["split"] == 1 and report["mode"] == "clip"
    assert (tmp_path / "eval" / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "top-1" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(run), "--mode", "video", "--frames", "4",
                 "--clips", "2", "--workers", "0"]) == 0
    assert (run / "eval-ucf101-split1-video-4f-2clips" / "report.json").is_file()


def test_evaluate_checkpoint_from_python_takes_the_cli_sections(run: Path) -> None:
    """The library call and ``mict evaluate`` share one schema: the same fields, the same
    validation."""
    from mictnet.engine.run import evaluate_checkpoint
    from mictnet.engine.train_config import EvalDataConfig, InferenceConfig

    report = evaluate_checkpoint(run / "best.pt", EvalDataConfig(mode="video", frames=4),
                                 InferenceConfig(workers=0, clips=2), progress=False)
    assert (report.mode, report.frames, report.clips) == ("video", 4, 2)
    assert report.metrics.num_samples == 4
    with pytest.raises(ValueError, match="split: a split is 1, 2, 3"):
        EvalDataConfig(split=4)
    with pytest.raises(SystemExit, match="2"):
        main(["evaluate", "--checkpoint", str(run), "--split", "4"])


def test_sweep_and_plot(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", "--checkpoint", str(run / "best.pt"), str(run / "last.pt"),
                 "--lengths", "4", "8", "--workers", "0", "--out", str(out)]) == 0
    with (out / "sweep.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"].endswith("best.pt)"), r["frames"]) for r in rows] == [
        (True, "4"), (True, "8"), (False, "4"), (False, "8")]
    assert (out / "sweep.png").is_file()
    assert main(["plot", str(run), "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    (run / "curves.png").unlink(missing_ok=True)
    assert main(["plot", str(run / "metrics.csv")]) == 0  # the README's form: beside the file
    assert (run / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_crossval_table(videos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cv"
    assert main(["crossval", "--root", str(videos), "--folds", "1", "2", "--epochs", "1",
                 "--out", str(out), *FAST]) == 0
    summary = json.loads((out / "crossval.json").read_text())
    assert [s["split"] for s in summary["splits"]] == [1, 2]
    assert summary["params_m"] > 0 and summary["memory_mb_per_clip"] > 0
    assert summary["frames_per_s"] > 0
    table = (out / "crossval.md").read_text()
    assert "| tiny_video_net | 2 |" in table and "±" in table
    assert table in capsys.readouterr().out


def test_crossval_reuses_only_the_same_finished_run(videos: Path, tmp_path: Path,
                                                    capsys) -> None:
    out = tmp_path / "cv"
    argv = ["crossval", "--root", str(videos), "--folds", "1", "--epochs", "1", "--out",
            str(out), *FAST]
    assert main(argv) == 0
    table = (out / "crossval.md").read_text()
    assert "±" not in table and "±" not in capsys.readouterr().out  # one split: no spread
    assert json.loads((out / "crossval.json").read_text())["top1_std"] is None
    weights = (out / "split1" / "last.pt").read_bytes()

    assert main([*argv, "--model", "resnet2d_18"]) == 2
    err = capsys.readouterr().err
    assert f"{out / 'split1'} holds another run" in err
    assert "model.name: tiny_video_net (saved) != resnet2d_18 (requested)" in err
    assert main([*argv, "--epochs", "2"]) == 2
    assert "schedule.epochs: 1 (saved) != 2 (requested)" in capsys.readouterr().err
    assert (out / "split1" / "last.pt").read_bytes() == weights  # nothing touched

    progress = [a for a in argv if a != "--no-progress"]  # a runtime key may differ
    assert main(progress) == 0
    assert (out / "split1" / "last.pt").read_bytes() == weights  # reused, not retrained


def test_resume_refuses_a_checkpoint_of_another_run(run: Path, tmp_path: Path,
                                                    capsys) -> None:
    import shutil

    import torch

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    ckpt = torch.load(copy / "last.pt", weights_only=True)
    ckpt["config"]["optim"]["lr"] = 0.1
    ckpt["config"]["model"]["dropout"] = 0.3
    torch.save(ckpt, copy / "last.pt")
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    assert main(["train", "--resume", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"{copy / 'last.pt'} is not this run folder's checkpoint" in err
    assert "optim.lr: 0.05 (saved) != 0.1 (requested)" in err
    assert "model.dropout: 0.0 (saved) != 0.3 (requested)" in err
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before


def test_train_out_refuses_a_folder_with_files_and_overwrite_moves_them_aside(
        videos: Path, tmp_path: Path, capsys) -> None:
    argv = ["train", "--root", str(videos), "--epochs", "1", *FAST]
    killed = tmp_path / "killed"  # stopped before its first last.pt
    killed.mkdir()
    old = {"config.yaml": b"model: {}\n", "best.pt": b"old best", "metrics.csv": b"epoch\n"}
    for name, data in old.items():
        (killed / name).write_bytes(data)
    assert main([*argv, "--out", str(killed)]) == 2
    err = capsys.readouterr().err
    assert f"{killed} already holds a run (best.pt, config.yaml, metrics.csv)" in err
    assert "--overwrite" in err and len(err.splitlines()) == 1
    assert {p.name: p.read_bytes() for p in killed.iterdir()} == old

    assert main([*argv, "--out", str(killed), "--overwrite"]) == 0
    [previous] = killed.glob("previous-*")
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == old
    assert (killed / "last.pt").is_file() and "epoch" in (killed / "train.log").read_text()

    stale = tmp_path / "stale"  # SIGKILL during a checkpoint write: only its temp file
    stale.mkdir()
    (stale / ".last.pt.k2j3h4.tmp").write_bytes(b"half a checkpoint")
    assert main([*argv, "--out", str(stale)]) == 0
    assert not list(stale.glob(".*.tmp")) and (stale / "last.pt").is_file()

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main([*argv, "--out", str(a_file)]) == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err and "Traceback" not in err


def test_resuming_a_run_killed_before_its_first_checkpoint_deletes_the_half_written_one(
        videos: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["train", "--root", str(videos), "--epochs", "1", *FAST, "--out", str(run)]) == 0
    for name in ("last.pt", "best.pt"):  # as if killed while writing the first last.pt
        (run / name).unlink()
    (run / ".last.pt.k2j3h4.tmp").write_bytes(b"half a checkpoint")
    assert main(["train", "--resume", str(run)]) == 0
    [previous] = run.glob("previous-*")
    assert not list(run.rglob(".*.tmp"))  # deleted, not kept among the earlier files
    assert (previous / "metrics.csv").is_file() and (run / "last.pt").is_file()


def test_a_batch_the_batch_norms_cannot_train_on_is_refused_before_the_run_folder(
        videos: Path, tmp_path: Path, capsys) -> None:
    """MiCT-ResNet-18 on one 8×32² clip per step: its last batch norms see one value per
    channel. Refused before anything is written, so a plain rerun is not blocked."""
    run = tmp_path / "run"
    argv = ["train", "--root", str(videos), "--epochs", "1", *FAST, "--model", "mict_resnet18",
            "--out", str(run)]
    assert main([*argv, "--batch-size", "1"]) == 2
    err = capsys.readouterr().err
    assert "1 clip(s) per forward pass are too few for mict_resnet18 at 8x32x32" in err
    assert "raise --batch-size" in err and "Traceback" not in err
    assert not run.exists() or not any(run.iterdir())
