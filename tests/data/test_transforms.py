"""Clip augmentation: shapes, the same parameters for every frame, flips, crops, normalisation."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as F

from mictnet.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ClipTransform,
    denormalise,
    eval_transform,
    train_transform,
)


def random_clip(t: int = 8, h: int = 96, w: int = 128, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.randint(0, 256, (t, 3, h // 8, w // 8), generator=g, dtype=torch.uint8)
    return F.resize(small, [h, w], antialias=False).permute(0, 2, 3, 1).contiguous()


@pytest.mark.parametrize("h, w", [(240, 320), (48, 64), (100, 60)])
@pytest.mark.parametrize("make", [train_transform, eval_transform])
def test_shapes_and_dtype(make, h, w):
    out = make(crop_size=32, resize=(64, 48))(random_clip(5, h, w))
    assert out.shape == (3, 5, 32, 32) and out.dtype == torch.float32
    assert out.is_contiguous() and torch.isfinite(out).all()


def test_same_augmentation_for_every_frame():
    a, b = random_clip(1, seed=1), random_clip(1, seed=2)
    clip = torch.cat([a.expand(4, -1, -1, -1), b.expand(4, -1, -1, -1)])
    transform = train_transform()
    for seed in range(10):
        out = transform(clip, generator=torch.Generator().manual_seed(seed))
        for t in range(1, 4):
            assert torch.equal(out[:, t], out[:, 0]) and torch.equal(out[:, 4 + t], out[:, 4])
        assert not torch.equal(out[:, 0], out[:, 4])
    # without colour jitter, each frame is exactly what the same draw does to a clip of only it
    geometric = train_transform(jitter=0)
    for seed in range(10):
        mixed = geometric(clip, generator=torch.Generator().manual_seed(seed))
        only_b = geometric(b.expand(8, -1, -1, -1), generator=torch.Generator().manual_seed(seed))
        assert torch.equal(mixed[:, 4:], only_b[:, 4:])


def test_draws_vary_and_are_reproducible():
    clip, transform = random_clip(4), train_transform()
    outs = [transform(clip, generator=torch.Generator().manual_seed(s)) for s in range(6)]
    assert all(not torch.equal(outs[0], o) for o in outs[1:])
    assert torch.equal(outs[3], transform(clip, generator=torch.Generator().manual_seed(3)))


def test_crop_boxes_follow_the_recipe():
    transform, g = train_transform(), torch.Generator().manual_seed(0)
    boxes = {transform.crop_box(g) for _ in range(600)}
    sizes = {128, 144, 160, 176, 192}
    assert {w for _, _, w, _ in boxes} == sizes and {h for _, _, _, h in boxes} == sizes
    for x, y, w, h in boxes:
        assert 2 / 3 <= w / h <= 3 / 2
        centre = (x, y) == ((256 - w) // 2, (192 - h) // 2)
        assert centre or (x in (0, 256 - w) and y in (0, 192 - h))
    assert {(x == 0, y == 0) for x, y, w, h in boxes if w < 192 and h < 192} == {
        (True, True), (True, False), (False, True), (False, False)}


def test_flip_override_and_flip_happens():
    clip = random_clip(2)
    transform = train_transform(jitter=0)
    flipped = 0
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        state = g.get_state()
        free = transform(clip, generator=g)
        g.set_state(state)
        never = transform(clip, flip=False, generator=g)
        g.set_state(state)
        forced = train_transform(flip=False, jitter=0)(clip, flip=True, generator=g)
        assert torch.equal(free, forced)  # the per-call override wins over the default
        if not torch.equal(free, never):
            flipped += 1
            assert torch.equal(free, never.flip(-1))  # whole clip mirrored, nothing else
    assert 3 <= flipped <= 17, "about half of the clips should be flipped"


def test_eval_matches_resize_then_centre_crop():
    clip = random_clip(3)
    out = eval_transform()(clip)
    frames = F.resize(clip.permute(0, 3, 1, 2), [192, 256], antialias=True)
    expected = F.center_crop(frames, [160, 160]).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = ((expected - mean) / std).permute(1, 0, 2, 3)
    assert (out - expected).abs().mean() < 0.05  # one resize instead of two: rounding only
    assert torch.equal(out, eval_transform()(clip))


def test_normalisation_and_denormalise():
    grey = torch.tensor([round(m * 255) for m in IMAGENET_MEAN], dtype=torch.uint8)
    clip = grey.view(1, 1, 1, 3).expand(2, 48, 64, 3).contiguous()
    out = eval_transform(32, (64, 48))(clip)
    assert out.abs().max() < 0.01
    assert (denormalise(out).int() - grey.int()).abs().max() <= 1


def test_jitter_stays_in_range():
    clip = random_clip(4)
    out = train_transform(jitter=0.5)(clip, generator=torch.Generator().manual_seed(1))
    low = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    high = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert (out.amin((1, 2, 3)) >= low - 1e-5).all() and (out.amax((1, 2, 3)) <= high + 1e-5).all()


def test_bad_input_and_options():
    with pytest.raises(ValueError, match="expected a uint8 T×H×W×3 clip"):
        eval_transform()(torch.zeros(2, 3, 48, 64))
    with pytest.raises(ValueError, match="crop_size 200 is larger than the resized frame"):
        eval_transform(200)
    with pytest.raises(ValueError, match="jitter"):
        ClipTransform(True, jitter=1.5)
