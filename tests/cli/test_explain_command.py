"""``mict explain`` end to end on an H.264 MP4 and a synthetic AVI: the overlay MP4 and GIF, the
sheet, the importance curve and ``explain.json``; bad input is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bad_videos import decodable_frames
from mictnet.cli import main
from mictnet.data.synthetic import MOTIONS, render_clip, write_video
from mictnet.engine.checkpoint import CheckpointMeta, save_checkpoint
from mictnet.models import build_model

CLASSES = ["clap", "jump", "wave"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, CheckpointMeta(model.spec, CLASSES, (8, 32, 32),
                                                {"data": {"resize": [40, 36]}}))
    return path


def test_explain_writes_every_file_for_the_top_classes(checkpoint, tmp_path, capsys) -> None:
    torch.set_num_threads(1)
    h264 = pytest.importorskip("imageio_ffmpeg")
    import subprocess

    from conftest import synthetic_frames

    mp4 = tmp_path / "walk.mp4"
    subprocess.run([h264.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt",
                    "rgb24", "-s", "64x48", "-r", "25", "-i", "-", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", str(mp4)], input=synthetic_frames(12, (64, 48)).tobytes(),
                   check=True)
    avi = tmp_path / "rise.avi"
    write_video(avi, render_clip(MOTIONS[2], 0, 10, (48, 48)))
    out = tmp_path / "out"
    assert main(["explain", str(mp4), str(avi), "--checkpoint", str(checkpoint), "--top", "2",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    folders = sorted(out.iterdir())
    assert len(folders) == 2
    for folder, frames in zip(folders, (10, 12), strict=True):  # rise-*, walk-*
        records = json.loads((folder / "explain.json").read_text())
        assert len(records) == 2 and records[0]["label"] != records[1]["label"]
        for record in records:
            assert record["frames"] == frames and len(record["maps"]) == frames
            assert record["layer"] == "layer2"
            for name in record["files"]:
                assert Path(name).is_file() and name in text
            assert decodable_frames(Path(record["files"][0])) == frames  # the overlay MP4
            assert Path(record["files"][1]).read_bytes()[:3] == b"GIF"
            assert Path(record["files"][2]).read_bytes()[:4] == b"\x89PNG"


def test_explain_class_and_errors(checkpoint, make_video, tmp_path, capsys) -> None:
    video = make_video(tmp_path / "v.avi", 9)
    out = tmp_path / "out"
    assert main(["explain", str(video), "--checkpoint", str(checkpoint), "--class", "jump",
                 "--method", "gradcam++", "--out", str(out)]) == 0
    [record] = json.loads(next(out.iterdir()).joinpath("explain.json").read_text())
    assert record["label"] == "jump" and record["method"] == "gradcam++"
    capsys.readouterr()
    assert main(["explain", str(video), "--checkpoint", str(checkpoint), "--class", "dance",
                 "--out", str(out)]) == 2
    assert "unknown class 'dance'" in capsys.readouterr().err
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    assert main(["explain", str(bad), str(video), "--checkpoint", str(checkpoint),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "1 of 2 videos could not be read" in err
    with pytest.raises(SystemExit):
        main(["explain", str(video), "--checkpoint", str(checkpoint), "--class", "jump",
              "--top", "2"])
