"""Every registered model: built, trained a step at two clip lengths, ``features``, checkpoint
round trip; state-dict names pinned so that old checkpoints keep loading; the variant table."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision

from mictnet.data.clip_spec import ClipSpec
from mictnet.engine.checkpoint import CheckpointMeta, load_model, save_checkpoint
from mictnet.engine.resolve import model_clip_spec
from mictnet.models import (
    VARIANTS,
    MiCTConfig,
    Variant,
    build_model,
    get_variant,
    list_models,
    register,
)
from mictnet.models import registry as registry_module

BUILT_IN = [v.name for v in VARIANTS]

#: name -> (parameters at 101 classes, state-dict entries, sha256 of its "key:shape" lines).
#: A change here breaks every checkpoint of that model; the README's "Models" table shows the
#: parameter counts in millions.
PINNED = {
    "mict_resnet18": (16_051_685, 152, "9988904d6ea4df4f"),
    "mict_resnet34": (26_159_845, 248, "c9753e65f7ae4cb9"),
    "mict_resnet50": (98_548_837, 350, "5319ae45d1b1446a"),
    "mict_resnet101": (117_540_965, 656, "1a27707eea834022"),
    "resnet3d_18": (33_255_717, 122, "6b2cc16127f91253"),
    "resnet3d_34": (63_565_349, 218, "458922d9b705604b"),
    "resnet3d_50": (46_405_925, 320, "63ceb590fbca6c66"),
    "resnet2d_18": (11_228_325, 122, "e98e347eada845ad"),
    "resnet2d_50": (23_714_981, 320, "8527e111db384a6a"),
    "r3d_18": (33_218_085, 122, "7ed9bc8a2ee99e62"),
    "mc3_18": (11_542_053, 122, "dba2d8f079f37715"),
    "r2plus1d_18": (31_351_938, 224, "f7a10c4122835465"),
    "mict_net": (21_020_997, 509, "aeec2e571c61d052"),
}


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def on_meta(name: str, num_classes: int = 101, **options) -> torch.nn.Module:
    with torch.device("meta"):  # no memory, no initialisation cost
        return build_model(name, num_classes, **options)


def test_every_variant_is_registered_in_table_order_and_pinned():
    assert list_models()[: len(BUILT_IN)] == BUILT_IN
    assert set(PINNED) == set(BUILT_IN)
    assert list_models("torchvision") == ["r3d_18", "mc3_18", "r2plus1d_18"]
    assert list_models("mict") == BUILT_IN[:4]
    assert list_models("mictnet") == ["mict_net"]
    with pytest.raises(ValueError, match="unknown model tag"):
        list_models("kinetics")


@pytest.mark.parametrize("name", BUILT_IN)
def test_state_dict_names_and_sizes_are_pinned(name):
    model = on_meta(name)
    state = shapes(model)
    text = "\n".join(f"{k}:{s}" for k, s in state.items())
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    params = sum(p.numel() for p in model.parameters())
    assert (params, len(state), digest) == PINNED[name]


def test_key_names_that_checkpoints_and_imagenet_transfer_rely_on():
    mict, r3d, r2d = on_meta("mict_resnet18"), on_meta("resnet3d_50"), on_meta("resnet2d_18")
    assert shapes(mict)["mict3d.conv.weight"] == (64, 3, 7, 7, 7)
    assert shapes(mict)["layer2.mict3d.conv.weight"] == (128, 64, 3, 3, 3)
    assert shapes(mict)["layer2.0.downsample.0.weight"] == (128, 64, 1, 1)
    assert shapes(mict)["layer4.1.conv2.weight"] == (512, 512, 3, 3)
    assert shapes(r3d)["conv1.weight"] == (64, 3, 7, 7, 7)
    assert shapes(r3d)["layer1.0.downsample.0.weight"] == (256, 64, 1, 1, 1)
    assert shapes(r3d)["layer4.2.conv3.weight"] == (2048, 512, 1, 1, 1)
    assert shapes(r2d) == {k: s for k, s in shapes(torchvision.models.resnet18()).items()
                           if not k.startswith("fc.")} | {"fc.weight": (101, 512),
                                                          "fc.bias": (101,)}


@pytest.mark.parametrize("name", list_models("torchvision"))
def test_torchvision_peers_are_torchvisions_models(name):
    with torch.device("meta"):
        theirs = getattr(torchvision.models.video, name)(num_classes=101)
    assert shapes(on_meta(name)) == shapes(theirs)
    variant = get_variant(name)
    assert (variant.family, model_clip_spec(name)) == (
        "torchvision", ClipSpec(frames=16, resize=(171, 128), crop=112))
    with pytest.raises(ValueError, match=rf"{name} takes pretrained='kinetics400' \({name}\)"
                                         r".* not 'imagenet'"):
        build_model(name, pretrained="imagenet")
    with pytest.raises(TypeError, match="no option"):
        build_model(name, temporal_stride=4)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_model_trains_reports_features_and_round_trips(name, tmp_path):
    torch.manual_seed(0)
    model = build_model(name, num_classes=5, dropout=0.2).train()
    for frames in (8, 16):
        model.zero_grad()
        out = model(torch.randn(2, 3, frames, 32, 32))
        assert out.shape == (2, 5)
        torch.nn.functional.cross_entropy(out, torch.tensor([1, 4])).backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    clip = torch.randn(1, 3, 16, 32, 32)
    with torch.no_grad():
        maps = model.features(clip)  # forward() is head(features())
        assert maps.dim() == 5 and maps.shape[:2] == (1, model.fc.in_features)
        logits = model.head(maps)
        # The per-step classifier averaged over time is the classifier on pooled features.
        pooled = model.fc(maps.mean(dim=(2, 3, 4)))
        torch.testing.assert_close(logits, pooled, rtol=1e-4, atol=1e-5)

    path = tmp_path / "model.pt"
    spec = model_clip_spec(name)
    save_checkpoint(path, model, CheckpointMeta(model.spec, list("abcde"), spec.input_size,
                                                clip=spec))
    loaded, meta = load_model(path)
    assert meta.clip == spec
    assert type(loaded) is type(model) and meta.spec.options == {"dropout": 0.2}
    assert shapes(loaded) == shapes(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), logits, rtol=0, atol=0)


def test_a_new_variant_is_one_row(monkeypatch):
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    register(Variant("mict_resnet18_k3", "mict", MiCTConfig(first_kernel_depth=3),
                     {"imagenet": "resnet18"}))
    assert "mict_resnet18_k3" in list_models("mict")
    assert get_variant("mict_resnet18_k3").defaults == {
        "temporal_stride": 16, "first_kernel_depth": 3, "dropout": 0.5, "in_channels": 3,
        "pretrained": None}
    model = on_meta("mict_resnet18_k3", 7, temporal_stride=4)
    assert model.config.first_kernel_depth == 3 and model.config.temporal_stride == 4
    assert model.spec.options == {"temporal_stride": 4}


def test_pretrained_none_is_random_weights_as_on_the_command_line() -> None:
    torch.manual_seed(0)
    a = build_model("resnet2d_18", num_classes=3, pretrained="none")
    torch.manual_seed(0)
    b = build_model("resnet2d_18", num_classes=3, pretrained=None)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values(), strict=True))
    assert "pretrained" not in a.spec.options
