"""Flow clips: the same frames and augmentation draws as RGB clips, a flip negates x, the clip
spec and datasets of ``modality="flow"``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mictnet.data import build_dataset
from mictnet.data.cache import prepare_videos
from mictnet.data.clip_spec import ClipSpec
from mictnet.data.flow import prepare_flow
from mictnet.data.synthetic import SynthConfig, generate_dataset
from mictnet.data.transforms import FLOW_MEAN, FLOW_STD, ClipTransform


def test_flow_transform_shares_the_rgb_draws_and_negates_x_on_a_flip() -> None:
    rgb_t = ClipTransform(True, 16, (32, 24), jitter=0.0)
    flow_t = ClipTransform(True, 16, (32, 24), jitter=0.0, mean=FLOW_MEAN, std=FLOW_STD)
    assert flow_t.channels == 2
    g = torch.Generator()
    for seed in range(12):
        g.manual_seed(seed)
        box = rgb_t.crop_box(g)
        g.manual_seed(seed)
        assert flow_t.crop_box(g) == box
    clip = torch.randint(0, 256, (4, 24, 32, 2), dtype=torch.uint8)
    flips = []
    for seed in range(12):
        out = flow_t(clip, generator=g.manual_seed(seed))
        kept = flow_t(clip, flip=False, generator=g.manual_seed(seed))
        assert out.shape == (2, 4, 16, 16)
        flipped = not torch.equal(out, kept)
        flips.append(flipped)
        if flipped:  # mirrored: x negated (exact around uint8 127.5), y kept
            assert torch.allclose(out[0], -kept[0].flip(-1), atol=1e-6)
            assert torch.allclose(out[1], kept[1].flip(-1), atol=1e-6)
        rgb = rgb_t(torch.randint(0, 256, (4, 24, 32, 3), dtype=torch.uint8),
                    generator=g.manual_seed(seed))
        assert rgb.shape == (3, 4, 16, 16)
    assert any(flips) and not all(flips)
    with pytest.raises(ValueError, match="T×H×W×2"):
        flow_t(torch.zeros(4, 24, 32, 3, dtype=torch.uint8))


def test_clip_spec_modality() -> None:
    spec = ClipSpec().for_modality("flow")
    assert spec.in_channels == 2 and spec.mean == FLOW_MEAN and "optical flow" in spec.describe()
    assert ClipSpec.from_dict(spec.to_dict()) == spec
    assert spec.for_modality("rgb") == ClipSpec() and ClipSpec().in_channels == 3
    assert spec.eval_transform().channels == 2
    with pytest.raises(ValueError, match="need 2 values for flow"):
        ClipSpec(modality="flow")


def test_flow_dataset_is_aligned_with_the_rgb_dataset(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path / "synth", SynthConfig(classes=2, groups=3,
                                                           clips_per_group=1, frames=8,
                                                           size=(32, 32)), progress=False)
    videos = [(str(p), str(p.relative_to(root))) for p in sorted(root.rglob("*.avi"))]
    cache = tmp_path / "cache"
    prepare_videos(videos, cache, (32, 32), progress=False)
    prepare_flow(videos, cache, "dis", (32, 32), progress=False)
    options = {"frames": 4, "crop_size": 16, "resize": (32, 32), "jitter": 0.0, "cache": cache}
    rgb = build_dataset("ucf101", root, 1, True, **options)
    flow = build_dataset("ucf101", root, 1, True, modality="flow", **options)
    spec = ClipSpec(frames=4, crop=16, resize=(32, 32)).for_modality("flow")
    assert flow.transform.channels == 2 and flow.samples == rgb.samples
    path, label = flow.samples[0]
    g = torch.Generator()
    x = flow.load(path, label, g.manual_seed(3))
    assert x.shape == (2, 4, 16, 16) and x.abs().max() <= 1
    # the same draws pick the same frames: a dataset that records the indices it reads
    picked = {}
    for name, ds in (("rgb", rgb), ("flow", flow)):
        ds.sampler = _Recording(ds.sampler, picked, name)
        ds.load(path, label, g.manual_seed(5))
    assert picked["rgb"] == picked["flow"]
    test = build_dataset("ucf101", root, 1, False, modality="flow", frames=4, mode="clip",
                         transform=spec.eval_transform(), cache=cache)
    assert test[0][0].shape == (2, 4, 16, 16)
    with pytest.raises(ValueError, match="run mict prepare --flow"):
        build_dataset("ucf101", root, 1, True, modality="flow", frames=4)
    with pytest.raises(FileNotFoundError, match="no optical flow in"):
        build_dataset("ucf101", root, 1, True, modality="flow", frames=4,
                      cache=tmp_path / "empty")


class _Recording:
    """A sampler that records the clips it plans."""

    def __init__(self, sampler, record: dict, name: str) -> None:
        self.sampler, self.record, self.name = sampler, record, name
        self.whole_video, self.mode = sampler.whole_video, sampler.mode

    def clips(self, frames: int, generator=None):
        planned = self.sampler.clips(frames, generator)
        self.record[self.name] = [list(c) for c in planned]
        return planned
