"""``mict transfer-study``: how each run is configured, the tables it writes, that an interrupted
study resumes, and that fine-tuning from a synthetic source beats training from scratch on a
small synthetic target, over three seeds."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pytest

from mictnet.cli import main
from mictnet.data.synthetic import SynthConfig, generate_dataset
from mictnet.engine import transfer
from mictnet.engine.config_flags import section_from_args
from mictnet.tools import transfer_study

# the source: the four time-reversed pairs, 288 training clips; the target: two of those pairs
# (ZoomIn/ZoomOut, Rise/Fall) as new clips (another seed), 12 training clips per class
SOURCE = SynthConfig(classes=8, groups=25, clips_per_group=2, size=(32, 32), seed=0)
TARGET = SynthConfig(classes=4, groups=9, clips_per_group=2, size=(32, 32), seed=1)
QUIET = ["--set", "runtime.tensorboard=false", "--set", "runtime.progress=false"]
MODEL = "mict_resnet18"


def parse(*argv: str) -> transfer.StudyConfig:
    """The study the command line ``argv`` asks for."""
    parser = argparse.ArgumentParser()
    transfer_study.register(parser.add_subparsers())
    args = parser.parse_args(["transfer-study", "--source-root", "/data/K400",
                              "--target-root", "/data/UCF-101", *argv])
    return section_from_args(args, transfer.StudyConfig)


def test_published_recipe_runs() -> None:
    args = parse("--set", "data.workers=2", "--source-set", "schedule.epochs=3", "--set",
                 "optim.momentum=0.8")
    source = transfer.source_config(args, "resnet3d_18")
    assert (source.preset, source.model.name, source.model.pretrained) == (
        "r3d18-kinetics400", "resnet3d_18", "imagenet")
    assert (source.data.dataset, source.data.root) == ("kinetics", "/data/K400")
    assert (source.data.workers, source.schedule.epochs, source.optim.momentum) == (2, 3, 0.8)
    direct = transfer.target_config(args, "resnet3d_18", "direct", 2, 5)
    assert (direct.preset, direct.model.pretrained, direct.model.init_from) == (
        "r3d18-ucf101", "imagenet", None)
    assert (direct.data.dataset, direct.data.root, direct.data.split) == (
        "ucf101", "/data/UCF-101", 2)
    assert (direct.runtime.seed, direct.data.workers, direct.schedule.epochs) == (5, 2, 90)
    tuned = transfer.target_config(args, "mict_resnet18", "via-source", 3, 0,
                                         Path("/runs/source/last.pt"))
    assert (tuned.preset, tuned.model.init_from, tuned.optim.backbone_lr_mult) == (
        "mict18-ucf101-from-k400", "/runs/source/last.pt", 0.1)


def test_pretrained_none_and_the_demo_recipe_for_any_model() -> None:
    args = parse("--recipe", "demo", "--pretrained", "none", "--source-dataset", "ucf101")
    source = transfer.source_config(args, "resnet2d_18")
    direct = transfer.target_config(args, "resnet2d_18", "direct", 1, 0)
    tuned = transfer.target_config(args, "resnet2d_18", "via-source", 1, 0, Path("s.pt"))
    assert {c.preset for c in (source, direct, tuned)} == {"demo-quick"}
    assert {c.model.name for c in (source, direct, tuned)} == {"resnet2d_18"}
    assert source.model.pretrained is direct.model.pretrained is None
    assert (direct.optim.backbone_lr_mult, tuned.optim.backbone_lr_mult) == (1.0, 0.1)
    assert tuned.model.init_from == str(Path("s.pt").resolve())
    assert parse("--pretrained", "imagenet").pretrained == "imagenet"


def test_a_model_without_published_recipe_fails_before_training(tmp_path: Path,
                                                                 capsys) -> None:
    assert main(["transfer-study", "--source-root", str(tmp_path), "--target-root",
                 str(tmp_path), "--models", "mict_resnet18", "resnet2d_18",
                 "--out", str(tmp_path / "study")]) == 2
    assert "no published transfer recipe for resnet2d_18" in capsys.readouterr().err
    assert not (tmp_path / "study").exists()


@pytest.mark.slow
def test_a_run_that_diverges_is_named(tmp_path: Path, capsys) -> None:
    import tiny_clips  # noqa: F401  (registers tiny_video_net)

    tiny = SynthConfig(classes=2, groups=3, clips_per_group=1, frames=4, size=(16, 16))
    videos = generate_dataset(tmp_path / "data", tiny, progress=False)
    out = tmp_path / "study"
    argv = ["transfer-study", "--source-root", str(videos), "--target-root", str(videos),
            "--source-dataset", "ucf101", "--models", "tiny_video_net", "--recipe", "demo",
            "--folds", "1", "--out", str(out), *QUIET, "--set", "data.frames=4",
            "--set", "data.crop_size=16", "--set", "data.resize=[16, 16]",
            "--set", "schedule.epochs=1", "--set", "optim.batch_size=2"]
    assert main([*argv, "--source-set", "optim.lr=1e30"]) == 2
    err = capsys.readouterr().err
    assert f"error: {out / 'tiny_video_net' / 'source'}: the loss became " in err
    assert "finished runs are kept" in err


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, outcome_seed: int
          ) -> tuple[Path, list[str]]:
    """The study of MODEL on target split 1 with three seeds: one source run, six
    target runs (data and seeds shifted by the outcome seed)."""
    data = tmp_path_factory.mktemp("data")
    shift = 2 * outcome_seed
    source = generate_dataset(data / "source", replace(SOURCE, seed=SOURCE.seed + shift),
                              progress=False)
    target = generate_dataset(data / "target", replace(TARGET, seed=TARGET.seed + shift),
                              progress=False)
    out = data / "study"
    seeds = [str(3 * outcome_seed + i) for i in range(3)]
    argv = ["transfer-study", "--source-root", str(source), "--target-root", str(target),
            "--source-dataset", "ucf101", "--models", MODEL, "--recipe", "demo",
            "--pretrained", "none", "--folds", "1", "--seeds", *seeds, "--out", str(out),
            *QUIET]
    assert main(argv) == 0
    return out, argv


@pytest.mark.slow
def test_the_tables_and_the_bar_chart(study: tuple[Path, list[str]], outcome_seed: int) -> None:
    out, _ = study
    seeds = range(3 * outcome_seed, 3 * outcome_seed + 3)
    summary = json.loads((out / "transfer.json").read_text())
    table = summary["table"]
    assert [(t["model"], t["arm"], t["init"], t["runs"]) for t in table] == [
        (MODEL, "direct", "scratch", 3), (MODEL, "via-source", "scratch → source", 3)]
    assert all(t["params_m"] > 0 and t["frames_per_s"] > 0 for t in table)
    assert [(r["arm"], r["seed"], r["num_samples"]) for r in summary["runs"]] == [
        (arm, seed, 24) for seed in seeds for arm in transfer.ARMS]
    markdown = (out / "transfer.md").read_text()
    for t in table:
        row = f"| {MODEL} | {t['init']} | 3 | {100 * t['top1_mean']:.1f} ± "
        assert row in markdown
    assert "frames/s (cpu)" in markdown and "better in" in markdown
    assert (out / "transfer.png").read_bytes()[:4] == b"\x89PNG"
    for arm in transfer.ARMS:
        run = out / MODEL / arm / f"split1-seed{seeds[-1]}"
        assert (run / "eval-clip" / "report.json").is_file()
        # evaluated on their final weights: no best.pt beside last.pt
        assert (run / "last.pt").is_file() and not (run / "best.pt").exists()


@pytest.mark.slow
@pytest.mark.outcome
def test_fine_tuning_from_the_source_beats_scratch_over_seeds(
        study: tuple[Path, list[str]], outcome) -> None:
    gain = json.loads((study[0] / "transfer.json").read_text())["gains"][MODEL]
    assert gain["pairs"] == 3
    # ten points or more, averaged over the seeds, and better in most seeds, not one lucky run
    outcome("transfer study: gain via the source, top-1", gain["top1_mean"], at_least=0.10)
    assert gain["wins"] >= 2, gain


@pytest.mark.slow
def test_an_interrupted_study_resumes_and_finished_runs_are_reused(
        study: tuple[Path, list[str]], capsys, outcome_seed: int) -> None:
    out, argv = study
    weights = {p: p.read_bytes() for p in out.rglob("last.pt")}
    lost = out / MODEL / "via-source" / f"split1-seed{3 * outcome_seed + 2}"
    for path in lost.iterdir():  # as if killed before its first checkpoint
        if path.is_file():
            path.unlink()
    assert main(argv) == 0
    for path, data in weights.items():
        if lost not in path.parents:
            assert path.read_bytes() == data, path  # reused, not retrained
    assert (lost / "last.pt").is_file() and (lost / "eval-clip" / "report.json").is_file()

    assert main([*argv, "--set", "schedule.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert "holds another run" in err and "schedule.epochs: 8 (saved) != 2 (requested)" in err
