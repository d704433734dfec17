"""``mict predict`` / ``load(CKPT).predict``: real video files of odd sizes and formats."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from mictnet.cli import main
from mictnet.data.decode import VideoReader, read_frames
from mictnet.data.transforms import eval_transform
from mictnet.engine.checkpoint import CheckpointMeta, save_checkpoint
from mictnet.inference import Predictor, clip_indices, load
from mictnet.models import build_model
from mictnet.models.streaming import step_logits
from mictnet.tools.predict import timeline_stem

CLASSES = ["clap", "jump", "wave"]
INPUT = (8, 32, 32)
RESIZE = (40, 36)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    meta = CheckpointMeta(model.spec, CLASSES, INPUT, {"data": {"resize": list(RESIZE)}})
    save_checkpoint(path, model, meta)
    return path


@pytest.fixture(scope="module")
def predictor(checkpoint) -> Predictor:
    torch.set_num_threads(1)
    return load(checkpoint, clips=3)


def shrunk(frames: np.ndarray) -> np.ndarray:
    """Frames larger than the model's resize, resized to it (area), as prediction decodes them."""
    if frames.shape[2] <= RESIZE[0] and frames.shape[1] <= RESIZE[1]:
        return frames
    return np.stack([cv2.resize(f, RESIZE, interpolation=cv2.INTER_AREA) for f in frames])


def expected_probabilities(predictor: Predictor, path, clips: list[list[int]]) -> torch.Tensor:
    """Softmax averaged over ``clips`` (frame index lists), computed directly."""
    transform = eval_transform(INPUT[1], RESIZE)
    batch = torch.stack([transform(torch.from_numpy(shrunk(read_frames(path, c)[0])))
                         for c in clips])
    with torch.no_grad():
        return predictor.model(batch).softmax(dim=1).mean(dim=0)


@pytest.mark.parametrize(("name", "fourcc", "size", "frames", "color"), [
    ("odd.mp4", "mp4v", (176, 144), 30, True),
    ("hd.avi", "XVID", (1280, 720), 10, True),
    ("small.webm", "VP80", (98, 74), 20, True),
    ("gray.avi", "MJPG", (160, 120), 14, False),
    ("short.mkv", "XVID", (64, 48), 5, True),
])
def test_predict_any_format_size_and_length(predictor, make_video, tmp_path, name, fourcc, size,
                                            frames, color):
    path = make_video(tmp_path / name, frames, size=size, fourcc=fourcc, color=color)
    pred = predictor.predict(path, top=2)
    assert (pred.width, pred.height, pred.frames) == (*size, frames)
    assert pred.clip_frames == INPUT[0]
    assert pred.clips == min(3, -(-frames // INPUT[0]))
    # The answer is the mean softmax of evenly spaced training-length clips (looped if short).
    clips = [[(c[0] + k) % frames for k in range(INPUT[0])]
             for c in clip_indices(frames, INPUT[0], 3)]
    expected = expected_probabilities(predictor, path, clips)
    values, indices = expected.topk(2)
    assert pred.labels == [CLASSES[i] for i in indices.tolist()]
    np.testing.assert_allclose(pred.probabilities, values.numpy(), atol=1e-5)
    assert pred.label == pred.labels[0] and pred.probabilities[0] >= pred.probabilities[1]


def clip_starts(total: int, length: int, max_clips: int) -> list[int]:
    return [clip[0] for clip in clip_indices(total, length, max_clips)]


def test_clip_starts_spread_over_the_video():
    assert clip_starts(5, 8, 5) == [0]
    assert clip_starts(8, 8, 5) == [0]
    assert clip_starts(20, 8, 5) == [0, 6, 12]
    assert clip_starts(1000, 16, 5) == [0, 246, 492, 738, 984]
    assert clip_indices(5, 8, 5) == [[0, 1, 2, 3, 4, 0, 1, 2]]


def test_timeline_one_step_per_second(predictor, make_video, tmp_path):
    path = make_video(tmp_path / "long.mp4", 47, size=(96, 72), fourcc="mp4v", fps=10)
    steps = predictor.timeline(path, method="windows")
    assert [(s.start, s.end) for s in steps] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 4.7)]
    # 8-frame windows centred on frames 5, 15, 25, 35, 45; the last one kept inside the video.
    assert [s.first_frame for s in steps] == [1, 11, 21, 31, 39]
    for s in steps:
        assert s.frames == INPUT[0]
        probs = expected_probabilities(predictor, path,
                                       [list(range(s.first_frame, s.first_frame + INPUT[0]))])
        assert s.label == CLASSES[int(probs.argmax())]
        assert s.probability == pytest.approx(float(probs.max()), abs=1e-5)


def test_stream_timeline_is_one_pass_over_the_video(predictor, make_video, tmp_path):
    path = make_video(tmp_path / "long.mp4", 47, size=(96, 72), fourcc="mp4v", fps=10)
    steps = predictor.timeline(path)  # MiCT-ResNet: the incremental pass
    assert [(s.start, s.end) for s in steps] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 4.7)]
    with VideoReader(path, shrink_to=predictor.clip.resize) as reader:  # as the predictor reads
        clip = predictor.transform(torch.from_numpy(reader.read_all()))
    with torch.inference_mode():
        probs = step_logits(predictor.model, clip[None])[0].softmax(dim=1)  # 16-frame steps
    # second 1 (frames 10-19) overlaps steps 0 (frames 0-15, 6 frames) and 1 (16-31, 4 frames)
    expected = (6 * probs[0] + 4 * probs[1]) / 10
    assert steps[1].label == CLASSES[int(expected.argmax())]
    assert steps[1].probability == pytest.approx(float(expected.max()), abs=1e-5)
    assert (steps[1].first_frame, steps[1].frames) == (0, 32)


def test_predict_with_timeline_decodes_each_frame_once(predictor, make_video, tmp_path,
                                                       monkeypatch):
    path = make_video(tmp_path / "long.mp4", 47, size=(96, 72), fourcc="mp4v", fps=10)
    alone = predictor.predict(path), predictor.timeline(path)
    reads: list[list[int]] = []
    original = VideoReader.read

    def counted(self, indices):
        reads.append(list(indices))
        return original(self, indices)

    monkeypatch.setattr(VideoReader, "read", counted)
    both = predictor.predict_with_timeline(path)
    assert both[0] == alone[0] and both[1] == alone[1]
    forward = [i for indices in reads[1:] for i in indices]  # after check_end's tail
    assert len(forward) == len(set(forward)) and forward == sorted(forward)
    windows = {i for s in alone[1] for i in range(s.first_frame, s.first_frame + s.frames)}
    assert windows <= set(forward)


def test_cli_bad_video_does_not_stop_the_others(checkpoint, make_video, tmp_path, capsys):
    good = make_video(tmp_path / "good.avi", 12, size=(176, 144))
    other = make_video(tmp_path / "other.webm", 9, size=(80, 60), fourcc="VP80")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 200)
    missing = tmp_path / "missing.mkv"
    code = main(["predict", str(good), str(bad), str(missing), str(other),
                 "--checkpoint", str(checkpoint), "--top", "3"])
    out, err = capsys.readouterr()
    assert code == 1
    assert str(good) in out and str(other) in out and out.count("3. ") == 2
    assert f"error: {bad}:" in err and f"error: {missing}:" in err
    assert "2 of 4 videos could not be read" in err


def test_cli_json_and_timeline_files(checkpoint, make_video, tmp_path, capsys):
    video = make_video(tmp_path / "clip.mp4", 30, size=(64, 48), fourcc="mp4v", fps=12)
    out_dir = tmp_path / "out"
    code = main(["predict", str(video), "--checkpoint", str(checkpoint), "--json", "--timeline",
                 "--top", "1", "--out", str(out_dir)])
    assert code == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["labels"][0] in CLASSES and len(record["probabilities"]) == 1
    assert [(s["start"], s["end"]) for s in record["timeline"]] == [(0, 1), (1, 2), (2, 2.5)]
    stem = timeline_stem(video)
    png, table = out_dir / f"{stem}.timeline.png", out_dir / f"{stem}.timeline.json"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(table.read_text()) == record["timeline"]
    assert json.loads((out_dir / "predictions.json").read_text()) == [record]


def test_bad_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "nope.pt"
    bad.write_bytes(b"garbage")
    assert main(["predict", "x.mp4", "--checkpoint", str(bad)]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_truncated_file_and_still_image_are_flagged(checkpoint, make_video, tmp_path, capsys):
    from bad_videos import decodable_frames, png_as_video, truncated_faststart_mp4

    cut = truncated_faststart_mp4(tmp_path / "cut.mp4", frames=60)
    image = png_as_video(tmp_path / "photo.mp4")
    good = make_video(tmp_path / "good.avi", 12)
    code = main(["predict", str(cut), str(image), str(good), "--checkpoint", str(checkpoint),
                 "--json", "--clips", "2"])
    out, err = capsys.readouterr()
    assert code == 0
    by_name = {r["video"]: r for r in json.loads(out)}
    real = decodable_frames(cut)
    truncated = by_name[str(cut)]
    assert (truncated["frames"], truncated["header_frames"], truncated["truncated"]) == (
        real, 60, True)
    assert f"header says 60 frames but only {real} decode" in truncated["warning"]
    still = by_name[str(image)]
    assert still["frames"] == 1 and "a single frame (a still image" in still["warning"]
    assert by_name[str(good)]["warning"] is None and not by_name[str(good)]["truncated"]
    assert f"warning: {cut}: header says 60" in err and f"warning: {image}: " in err
    assert "2 of 3 videos are suspect" in err

    assert main(["predict", str(image), "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "  warning: a single frame (a still image, not a video)" in out


@pytest.mark.parametrize("flag", [["--top", "0"], ["--clips", "0"], ["--top", "-2"],
                                  ["--clips", "x"]])
def test_argument_errors_exit_2_before_any_video_is_opened(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as info:  # neither the checkpoint nor the video exist
        main(["predict", str(tmp_path / "v.mp4"), "--checkpoint", str(tmp_path / "c.pt"),
              *flag])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag[0]}" in err and "could not be read" not in err


def test_a_directory_is_not_a_video(checkpoint, tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--checkpoint", str(checkpoint)]) == 1
    assert f"error: {tmp_path}: is a directory, not a video file" in capsys.readouterr().err


def test_timelines_of_same_named_videos_never_collide(checkpoint, make_video, tmp_path,
                                                      monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    first = make_video(tmp_path / "a" / "bikes.mp4", 10, fourcc="mp4v")
    second = make_video(tmp_path / "b" / "bikes.mp4", 12, fourcc="mp4v")
    argv = ["predict", str(first), str(second), "--checkpoint", str(checkpoint), "--timeline",
            "--top", "1"]
    assert main(argv) == 0
    files = sorted(p.name for p in (tmp_path / "predictions").iterdir())
    assert len(files) == 4 and all(f.startswith("bikes-") for f in files)
    assert not (tmp_path / "bikes.mp4.timeline.png").exists()
    capsys.readouterr()
    assert main(argv[:2] + argv[3:]) == 0  # the first video again: its files are replaced
    out, err = capsys.readouterr()
    assert "(replaced)" in out and f"{first}: replaced the earlier timeline files" in err
    assert len(list((tmp_path / "predictions").iterdir())) == 4


def test_device_and_precision_are_chosen_as_evaluate_chooses_them(checkpoint, make_video,
                                                                  tmp_path, monkeypatch):
    path = make_video(tmp_path / "v.avi", 12)
    auto = load(checkpoint, "auto", clips=1, amp="auto")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    full = load(checkpoint, "cpu", clips=1)
    assert full.precision.dtype is None  # Python default: full precision
    bf16 = load(checkpoint, "cpu", clips=1, amp="bf16")
    assert bf16.precision.dtype == torch.bfloat16
    seen = []
    monkeypatch.setattr(bf16.model, "forward", lambda x: seen.append(
        torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        or torch.zeros(x.shape[0], len(CLASSES)))
    bf16.predict(path)
    assert seen == [torch.bfloat16]
    with pytest.raises(SystemExit):
        main(["predict", str(path), "--checkpoint", str(checkpoint), "--amp", "fp64"])


def test_inference_does_not_import_the_training_engine() -> None:
    """``mictnet.inference`` reads checkpoints (the format in ``engine.checkpoint``) without the
    trainer, its loaders, runs or experiments."""
    code = ("import sys, mictnet.inference; print(sorted(m for m in sys.modules "
            "if m.startswith('mictnet.engine.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert ast.literal_eval(out) == ["mictnet.engine.checkpoint", "mictnet.engine.distributed",
                         "mictnet.engine.precision"]


def test_large_frames_are_shrunk_as_decoded(predictor, tmp_path):
    """Memory follows the model's input: a 1024x1024 video is never held at full size (NumPy's
    allocations, which include the decoder's frames, peak under 4 full frames; 24 of them were
    held before the frames were shrunk as decoded)."""
    import tracemalloc

    from bad_videos import flat_h264

    video = flat_h264(tmp_path / "large.mp4", (1024, 1024), frames=24)
    full_frame = 1024 * 1024 * 3
    tracemalloc.start()
    try:
        prediction, steps = predictor.predict_with_timeline(video)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (prediction.width, prediction.height, prediction.clips, len(steps)) == (1024, 1024,
                                                                                   3, 1)
    assert peak < 4 * full_frame, f"peak {peak / 2**20:.0f} MB"
    with VideoReader(video, shrink_to=RESIZE) as reader:
        assert reader.read([0, 23]).shape == (2, RESIZE[1], RESIZE[0], 3)


def test_work_stops_at_the_deadline(predictor, make_video, tmp_path):
    import time

    from mictnet.inference import BudgetExceeded

    path = make_video(tmp_path / "v.avi", 40)
    with pytest.raises(BudgetExceeded):
        predictor.predict_with_timeline(path, deadline=time.monotonic() - 1)
    assert predictor.predict(path, deadline=time.monotonic() + 600).clips == 3


def test_clips_are_bounded(checkpoint, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["predict", "v.mp4", "--checkpoint", str(checkpoint), "--clips", "100000"])
    assert stop.value.code == 2 and "at most 64 clips" in capsys.readouterr().err
    with pytest.raises(ValueError, match="clips must be 1-64"):
        load(checkpoint, clips=65)
