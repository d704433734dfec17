"""``Predictor.stream``: a video's frames one by one give the offline pass's per-step logits."""

from __future__ import annotations

import logging

import pytest
import torch

from mictnet.data.clip_spec import ClipSpec
from mictnet.data.decode import read_video
from mictnet.engine.checkpoint import CheckpointMeta
from mictnet.inference import Predictor
from mictnet.models import build_model
from mictnet.models.streaming import step_logits

CLIP = ClipSpec(frames=8, crop=32, resize=(40, 36))


def predictor(name: str, clip: ClipSpec = CLIP, **options) -> Predictor:
    torch.manual_seed(0)
    model = build_model(name, num_classes=3, **options)
    meta = CheckpointMeta(model.spec, ["a", "b", "c"], clip.input_size, clip=clip)
    return Predictor(model, meta)


@pytest.mark.parametrize(("stride", "chunk", "temporal_stride"), [(1, 1, 16), (1, 5, 4),
                                                                  (2, 3, 4)])
def test_stream_equals_the_offline_steps_of_the_video(make_video, tmp_path, stride, chunk,
                                                      temporal_stride):
    torch.set_num_threads(1)
    p = predictor("mict_resnet18", ClipSpec(8, stride, (40, 36), 32),
                  temporal_stride=temporal_stride)
    frames, _ = read_video(make_video(tmp_path / "v.mp4", 37, size=(96, 72), fourcc="mp4v"))
    steps = list(p.stream(iter(frames), chunk=chunk))
    with torch.inference_mode():
        clip = p.transform(torch.from_numpy(frames[::stride]))
        expected = step_logits(p.model, clip[None])[0]
    assert [s.index for s in steps] == list(range(len(expected)))
    torch.testing.assert_close(torch.stack([s.logits for s in steps]), expected,
                               rtol=1e-4, atol=1e-4)
    period = temporal_stride * stride
    assert [s.first_frame for s in steps] == [i * period for i in range(len(steps))]
    assert steps[-1].last_frame == 36 and steps[-1].emitted_after == 37
    assert all(s.emitted_after > s.last_frame for s in steps)


def test_other_families_fall_back_to_windows(caplog):
    p = predictor("resnet2d_18")
    frames = torch.randint(0, 255, (20, 36, 40, 3), dtype=torch.uint8).numpy()
    with caplog.at_level(logging.INFO):
        steps = list(p.stream(frames))
    assert "no incremental pass" in caplog.text
    assert [(s.first_frame, s.last_frame) for s in steps] == [(0, 7), (2, 9), (4, 11), (6, 13),
                                                              (8, 15), (10, 17), (12, 19)]
    with torch.inference_mode():
        window = p.transform(torch.from_numpy(frames[12:20]))[None]
        torch.testing.assert_close(steps[-1].logits, p.model(window)[0], rtol=1e-4, atol=1e-4)


def test_a_deferred_stream_gives_the_same_steps_with_precompute_at_any_moment():
    """``mict live``'s stream (``defer``: work for later steps left to ``precompute`` while no
    frame waits) gives every step of the eager stream, whenever ``precompute`` runs."""
    p = predictor("mict_resnet18", temporal_stride=4)
    frames = torch.randint(0, 255, (29, 36, 40, 3), dtype=torch.uint8).numpy()
    expected = list(p.stream(frames, chunk=1))
    stream = p.open_stream(chunk=1, defer=True)
    got = []
    for i, frame in enumerate(frames):
        got += stream.push(frame)
        if i % 3:  # not after every frame: a busy moment leaves the work to the next push
            stream.precompute()
    got += stream.close()
    assert [s.index for s in got] == [s.index for s in expected] and len(got) == 8
    torch.testing.assert_close(torch.stack([s.logits for s in got]),
                               torch.stack([s.logits for s in expected]), rtol=1e-4, atol=1e-4)
