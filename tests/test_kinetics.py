"""Kinetics: annotation CSVs, videos in class folders or flat, missing and unreadable videos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from mictnet.cli import main
from mictnet.data import Kinetics, SplitError, build_dataset
from mictnet.data.checks import check_dataset

HEADER = "label,youtube_id,time_start,time_end,split\n"
TRAIN = [("abseiling", "aaa", 0, 10), ("air drumming", "b-b_1", 14, 24), ("zumba", "ccc", 5, 15),
         ("abseiling", "ddd", 0, 10), ("air drumming", "eee", 1, 11), ("zumba", "fff", 2, 12)]
VAL = [("abseiling", "vvv", 0, 10), ("zumba", "www", 3, 13)]
CLASSES = ["abseiling", "air drumming", "zumba"]
FAST = ["--model", "tiny_video_net", "--frames", "8", "--crop-size", "32", "--batch-size", "4",
        "--workers", "0", "--no-progress", "--set", "data.resize=[32, 32]",
        "--set", "runtime.threads=1", "--set", "runtime.tensorboard=false"]
OPTIONS = {"frames": 8, "crop_size": 32, "resize": (32, 32)}


def _csv(path: Path, rows: list[tuple[str, str, int, int]], split: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f'"{label}",{yid},{start},{end},{split}\n' for label, yid, start, end in rows)
    path.write_text(HEADER + body)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/annotations`` CSVs; train videos in class folders and flat, ``eee`` missing,
    ``fff`` corrupt; val in a ``val`` class folder, ``www`` missing."""
    root = tmp_path_factory.mktemp("k400") / "kinetics400"
    _csv(root / "annotations" / "train.csv", TRAIN, "train")
    _csv(root / "annotations" / "validate.csv", VAL, "validate")
    for rel in ("train/abseiling/aaa_000000_000010.avi", "train/b-b_1_000014_000024.avi",
                "train/zumba/ccc_000005_000015.avi", "train/ddd_000000_000010.avi",
                "val/abseiling/vvv_000000_000010.avi"):
        _write_video(root / rel)
    (root / "train" / "zumba" / "fff_000002_000012.mkv").write_bytes(b"not a video" * 100)
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
    assert ds.split == "val" and ds.classes == CLASSES
    assert [label for _, label in ds.samples] == [0] and [m[0] for m in ds.missing] == ["www"]
    elsewhere = tmp_path / "csv"
    shutil.copytree(tree / "annotations", elsewhere)
    (elsewhere / "validate.csv").rename(elsewhere / "val.csv")
    ds = Kinetics(tree, "val", False, annotations=elsewhere, **OPTIONS)
    assert len(ds) == 1 and [m[0] for m in ds.missing] == ["www"]
    with pytest.raises(ValueError, match="not 'valid'"):
        Kinetics(tree, "valid", False)


def test_strict_names_the_csv_line(tree: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train\.csv:6: eee: no video file"):
        Kinetics(tree, "train", strict=True, **OPTIONS)


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
    with pytest.raises(SplitError, match=r"train\.csv:1: header .* lacks column\(s\) label"):
        Kinetics(tree, "train", annotations=bad)


def test_check_reports_counts_and_missing(tree: Path, capsys) -> None:
    report = check_dataset("kinetics", tree, progress=False)
    assert report.classes == CLASSES and report.videos == 6
    assert report.counts["train"] == {"abseiling": 2, "air drumming": 1, "zumba": 2}
    assert report.counts["val"] == {"abseiling": 1, "air drumming": 0, "zumba": 0}
    assert len(report.problems) == 3
    assert main(["check", "--dataset", "kinetics", "--root", str(tree)]) == 1
    out = capsys.readouterr().out
    assert "train.csv:6: eee: no video file" in out and "validate.csv:3: www" in out
    assert "fff_000002_000012.mkv" in out and "3 problem(s)" in out


def test_prepare_skips_missing_videos(tree: Path, tmp_path: Path, capsys) -> None:
    cache = tmp_path / "cache"
    assert main(["prepare", "--dataset", "kinetics", "--root", str(tree), "--out", str(cache),
                 "--size", "32x32"]) == 1  # the corrupt file fails
    out = capsys.readouterr().out
    assert out.startswith("5 videos prepared") and "fff_000002_000012.mkv" in out


def test_train_on_kinetics(tree: Path, tmp_path: Path, caplog) -> None:
    import tiny_clips  # noqa: F401  (registers tiny_video_net)

    run = tmp_path / "run"
    assert main(["train", "--dataset", "kinetics", "--root", str(tree), "--preset", "demo-quick",
                 "--epochs", "1", "--out", str(run), *FAST]) == 0
    assert torch.load(run / "last.pt", weights_only=False)["classes"] == CLASSES
    assert "eee" in caplog.text and "fff_000002_000012.mkv" in caplog.text


def test_flat_root_with_annotations_beside_it(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    _csv(tmp_path / "annotations" / "val.csv", VAL, "validate")
    _write_video(root / "vvv_000000_000010.mp4")
    _write_video(root / "zumba" / "www.avi")  # named by the YouTube id alone
    ds = Kinetics(root, "val", False, **OPTIONS)
    assert ds.classes == ["abseiling", "zumba"] and ds.missing == []
    assert [(Path(p).name, label) for p, label in ds.samples] == [
        ("vvv_000000_000010.mp4", 0), ("www.avi", 1)]
