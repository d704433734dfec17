"""``mict live``: a file, a local HTTP stream served by FFmpeg, annotation, errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import torch

import mictnet
from mictnet.cli import main
from mictnet.engine.checkpoint import CheckpointMeta, save_checkpoint
from mictnet.models import build_model

CLASSES = ["clap", "jump", "wave"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=3, temporal_stride=4)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, CheckpointMeta(model.spec, CLASSES, (8, 32, 32),
                                                {"data": {"resize": [40, 36]}}))
    return path


def test_live_file_json_lines_and_annotated_video(checkpoint, make_video, tmp_path, capsys):
    torch.set_num_threads(1)
    video = make_video(tmp_path / "clip.avi", 30, size=(96, 72))
    out = tmp_path / "annotated.mp4"
    assert main(["live", str(video), "--checkpoint", str(checkpoint), "--json-lines",
                 "--out", str(out), "--chunk", "4"]) == 0
    stdout, err = capsys.readouterr()
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert len(lines) == 30 // 4 + 1  # one step per 4 frames (temporal stride 4)
    assert all(len(r["labels"]) == 3 and set(r["labels"]) == set(CLASSES) for r in lines)
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-3 for r in lines)
    assert [r["time"] for r in lines] == sorted(r["time"] for r in lines)
    assert "30 frames read, 0 dropped" in err and f"annotated video: {out}" in err
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    cap.release()


def test_live_threshold_and_duration(checkpoint, make_video, tmp_path, capsys):
    video = make_video(tmp_path / "clip.avi", 40, size=(64, 48), fps=20)
    assert main(["live", str(video), "--checkpoint", str(checkpoint), "--duration", "1",
                 "--threshold", "0", "--average", "3"]) == 0
    stdout, err = capsys.readouterr()
    assert "20 frames read" in err
    tops = [line.split()[1] for line in stdout.splitlines()]
    assert tops and all(a != b for a, b in zip(tops, tops[1:], strict=False))  # changes only


def test_live_missing_source_is_one_clear_error(checkpoint, tmp_path, capsys):
    assert main(["live", str(tmp_path / "nothing.mp4"), "--checkpoint", str(checkpoint)]) == 2
    assert "nothing.mp4: cannot open" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_http_stream_served_by_ffmpeg(checkpoint, make_video, tmp_path, capsys):
    ffmpeg = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe()
    video = make_video(tmp_path / "clip.avi", 50, size=(96, 72))
    url = f"http://127.0.0.1:{_free_port()}/live.ts"
    server = subprocess.Popen([ffmpeg, "-loglevel", "error", "-re", "-i", str(video), "-c:v",
                               "mpeg2video", "-f", "mpegts", "-listen", "1", url])
    try:
        code = main(["live", url, "--checkpoint", str(checkpoint), "--json-lines",
                     "--retries", "1"])
    finally:
        server.kill()
        server.wait()
    stdout, err = capsys.readouterr()
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert len(lines) >= 5 and "frames read" in err
    # the stream ends with the file: one reconnection is tried, then a clear error, no hang
    assert code == 2 and f"error: {url}: no frames after 1 reconnections" in err


def test_ctrl_c_ends_cleanly_and_finalises_the_annotated_video(checkpoint, make_video, tmp_path):
    video = make_video(tmp_path / "clip.avi", 100, size=(64, 48), fps=25)
    out = tmp_path / "annotated.mp4"
    env = dict(os.environ, PYTHONPATH=str(Path(mictnet.__file__).parents[1]))
    child = subprocess.Popen(
        [sys.executable, "-m", "mictnet.cli", "live", str(video), "--checkpoint", str(checkpoint),
         "--realtime", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert child.stdout.readline().strip().endswith("%")  # a first step: it is live
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 0 and "interrupted" in err, err
    read = int(err.split(" frames read")[0].split()[-1])
    assert 0 < read < 100
    cap = cv2.VideoCapture(str(out))
    written = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))  # the file is finalised and readable
    assert 4 <= written <= read  # frames still queued at the interrupt were never shown
    cap.release()
