"""The clip spec: one per model (its registry row), overridden field by field by the config,
stored once in the checkpoint and reused by evaluation, predict, export and serve; older
checkpoints derive it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torchvision

from mictnet.cli import main
from mictnet.data.clip_spec import ClipSpec
from mictnet.data.synthetic import SynthConfig, generate_dataset
from mictnet.engine.checkpoint import load_checkpoint, load_model
from mictnet.inference import load
from mictnet.models import build_model, get_variant, register_model
from mictnet.models import registry as registry_module

KINETICS_CLIP = ClipSpec(frames=16, resize=(171, 128), crop=112)


def test_a_spec_round_trips_and_refuses_nonsense() -> None:
    spec = ClipSpec(frames=8, stride=2, resize=(171, 128), crop=112, mean=(0.4, 0.4, 0.4),
                    std=(0.2, 0.2, 0.2))
    assert ClipSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.input_size == (8, 112, 112)
    assert spec.overridden(frames=None, crop=96, resize=[64, 48]) == ClipSpec(
        8, 2, (64, 48), 96, (0.4, 0.4, 0.4), (0.2, 0.2, 0.2))
    with pytest.raises(ValueError, match="clip crop must be positive"):
        ClipSpec(crop=0)
    with pytest.raises(ValueError, match="unknown clip spec field"):
        ClipSpec.from_dict({"crop_pct": 0.9})


def test_the_transform_normalises_with_the_specs_statistics() -> None:
    spec = ClipSpec(frames=2, resize=(8, 8), crop=8, mean=(0.5, 0.5, 0.5), std=(0.25,) * 3)
    grey = torch.full((2, 8, 8, 3), 255, dtype=torch.uint8)
    torch.testing.assert_close(spec.eval_transform()(grey), torch.full((3, 2, 8, 8), 2.0))


def test_a_model_with_its_own_preprocessing_is_one_row(monkeypatch) -> None:
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))

    @register_model(clip={"crop": 96, "resize": (128, 128), "mean": (0.5, 0.5, 0.5)})
    def tiny_spec_net(num_classes: int = 2) -> torch.nn.Module:
        return torch.nn.Linear(1, num_classes)

    from mictnet.engine.resolve import model_clip_spec

    assert model_clip_spec("tiny_spec_net") == ClipSpec(crop=96, resize=(128, 128),
                                                        mean=(0.5, 0.5, 0.5))
    assert get_variant("r3d_18").clip == {"frames": 16, "resize": (171, 128), "crop": 112}


def test_an_old_checkpoint_derives_its_spec(tmp_path: Path) -> None:
    model = build_model("mict_resnet18", num_classes=2)
    path = tmp_path / "old.pt"
    torch.save({"format_version": 1, "model": {"name": "mict_resnet18", "num_classes": 2,
                                               "options": {}},
                "classes": ["a", "b"], "input_size": [8, 48, 48],
                "config": {"data": {"resize": [64, 56]}}, "state_dict": model.state_dict()},
               path)
    _, meta = load_model(path)
    assert meta.clip == ClipSpec(frames=8, resize=(64, 56), crop=48)
    assert load(path).transform.resize == (64, 56)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_r3d_18_from_kinetics_weights_trains_and_runs_on_its_own_clip(tmp_path: Path,
                                                                      capsys) -> None:
    """``mict train --model r3d_18 --pretrained FILE`` (a file of torchvision's Kinetics
    layout) trains on 112² crops of 171×128 frames (only the frames overridden, to 4), and
    predict and serve use that clip from the checkpoint (export: ``tests/test_export.py``)."""
    torch.manual_seed(0)
    weights = tmp_path / "r3d_18-kinetics.pth"
    torch.save(torchvision.models.video.r3d_18(num_classes=400).state_dict(), weights)
    data = generate_dataset(tmp_path / "data", SynthConfig(classes=2, groups=3,
                                                           clips_per_group=1, frames=8,
                                                           size=(64, 48)), progress=False)
    run = tmp_path / "run"
    assert main(["train", "--model", "r3d_18", "--pretrained", str(weights), "--root",
                 str(data), "--out", str(run), "--frames", "4", "--epochs", "1",
                 "--batch-size", "2", "--workers", "0", "--set", "runtime.tensorboard=false",
                 "--set", "runtime.progress=false",
                 # a few small fp32 steps: the clip is under test, not training (at the recipe's
                 # lr, batch 2 of random weights diverged once under load)
                 "--lr", "0.001", "--set", "runtime.amp=none"]) == 0
    capsys.readouterr()
    ckpt = load_checkpoint(run / "last.pt")
    spec = ClipSpec(frames=4, resize=(171, 128), crop=112)
    assert ClipSpec.from_dict(ckpt["clip"]) == spec

    predictor = load(run / "last.pt")
    assert predictor.clip == spec and predictor.transform.crop_size == 112
    video = next(data.rglob("*.avi"))
    assert len(predictor.predict(video, top=2).labels) == 2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        from mictnet.serve import create_app
    info = TestClient(create_app(predictor)).get("/api/model").json()
    assert (info["input_size"], info["clip"]) == ([4, 112, 112], spec.to_dict())
