"""Which frames make a clip: the training and testing recipes, and the test-time stride of a
model's clip spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mictnet.data import ClipSampler
from mictnet.inference import clip_indices


def test_sampler_recipes():
    g = torch.Generator().manual_seed(0)
    train = ClipSampler(16, "clip", train=True)
    strides = set()
    for _ in range(200):
        (clip,) = train.clips(150, g)
        steps = set(np.diff(clip))
        assert len(clip) == 16 and len(steps) == 1 and clip[0] >= 0 and clip[-1] < 150
        strides |= steps
    assert strides == {1, 2, 3, 4}
    for _ in range(50):  # shorter than the clip: looped over the down-sampled video
        (clip,) = train.clips(10, g)
        assert len(clip) == 16 and max(clip) < 10 and len(set(clip)) <= 10
    assert ClipSampler(16).clips(150) == [list(range(16))]
    assert ClipSampler(16).clips(5) == [[i % 5 for i in range(16)]]
    starts = [c[0] for c in ClipSampler(16, "multiclip", num_clips=5).clips(116)]
    assert starts == [0, 25, 50, 75, 100]
    assert ClipSampler(None, "video").clips(7) == [list(range(7))]
    with pytest.raises(ValueError, match="unknown clip mode"):
        ClipSampler(16, "random")
    with pytest.raises(ValueError, match="needs mode='video'"):
        ClipSampler(None, "clip")


def test_test_clips_read_every_stride_th_frame() -> None:
    assert ClipSampler(4, stride=2).clips(20) == [[0, 2, 4, 6]]
    assert ClipSampler(4, stride=3).clips(7) == [[0, 3, 6, 0]]  # looped, down-sampled
    assert clip_indices(40, 4, 2, stride=2) == [[0, 2, 4, 6], [32, 34, 36, 38]]
    assert ClipSampler(None, "video", stride=4).clips(10) == [[0, 4, 8]]


def test_predict_and_evaluate_take_clips_the_same_way() -> None:
    """``--clips K``: up to K evenly spaced clips, no more than the video holds, in ``mict
    predict`` (clip_indices) and ``mict evaluate --mode video`` (multiclip) alike."""
    for total, k in ((40, 5), (116, 5), (10, 3), (160, 10)):
        assert clip_indices(total, 16, k) == ClipSampler(16, "multiclip", num_clips=k).clips(
            total)
    assert len(ClipSampler(16, "multiclip", num_clips=5).clips(40)) == 3
