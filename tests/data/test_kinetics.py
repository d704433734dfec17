"""Kinetics: annotation CSVs, videos in class folders or flat, missing and unreadable videos,
unlabelled test CSVs, --strict, and check/train/evaluate end to end through the CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from mictnet.cli import main
from mictnet.data import Kinetics, SplitError, build_dataset
from mictnet.data.checks import check_dataset
from mictnet.data.datasets import UNLABELLED

HEADER = "label,youtube_id,time_start,time_end,split\n"
TRAIN = [("abseiling", "aaa", 0, 10), ("air drumming", "b-b_1", 14, 24), ("zumba", "ccc", 5, 15),
         ("abseiling", "ddd", 0, 10), ("air drumming", "eee", 1, 11), ("zumba", "fff", 2, 12)]
VAL = [("abseiling", "vvv", 0, 10), ("zumba", "www", 3, 13), ("zumba", "xxx", 4, 14)]
TEST = [("ttt", 0, 10), ("uuu", 7, 17), ("nnn", 1, 11)]  # no labels
CLASSES = ["abseiling", "air drumming", "zumba"]
FAST = ["--model", "tiny_video_net", "--frames", "8", "--crop-size", "32", "--batch-size", "4",
        "--workers", "0", "--no-progress", "--set", "data.resize=[32, 32]",
        "--set", "runtime.threads=1", "--set", "runtime.tensorboard=false"]
OPTIONS = {"frames": 8, "crop_size": 32, "resize": (32, 32)}


def _csv(path: Path, rows: list[tuple[str, str, int, int]], split: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f'"{label}",{yid},{start},{end},{split}\n' for label, yid, start, end in rows)
    path.write_text(HEADER + body)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/annotations`` CSVs; train videos in class folders and flat, ``eee`` missing,
    ``fff`` corrupt; val in a ``val`` class folder, ``www`` missing, ``xxx`` empty; an
    unlabelled ``test.csv`` (the Kinetics-600/700 layout), flat ``test`` videos, ``nnn``
    missing."""
    root = tmp_path_factory.mktemp("k400") / "kinetics400"
    _csv(root / "annotations" / "train.csv", TRAIN, "train")
    _csv(root / "annotations" / "validate.csv", VAL, "validate")
    (root / "annotations" / "test.csv").write_text(
        "youtube_id,time_start,time_end,split\n"
        + "".join(f"{yid},{start},{end},test\n" for yid, start, end in TEST))
    for rel in ("train/abseiling/aaa_000000_000010.avi", "train/b-b_1_000014_000024.avi",
                "train/zumba/ccc_000005_000015.avi", "train/ddd_000000_000010.avi",
                "val/abseiling/vvv_000000_000010.avi", "test/ttt_000000_000010.avi",
                "test/uuu_000007_000017.avi"):
        _write_video(root / rel)
    (root / "train" / "zumba" / "fff_000002_000012.mkv").write_bytes(b"not a video" * 100)
    (root / "val" / "zumba").mkdir()
    (root / "val" / "zumba" / "xxx_000004_000014.mp4").write_bytes(b"")
    return root


def _write_video(path: Path, frames: int = 10) -> None:
    import cv2

    from conftest import synthetic_frames

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"XVID"), 25, (32, 32))
    for frame in synthetic_frames(frames, (32, 32)):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_classes_samples_and_missing(tree: Path) -> None:
    ds = Kinetics(tree, "train", train=False, **OPTIONS)
    assert ds.classes == CLASSES
    assert [(Path(p).relative_to(tree).as_posix(), label) for p, label in ds.samples] == [
        ("train/abseiling/aaa_000000_000010.avi", 0), ("train/b-b_1_000014_000024.avi", 1),
        ("train/zumba/ccc_000005_000015.avi", 2), ("train/ddd_000000_000010.avi", 0),
        ("train/zumba/fff_000002_000012.mkv", 2)]
    assert len(ds.missing) == 1
    yid, reason = ds.missing[0]
    assert yid == "eee" and reason.endswith("train.csv:6: no video file eee_000001_000011.* found")
    for i in range(len(ds)):  # the corrupt file is replaced by another video and recorded
        clip, _ = ds[i]
        assert clip.shape == (3, 8, 32, 32)
    assert [m[0] for m in ds.missing] == ["eee", "fff"]
    assert any("fff_000002_000012.mkv" in path for path, _ in ds.bad_videos)


def test_val_split_and_annotation_folder(tree: Path, tmp_path: Path) -> None:
    ds = build_dataset("kinetics", tree, 2, False, **OPTIONS)  # a numeric split: val for testing
    assert ds.split == "val" and ds.classes == CLASSES and ds.listed == 3
    assert [label for _, label in ds.samples] == [0]
    assert [m[0] for m in ds.missing] == ["www", "xxx"]  # missing, empty
    assert [(s.reason, s.video) for s in ds.skipped()] == [
        ("missing", ""), ("unreadable", "val/zumba/xxx_000004_000014.mp4")]
    elsewhere = tmp_path / "csv"
    shutil.copytree(tree / "annotations", elsewhere)
    (elsewhere / "validate.csv").rename(elsewhere / "val.csv")
    ds = Kinetics(tree, "val", False, annotations=elsewhere, **OPTIONS)
    assert len(ds) == 1 and [m[0] for m in ds.missing] == ["www", "xxx"]
    with pytest.raises(ValueError, match="not 'valid'"):
        Kinetics(tree, "valid", False)


def test_strict_names_the_csv_line(tree: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train\.csv:6: eee: no video file"):
        Kinetics(tree, "train", strict=True, **OPTIONS)
    with pytest.raises(FileNotFoundError, match=r"train\.csv:6: eee: no video file"):
        build_dataset("kinetics", tree, 1, True, strict=True, **OPTIONS)


def test_unlabelled_test_csv(tree: Path) -> None:
    ds = Kinetics(tree, "test", train=False, **OPTIONS)
    assert not ds.labelled and ds.classes == CLASSES  # the train and val CSVs' classes
    assert [label for _, label in ds.samples] == [UNLABELLED, UNLABELLED]  # never class 0
    assert [m[0] for m in ds.missing] == ["nnn"]
    assert ds.video_record(1) == {"video": "test/uuu_000007_000017.avi", "youtube_id": "uuu",
                                  "time_start": "7", "time_end": "17"}
    clip, label = ds[0]
    assert clip.shape == (3, 8, 32, 32) and label == UNLABELLED
    with pytest.raises(ValueError, match=r"test\.csv has no label column: .* not trained on"):
        Kinetics(tree, "test", train=True, **OPTIONS)
    assert Kinetics(tree, "train", train=False, **OPTIONS).labelled


def test_malformed_line_names_file_and_line(tree: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.csv").write_text(HEADER + "abseiling,aaa,0,10,train\nzumba,ccc,x,15,train\n"
                                   "zumba,ddd\n")
    with pytest.raises(SplitError) as err:
        Kinetics(tree, "train", annotations=bad)
    assert f"{bad / 'train.csv'}:3: time_start 'x' is not a number" in str(err.value)
    assert f"{bad / 'train.csv'}:4: expected" in str(err.value)
    (bad / "train.csv").write_text("youtube_id,time_start\naaa,0\n")
    with pytest.raises(SplitError, match=r"train\.csv:1: header .* lacks column\(s\) time_end"):
        Kinetics(tree, "train", annotations=bad)


def test_check_reports_counts_and_missing(tree: Path, capsys) -> None:
    report = check_dataset("kinetics", tree, progress=False)
    assert report.classes == CLASSES and report.videos == 9 and report.listed == 12
    assert report.counts["train"] == {"abseiling": 2, "air drumming": 1, "zumba": 2}
    assert report.counts["val"] == {"abseiling": 1, "air drumming": 0, "zumba": 1}
    assert report.unlabelled == {"test": 2}
    assert len(report.skipped) == 5 and report.problems == [] and report.ok
    strict = check_dataset("kinetics", tree, strict=True, progress=False)
    assert sorted(strict.problems) == sorted(report.skipped) and not strict.ok
    assert main(["check", "--dataset", "kinetics", "--root", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "5 of 12 listed videos missing/unreadable, skipped" in out
    assert "train.csv:6: eee: no video file" in out and "validate.csv:3: www" in out
    assert "fff_000002_000012.mkv" in out and "xxx_000004_000014.mp4" in out
    assert "test.csv:4: nnn" in out and "OK: no problems found" not in out
    assert "OK otherwise: no problems beyond the 5 skipped video(s) above" in out
    assert "test             2 no labels" in out
    assert main(["check", "--dataset", "kinetics", "--root", str(tree), "--strict"]) == 1
    assert "5 problem(s)" in capsys.readouterr().out


def test_prepare_skips_missing_videos(tree: Path, tmp_path: Path, capsys) -> None:
    cache = tmp_path / "cache"
    assert main(["prepare", "--dataset", "kinetics", "--root", str(tree), "--out", str(cache),
                 "--size", "32x32"]) == 1  # the corrupt and the empty file fail
    out = capsys.readouterr().out
    assert out.startswith("7 videos prepared") and "2 failed" in out
    assert "fff_000002_000012.mkv" in out and "xxx_000004_000014.mp4" in out


def _read_skipped(path: Path) -> list[tuple[str, str, str, str]]:
    return [(r["reason"], r["youtube_id"], r["video"], r["annotation"].rsplit("/", 1)[-1])
            for r in _rows(path)]


@pytest.mark.slow
def test_train_and_evaluate_through_the_cli(tree: Path, tmp_path: Path, caplog, capsys) -> None:
    """The mict18-kinetics400 preset (a tiny model and tiny clips instead) trains one step on
    the tree; the run lists its skipped clips and its classes; evaluate scores val and writes
    per-video predictions for the unlabelled test CSV."""
    import tiny_clips  # noqa: F401  (registers tiny_video_net)

    run = tmp_path / "run"
    assert main(["train", "--preset", "mict18-kinetics400", "--root", str(tree),
                 "--pretrained", "none", "--epochs", "1", "--set", "runtime.eval_every=1",
                 "--out", str(run), *FAST]) == 0
    assert torch.load(run / "last.pt", weights_only=False)["classes"] == CLASSES
    assert (run / "classes.txt").read_text().splitlines() == CLASSES  # sorted CSV labels
    assert "1 of 6 train videos missing/unreadable, skipped; listed in" in caplog.text
    assert "2 of 3 val videos missing/unreadable, skipped; listed in" in caplog.text
    assert "missing-train.csv" in (run / "train.log").read_text()
    assert _read_skipped(run / "missing-train.csv") == [
        ("missing", "eee", "", "train.csv:6"),
        ("unreadable", "fff", "train/zumba/fff_000002_000012.mkv", "train.csv:7")]  # decoded
    assert _read_skipped(run / "missing-val.csv") == [
        ("missing", "www", "", "validate.csv:3"),
        ("unreadable", "xxx", "val/zumba/xxx_000004_000014.mp4", "validate.csv:4")]
    assert "no video file www_000003_000013.* found" in (run / "missing-val.csv").read_text()

    evaluated = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run), "--workers", "0", "--out",
                 str(evaluated)]) == 0
    report = json.loads((evaluated / "report.json").read_text())
    assert (report["split"], report["num_samples"], report["skipped_videos"]) == ("val", 1, 2)
    assert report["labelled"] and 0 <= report["top1"] <= 1
    assert _read_skipped(evaluated / "missing-val.csv") == _read_skipped(run / "missing-val.csv")
    [row] = _rows(evaluated / "predictions.csv")
    assert (row["youtube_id"], row["time_start"], row["label"]) == ("vvv", "0", "abseiling")
    assert (evaluated / "confusion.png").is_file()
    assert main(["evaluate", "--checkpoint", str(run), "--split", "train", "--workers", "0",
                 "--out", str(tmp_path / "train-eval")]) == 0
    report = json.loads((tmp_path / "train-eval" / "report.json").read_text())
    assert (report["num_samples"], report["skipped_videos"]) == (4, 2)  # fff fails to decode:
    assert [r["youtube_id"] for r in _rows(tmp_path / "train-eval" / "predictions.csv")] == [
        "aaa", "b-b_1", "ccc", "ddd"]  # its row, another video's clip, is left out

    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run), "--split", "test", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    folder = run / "eval-kinetics-test-clip-8f"
    assert "2 videos, clip mode (first 8 frames): no labels, so no accuracy" in out
    assert f"predictions: {folder / 'predictions.csv'}" in out and "confusion" not in out
    report = json.loads((folder / "report.json").read_text())
    assert not report["labelled"] and "top1" not in report and report["skipped_videos"] == 1
    rows = _rows(folder / "predictions.csv")
    assert [(r["youtube_id"], r["time_end"], r["label"]) for r in rows] == [
        ("ttt", "10", ""), ("uuu", "17", "")]
    for r in rows:  # the three classes, best first
        assert sorted(r[f"top{k}"] for k in (1, 2, 3)) == CLASSES
        assert float(r["score1"]) >= float(r["score2"]) >= float(r["score3"])
    assert _read_skipped(folder / "missing-test.csv") == [("missing", "nnn", "", "test.csv:4")]
    assert not (folder / "confusion.png").exists()


def test_strict_through_the_cli(tree: Path, tmp_path: Path, capsys) -> None:
    import tiny_clips  # noqa: F401  (registers tiny_video_net)

    run = tmp_path / "run"
    assert main(["train", "--dataset", "kinetics", "--root", str(tree), "--strict", "--out",
                 str(run), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"{tree / 'annotations' / 'train.csv'}:6: eee: no video file" in err
    assert "without --strict, strict=False, they are skipped" in err
    assert not (run / "last.pt").exists()


def test_evaluate_strict_and_split_names(tree: Path, tmp_path: Path, capsys) -> None:
    """``mict evaluate --strict`` on a checkpoint made here; split names are Kinetics'."""
    import tiny_clips  # noqa: F401  (registers tiny_video_net)
    from mictnet.engine.checkpoint import CheckpointMeta, save_checkpoint
    from mictnet.engine.train_config import TrainConfig
    from mictnet.models import build_model

    model = build_model("tiny_video_net", len(CLASSES))
    cfg = TrainConfig()
    cfg.data.dataset, cfg.data.root, cfg.data.resize = "kinetics", str(tree), (32, 32)
    ckpt = tmp_path / "k.pt"
    save_checkpoint(ckpt, model, CheckpointMeta(model.spec, CLASSES, (8, 32, 32),
                                                cfg.to_dict(), 1, 1, {}))
    args = ["evaluate", "--checkpoint", str(ckpt), "--workers", "0", "--out", str(tmp_path)]
    assert main([*args, "--strict"]) == 2
    assert "validate.csv:3: www: no video file" in capsys.readouterr().err
    assert main([*args, "--split", "test", "--strict"]) == 2
    assert "test.csv:4: nnn: no video file" in capsys.readouterr().err
    assert main([*args, "--dataset", "ucf101", "--split", "test"]) == 2
    assert "split names ('test') are Kinetics splits" in capsys.readouterr().err
    assert main(["sweep", "--checkpoint", str(ckpt), "--split", "test", "--lengths", "8",
                 "--workers", "0", "--out", str(tmp_path / "sweep")]) == 2
    assert "the test videos have no labels: a sweep needs labelled ones" in (
        capsys.readouterr().err)


def test_flat_root_with_annotations_beside_it(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    _csv(tmp_path / "annotations" / "val.csv", VAL[:2], "validate")
    _write_video(root / "vvv_000000_000010.mp4")
    _write_video(root / "zumba" / "www.avi")  # named by the YouTube id alone
    ds = Kinetics(root, "val", False, **OPTIONS)
    assert ds.classes == ["abseiling", "zumba"] and ds.missing == []
    assert [(Path(p).name, label) for p, label in ds.samples] == [
        ("vvv_000000_000010.mp4", 0), ("www.avi", 1)]
