"""ImageNet weight transfer: copy, inflate, fresh layers, file formats, clear errors."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

from mictnet.models import build_model, load_pretrained, transfer_imagenet_weights
from mictnet.models import weights as weights_module


@pytest.fixture(scope="module")
def resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model.state_dict()


@pytest.mark.parametrize("name", ["mict_resnet18", "resnet3d_18", "resnet2d_18"])
def test_every_2d_tensor_is_copied_or_inflated(name, resnet18_state):
    model = build_model(name, num_classes=10)
    report = transfer_imagenet_weights(model, resnet18_state)
    target = model.state_dict()
    for key, src in resnet18_state.items():
        if key.startswith("fc."):
            continue
        dst = target[key]
        if dst.dim() == 5:
            assert key in report.inflated
            torch.testing.assert_close(dst.sum(dim=2), src)
            for t in range(dst.shape[2]):  # repeated along time
                torch.testing.assert_close(dst[:, :, t] * dst.shape[2], src)
        else:
            assert key in report.copied
            assert torch.equal(dst, src)
    fresh = set(report.fresh)
    assert {"fc.weight", "fc.bias"} <= fresh
    if name == "mict_resnet18":
        assert not report.inflated
        assert "mict3d.conv.weight" in fresh and "layer4.mict3d.conv.weight" in fresh
        assert all("mict3d" in k or k.startswith("fc.") for k in fresh)
    elif name == "resnet3d_18":
        assert len(report.inflated) == 20  # stem + 16 block convs + 3 projections
    else:
        assert fresh == {"fc.weight", "fc.bias"}


def test_inflated_convolution_on_static_clip_equals_2d(resnet18_state):
    model = build_model("resnet3d_18", num_classes=10)
    transfer_imagenet_weights(model, resnet18_state)
    torch.manual_seed(0)
    frame = torch.randn(1, 3, 40, 40)
    clip = frame.unsqueeze(2).repeat(1, 1, 12, 1, 1)  # one frame repeated
    out3d = model.conv1(clip)  # 7×7×7, temporal padding 3
    out2d = F.conv2d(frame, resnet18_state["conv1.weight"], stride=2, padding=3)
    for t in range(3, 12 - 3):  # time windows that lie inside the clip
        torch.testing.assert_close(out3d[:, :, t], out2d, atol=1e-4, rtol=1e-4)
    block_conv = model.layer2[0].conv1  # 3×3×3, stride 2
    feats = torch.randn(1, 64, 10, 10).unsqueeze(2).repeat(1, 1, 8, 1, 1)
    out3d = block_conv(feats)
    out2d = F.conv2d(feats[:, :, 0], resnet18_state["layer2.0.conv1.weight"], stride=2, padding=1)
    for t in range(1, out3d.shape[2]):  # output t covers frames 2t-1..2t+1
        torch.testing.assert_close(out3d[:, :, t], out2d, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_pretrained_loads_from_files(tmp_path, resnet18_state, suffix):
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in resnet18_state.items()}, str(path))
    else:
        torch.save(resnet18_state, path)
    model = build_model("mict_resnet18", num_classes=5, pretrained=str(path))
    assert torch.equal(model.state_dict()["layer3.1.conv2.weight"],
                       resnet18_state["layer3.1.conv2.weight"])
    assert "pretrained" not in model.spec.options


def test_wrong_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match=r"resnet50\.pth.*does not fit MiCTResNet.*resnet18"):
        build_model("mict_resnet18", pretrained=str(path))
    with pytest.raises(ValueError, match="does not fit"):
        load_pretrained(build_model("resnet3d_18"), path, "resnet18")


def test_non_state_dict_files_are_rejected(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_model("mict_resnet18", pretrained=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="garbage.pth"):
        build_model("mict_resnet18", pretrained=str(garbage))


def test_imagenet_offline_names_the_file_to_place(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    expected = tmp_path / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(RuntimeError, match=str(expected)):
        build_model("mict_resnet18", pretrained="imagenet")


def test_imagenet_uses_the_hub_cache(tmp_path, monkeypatch, resnet18_state):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cached = tmp_path / "checkpoints" / weights_module.imagenet_url("resnet18").rsplit("/")[-1]
    cached.parent.mkdir()
    torch.save(resnet18_state, cached)
    model = build_model("resnet3d_18", pretrained="imagenet")
    torch.testing.assert_close(model.conv1.weight.sum(2), resnet18_state["conv1.weight"])
