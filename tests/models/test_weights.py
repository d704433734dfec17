"""Weight transfer: ImageNet copy and inflation, Kinetics-400 video weights, the input
normalisation folded into first convolutions, file formats, sources per model, clear errors."""

from __future__ import annotations

import os
import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

from mictnet.engine.train_config import weights_value
from mictnet.models import build_model, load_pretrained, transfer_weights
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
    report = transfer_weights(model, resnet18_state)
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
    transfer_weights(model, resnet18_state)
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
        load_pretrained(build_model("resnet3d_18"), path, "imagenet", "resnet18")


def test_non_state_dict_files_are_rejected(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_model("mict_resnet18", pretrained=str(missing))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="garbage.pth"):
        build_model("mict_resnet18", pretrained=str(garbage))


def offline(*args, **kwargs):
    raise urllib.error.URLError("no network")


def test_imagenet_offline_names_the_file_to_place(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    expected = tmp_path / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(RuntimeError, match=str(expected)) as err:
        build_model("mict_resnet18", pretrained="imagenet")
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in str(err.value)


def test_imagenet_uses_the_hub_cache(tmp_path, monkeypatch, resnet18_state):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cached = weights_module.weight_file("imagenet", "resnet18").cache_path
    assert cached == tmp_path / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir()
    torch.save(resnet18_state, cached)
    model = build_model("resnet3d_18", pretrained="imagenet")
    torch.testing.assert_close(model.conv1.weight.sum(2), resnet18_state["conv1.weight"])


def with_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial batch-norm statistics, as a trained file has."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model


def normalise(raw: torch.Tensor, space: weights_module.InputSpace) -> torch.Tensor:
    """RGB clip ``N×3×T×H×W`` in [0, 1] as a file of input ``space`` (RGB) expects it."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1, 1) for v in (space.mean, space.std))
    return (raw * space.scale - mean) / std


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache; downloads fail as offline."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "checkpoints"


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_kinetics400_weights_with_their_classifier_and_input_statistics(name, hub):
    torch.manual_seed(0)
    theirs = with_statistics(getattr(torchvision.models.video, name)(weights=None)).eval()
    file = weights_module.weight_file("kinetics400", name)
    assert file.cache_path.parent == hub and file.action_classes == 400
    hub.mkdir()
    torch.save(theirs.state_dict(), file.cache_path)
    ours = build_model(name, num_classes=400, pretrained="kinetics400").eval()
    state = ours.state_dict()
    adapted = ("stem.0.weight", "stem.1.running_mean")
    for key, value in theirs.state_dict().items():  # the classifier included
        assert torch.equal(state[key], value) == (key not in adapted), key
    # The stem (first convolution and batch norm) on an ImageNet-normalised clip gives what
    # theirs gives on the same clip normalised with the Kinetics statistics, wherever the
    # convolution's window stays inside the clip.
    def stem(model, clip):
        return model.stem[1](model.stem[0](clip))

    raw = torch.rand(2, 3, 6, 24, 24)
    ours_in = normalise(raw, weights_module.PIPELINE_SPACE)
    with torch.no_grad():
        got, want = stem(ours, ours_in), stem(theirs, normalise(raw, file.space))
        unadapted = stem(theirs, ours_in)
    inside = (slice(None), slice(None), slice(1, -1), slice(2, -2), slice(2, -2))
    torch.testing.assert_close(got[inside], want[inside], atol=1e-4, rtol=1e-4)
    assert (unadapted[inside] - want[inside]).abs().max() > 0.05  # the statistics do differ

    report = load_pretrained(build_model(name, num_classes=101), "kinetics400", "kinetics400",
                             name)
    assert report.fresh == ["fc.weight", "fc.bias"] and list(report.adapted) == list(adapted)
    assert "input normalisation folded into stem.0.weight" in report.summary()


def test_kinetics400_from_a_file_and_offline(hub, tmp_path):
    state = with_statistics(torchvision.models.video.r3d_18(weights=None)).state_dict()
    path = tmp_path / "r3d_k400.pth"
    torch.save(state, path)
    model = build_model("r3d_18", num_classes=5, pretrained=str(path))
    assert torch.equal(model.layer4[1].conv2[0].weight, state["layer4.1.conv2.0.weight"])
    assert model.fc.out_features == 5
    with pytest.raises(RuntimeError) as err:
        build_model("r3d_18", num_classes=5, pretrained="kinetics400")
    message = str(err.value)
    assert "https://download.pytorch.org/models/r3d_18-b3b3357e.pth" in message
    assert str(hub / "r3d_18-b3b3357e.pth") in message and "Offline" in message


@pytest.mark.parametrize(("name", "source", "accepted"), [
    ("mict_resnet18", "kinetics400", "pretrained='imagenet' (resnet18)"),
    ("resnet3d_50", "kinetics400", "pretrained='imagenet' (resnet50)"),
    ("r3d_18", "imagenet", "pretrained='kinetics400' (r3d_18)"),
    ("mict_net", "kinetics400", "pretrained='imagenet' (bninception)"),
])
def test_a_source_the_model_does_not_take_is_a_clear_error(name, source, accepted):
    with pytest.raises(ValueError) as err:
        build_model(name, pretrained=source)
    assert str(err.value) == f"{name} takes {accepted} or a file of that layout, not {source!r}"


def test_the_training_config_takes_every_source(tmp_path):
    assert weights_value("imagenet") == "imagenet"
    assert weights_value("kinetics400") == "kinetics400"
    assert weights_value("none") is None
    assert weights_value(str(tmp_path / "w.pth")) == str((tmp_path / "w.pth").resolve())


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo unpickled",))


def test_a_malicious_weights_file_is_refused_without_unsafe_advice(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Evil()}, path)
    with pytest.raises(ValueError) as info:
        weights_module.load_state_dict_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a safe") and "asks to import" in message
    assert "weights_only" not in message and "Re-running" not in message
