"""Optical flow: the estimators' direction, the uint8 mapping, flow files from XVID and H.264
videos, resumable and parallel ``prepare_flow``, ``mict check --cache`` and ``mict prepare
--flow``."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from flow_videos import panning, write_h264
from mictnet.cli import main
from mictnet.data.cache import write_container
from mictnet.data.checks import check_dataset
from mictnet.data.decode import VideoError
from mictnet.data.flow import (
    BOUND,
    MAGIC,
    FlowReader,
    dequantise,
    flow_estimator,
    flow_path,
    flow_problem,
    prepare_flow,
    quantise,
    read_flow_header,
    video_flow,
    write_flow,
)


@pytest.mark.parametrize("method", ["dis", "farneback", "tvl1"])
def test_estimators_see_the_motion_direction(method: str) -> None:
    if method == "tvl1" and not hasattr(cv2, "optflow"):
        pytest.skip("TV-L1 needs OpenCV's contrib modules (pip install "
                    "opencv-contrib-python-headless)")
    for dx in (2, -2):
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in panning(2, dx)]
        flow = flow_estimator(method)(*gray)[8:-8, 8:-8]
        assert flow.shape[-1] == 2
        assert abs(float(np.median(flow[..., 0])) - dx) < 0.5
        assert abs(float(np.median(flow[..., 1]))) < 0.5


def test_quantise_maps_the_bound_to_uint8() -> None:
    flow = np.array([-50.0, -BOUND, -1.0, 0.0, 3.3, BOUND, 99.0], np.float32)
    q = quantise(flow)
    assert q.dtype == np.uint8 and q[0] == q[1] == 0 and q[-1] == q[-2] == 255
    assert np.abs(dequantise(q)[1:-1] - np.clip(flow, -BOUND, BOUND)[1:-1]).max() <= \
        BOUND / 255 + 1e-6
    with pytest.raises(ValueError, match="at least 2 frames"):
        video_flow(panning(1), "dis")


def test_tvl1_without_contrib_names_the_package() -> None:
    if hasattr(cv2, "optflow"):
        pytest.skip("OpenCV's contrib modules are installed")
    with pytest.raises(RuntimeError, match="pip install opencv-contrib-python-headless"):
        flow_estimator("tvl1")
    with pytest.raises(ValueError, match="unknown flow method"):
        flow_estimator("lucas")


@pytest.mark.parametrize("kind", ["xvid", "h264"])
def test_flow_file_of_a_real_video(tmp_path: Path, make_video, kind: str) -> None:
    frames = panning(12)
    video = (write_h264(tmp_path / "v.mp4", frames) if kind == "h264"
             else make_video(tmp_path / "v.avi", frames))
    info = write_flow(video, tmp_path / "v.flow", "dis", size=(64, 48))
    header = read_flow_header(tmp_path / "v.flow")
    assert header["frames"] == info.frames == 12 and header["entries"] == 22
    assert header["method"] == "dis" and header["bound"] == BOUND
    with FlowReader(tmp_path / "v.flow") as reader:
        assert reader.info.frames == 12
        clip = reader.read([0, 5, 10, 11])
        assert clip.shape == (4, 48, 64, 2) and clip.dtype == np.uint8
        assert np.array_equal(clip[2], clip[3])  # the last frame repeats the last field
        x = dequantise(clip[..., 0])[:, 8:-8, 8:-8]
        assert abs(float(np.median(x)) - 2) < 0.6  # 2 pixels right per frame
        [one] = reader.read_clips(lambda n: [range(n - 3, n)])
        assert one.shape == (3, 48, 64, 2)
        with pytest.raises(VideoError, match="frame 12 requested"):
            reader.read([12])
    with pytest.raises(VideoError, match="no optical flow"):
        FlowReader(tmp_path / "none.flow")


def test_prepare_flow_resumes_and_runs_in_parallel(tmp_path: Path, make_video) -> None:
    videos = [(str(make_video(tmp_path / "videos" / f"c/{i}.avi", panning(6 + i))), f"c/{i}.avi")
              for i in range(3)]
    cache = tmp_path / "cache"
    report = prepare_flow(videos[:2], cache, "farneback", (32, 24), progress=False)
    assert (report.written, report.up_to_date, report.failed) == (2, 0, [])
    first = flow_path(cache, "c/0.avi").stat().st_mtime_ns
    report = prepare_flow(videos, cache, "farneback", (32, 24), workers=2, progress=False)
    assert (report.written, report.up_to_date, report.frames) == (1, 2, 8)  # the one left
    assert flow_path(cache, "c/0.avi").stat().st_mtime_ns == first
    report = prepare_flow(videos, cache, "dis", (32, 24), workers=2, progress=False)
    assert report.written == 3  # another method: rewritten
    assert read_flow_header(flow_path(cache, "c/2.avi"))["method"] == "dis"
    assert not list(cache.rglob(".*.tmp"))


def test_prepare_flow_reports_a_single_frame_video(tmp_path: Path, make_video) -> None:
    video = make_video(tmp_path / "still.avi", panning(1))
    report = prepare_flow([(str(video), "still.avi")], tmp_path / "cache", progress=False)
    assert report.written == 0 and "optical flow needs 2 or more" in report.failed[0]


def _dataset(root: Path, make_video) -> Path:
    for c, name in enumerate(("Left", "Right")):
        for g in (1, 2):
            make_video(root / "UCF-101" / name / f"v_{name}_g{g:02d}_c01.avi",
                       panning(5 + g, dx=2 if c else -2))
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Left\n2 Right\n")
    for s in (1, 2, 3):
        (lists / f"trainlist0{s}.txt").write_text(
            "Left/v_Left_g01_c01.avi 1\nRight/v_Right_g01_c01.avi 2\n")
        (lists / f"testlist0{s}.txt").write_text(
            "Left/v_Left_g02_c01.avi\nRight/v_Right_g02_c01.avi\n")
    return root / "UCF-101"


def test_mict_prepare_flow_and_check_cache(tmp_path: Path, make_video, capsys) -> None:
    root = _dataset(tmp_path, make_video)
    cache = tmp_path / "cache"
    args = ["prepare", "--dataset", "ucf101", "--root", str(root), "--out", str(cache),
            "--size", "32x24"]
    assert main([*args, "--flow", "dis", "--bound", "10"]) == 0
    out = capsys.readouterr().out
    assert "4 videos' optical flow (dis, bound ±10) written" in out and "--modality flow" in out
    assert read_flow_header(flow_path(cache, "Left/v_Left_g01_c01.avi"))["bound"] == 10
    assert check_dataset("ucf101", root, cache=cache, progress=False).ok
    # a flow file of another video (stale), a missing one, a damaged one
    os.replace(flow_path(cache, "Left/v_Left_g01_c01.avi"),
               flow_path(cache, "Left/v_Left_g02_c01.avi"))
    target = flow_path(cache, "Right/v_Right_g01_c01.avi")
    header = read_flow_header(target)
    write_container(target, MAGIC, header | {"frames": 9}, [b"x"] * header["entries"])
    problems = check_dataset("ucf101", root, cache=cache, progress=False).problems
    assert len(problems) == 3, problems
    assert any("v_Left_g02_c01.avi.flow: written from an older version" in p for p in problems)
    assert any("v_Left_g01_c01.avi.flow: no optical flow" in p for p in problems), problems
    assert any("v_Right_g01_c01.avi.flow: damaged header" in p for p in problems), problems
    assert main(["check", "--dataset", "ucf101", "--root", str(root), "--cache",
                 str(cache)]) == 1
    assert main([*args, "--flow", "dis", "--bound", "10"]) == 0
    assert "3 videos' optical flow" in capsys.readouterr().out  # only the three broken ones
    assert check_dataset("ucf101", root, cache=cache, progress=False).ok
    video = str(root / "Right/v_Right_g01_c01.avi")
    assert "flow of 6 frames but" in flow_problem(video, target, frames=7)
    if not hasattr(cv2, "optflow"):
        assert main([*args, "--flow", "tvl1"]) == 2
        assert "opencv-contrib-python-headless" in capsys.readouterr().err
