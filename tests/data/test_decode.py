"""Frame-exact decoding against a full sequential decode, metadata, and bad video files."""

from __future__ import annotations

import importlib
import os
import subprocess

import numpy as np
import pytest

from bad_videos import decodable_frames, png_as_video, truncated_faststart_mp4
from conftest import decode_all_frames, synthetic_frames
from mictnet.data.decode import VideoError, VideoReader, read_clip, read_video, video_info

SIZE = (96, 64)  # width, height
FRAMES = 60


def mpeg2_picture_types(path) -> str:
    """``I``/``P``/``B`` of each picture header in an MPEG-2 stream (picture_coding_type)."""
    data = path.read_bytes()
    types, i = [], data.find(b"\x00\x00\x01\x00")
    while i >= 0:
        types.append({1: "I", 2: "P", 3: "B"}.get((data[i + 5] >> 3) & 7, "?"))
        i = data.find(b"\x00\x00\x01\x00", i + 4)
    return "".join(types)


def write_h264(path):
    """An H.264 MP4 with B-frames, encoded by libx264 (the FFmpeg binary of imageio-ffmpeg,
    a test dependency: OpenCV's wheel has no H.264 encoder)."""
    imageio_ffmpeg = importlib.import_module("imageio_ffmpeg")
    frames = synthetic_frames(FRAMES, SIZE)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{SIZE[0]}x{SIZE[1]}", "-r", "25", "-i", "-", "-c:v", "libx264",
           "-bf", "3", "-pix_fmt", "yuv420p", "-threads", "1", str(path)]
    subprocess.run(cmd, input=frames.tobytes(), check=True)
    assert b"bframes=3" in path.read_bytes(), "the test video should use B-frames"
    return path


CLIPS = [(0, 16, 1), (3, 16, 2), (30, 8, 1), (10, 12, 4), (44, 16, 1), (59, 1, 1), (1, 5, 13)]


@pytest.fixture(params=["xvid.avi", "mpeg2-bframes.avi", "mp4v.mp4", "h264.mp4"])
def video(request, tmp_path, make_video):
    name = request.param
    path = tmp_path / name
    if name == "h264.mp4":
        return write_h264(path)
    fourcc = {"xvid.avi": "XVID", "mpeg2-bframes.avi": "MPG2", "mp4v.mp4": "mp4v"}[name]
    make_video(path, FRAMES, SIZE, fourcc)
    if name == "mpeg2-bframes.avi":
        assert "B" in mpeg2_picture_types(path), "the test video should contain B-frames"
    return path


@pytest.mark.parametrize("seek", [True, False])
def test_read_clip_is_frame_exact(video, seek):
    reference = decode_all_frames(video)
    assert len(reference) == FRAMES
    for start, count, stride in CLIPS:
        clip, info = read_clip(video, start, count, stride, seek=seek)
        expected = reference[start:start + count * stride:stride]
        assert clip.dtype == np.uint8 and clip.shape == (count, SIZE[1], SIZE[0], 3)
        assert np.array_equal(clip, expected), (video.name, start, count, stride)
        assert info.frames == FRAMES


def test_reader_reads_any_order_and_rewinds(tmp_path, make_video):
    path = make_video(tmp_path / "v.avi", FRAMES, SIZE, "MPG2")
    reference = decode_all_frames(path)
    with VideoReader(path) as reader:
        indices = [40, 2, 2, 55, 17]
        assert np.array_equal(reader.read(indices), reference[indices])
        assert np.array_equal(reader.read([1]), reference[[1]])


def test_read_video_and_info(tmp_path, make_video):
    path = make_video(tmp_path / "v.avi", 30, SIZE, fps=12.5)
    info = video_info(path)
    assert (info.frames, info.fps, info.width, info.height) == (30, 12.5, *SIZE)
    frames, info = read_video(path)
    assert np.array_equal(frames, decode_all_frames(path))
    first, _ = read_video(path, max_frames=7)
    assert np.array_equal(first, frames[:7])


def test_colours_come_back_rgb(tmp_path, make_video):
    red = np.zeros((10, 64, 64, 3), np.uint8)
    red[..., 0] = 220
    clip, _ = read_clip(make_video(tmp_path / "red.avi", red, (64, 64), "MJPG"), 0, 3)
    assert clip[..., 0].mean() > 200 and clip[..., 2].mean() < 30


def test_grayscale_video_gives_three_equal_channels(tmp_path, make_video):
    path = make_video(tmp_path / "gray.avi", 20, SIZE, "MJPG", color=False)
    clip, _ = read_clip(path, 5, 4)
    assert clip.shape == (4, SIZE[1], SIZE[0], 3)
    assert np.array_equal(clip[..., 0], clip[..., 1]) and np.array_equal(clip[..., 1], clip[..., 2])


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="nope.avi: no such file") as err:
        read_clip(tmp_path / "nope.avi", 0, 4)
    assert err.value.reason == "missing"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.avi"
    path.touch()
    with pytest.raises(VideoError, match=r"empty.avi: the file is empty") as err:
        video_info(path)
    assert err.value.reason == "empty"


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.avi"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    with pytest.raises(VideoError, match="corrupt.avi: cannot open it as a video") as err:
        read_video(path)
    assert err.value.reason == "unreadable"


@pytest.mark.parametrize("seek", [True, False])
def test_truncated_file_names_the_real_length(tmp_path, make_video, seek):
    path = make_video(tmp_path / "cut.avi", FRAMES, SIZE)
    full = decode_all_frames(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    assert video_info(path).frames == FRAMES  # the header still claims every frame
    with pytest.raises(VideoError, match=r"cut.avi: frame 50 requested but decoding stops after "
                                         r"\d+ frames \(header says 60\)") as err:
        read_clip(path, 50, 8, seek=seek)
    real = err.value.decoded_frames
    assert err.value.reason == "truncated" and 0 < real < FRAMES
    frames, info = read_video(path)
    assert info.frames == real == len(frames)
    assert np.array_equal(frames[:-1], full[:real - 1])  # the last one may be cut short


def test_frames_past_the_end_are_an_error(tmp_path, make_video):
    path = make_video(tmp_path / "short.avi", 10, SIZE)
    with pytest.raises(VideoError, match="frame 10 requested but decoding stops after 10"):
        read_clip(path, 4, 4, stride=2)
    with pytest.raises(VideoError, match="num_frames"):
        read_clip(path, 0, 0)
    assert os.path.exists(path)


def test_png_renamed_mp4_is_a_single_frame(tmp_path):
    info = video_info(png_as_video(tmp_path / "photo.mp4"), check_end=True)
    assert (info.frames, info.truncated) == (1, False)
    assert info.warning() == "a single frame (a still image, not a video)"
    assert "1 frame, fewer than one clip of 16 (looped)" in info.warning(clip_frames=16)


def test_truncated_faststart_mp4_is_found_at_its_end(tmp_path):
    path = truncated_faststart_mp4(tmp_path / "cut.mp4")
    real = decodable_frames(path)
    assert 0 < real < 60
    header = video_info(path)
    assert (header.frames, header.truncated, header.warning()) == (60, False, None)
    info = video_info(path, check_end=True)
    assert (info.frames, info.header_frames, info.truncated) == (real, 60, True)
    assert info.warning() == (f"header says 60 frames but only {real} decode (truncated file or "
                              "wrong frame count)")
    assert video_info(write_h264(tmp_path / "whole.mp4"), check_end=True).warning() is None


@pytest.mark.parametrize("seek", [True, False])
def test_read_clips_plans_again_on_the_real_count(tmp_path, seek):
    path = truncated_faststart_mp4(tmp_path / "cut.mp4")
    real = decodable_frames(path)
    counts = []

    def last_frames(frames):
        counts.append(frames)
        return [range(frames - 4, frames), range(frames - 2, frames)]

    with VideoReader(path, seek=seek) as reader:
        clips = reader.read_clips(last_frames)
        assert reader.info.frames == real and reader.info.truncated
    assert counts == [60, real]
    reference = decode_all_frames(path)
    assert np.array_equal(clips[0], reference[real - 4:real])
    assert np.array_equal(clips[1], reference[real - 2:real])


def test_a_directory_is_not_a_video(tmp_path):
    (tmp_path / "clips.mp4").mkdir()
    with pytest.raises(VideoError, match=r"clips.mp4: is a directory, not a video file"):
        video_info(tmp_path / "clips.mp4")
