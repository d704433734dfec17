"""Every model family takes ``in_channels`` (2 for optical flow); ImageNet weights start a flow
model the TSN way (RGB filters averaged over their channels and replicated)."""

from __future__ import annotations

import pytest
import torch
import torchvision

from mictnet.models import build_model, get_variant
from mictnet.models.weights import cross_modality_kernel, transfer_weights


@pytest.mark.parametrize("name", ["mict_resnet18", "resnet3d_18", "resnet2d_18", "r2plus1d_18",
                                  "mc3_18", "mict_net"])
def test_every_family_takes_two_channel_clips(name: str) -> None:
    assert get_variant(name).defaults["in_channels"] == 3
    model = build_model(name, 5, in_channels=2).eval()
    assert model.spec.options == {"in_channels": 2}
    with torch.no_grad():
        assert model(torch.randn(2, 2, 8, 64, 64)).shape == (2, 5)
        with pytest.raises(RuntimeError):
            model(torch.randn(1, 3, 8, 64, 64))
    with pytest.raises(ValueError, match="in_channels must be positive"):
        build_model(name, 5, in_channels=0)


def test_cross_modality_kernel_averages_and_replicates() -> None:
    rgb = torch.randn(4, 3, 7, 7)
    flow = cross_modality_kernel(rgb, 2)
    assert flow.shape == (4, 2, 7, 7)
    assert torch.equal(flow[:, 0], flow[:, 1])
    assert torch.allclose(flow[:, 0], (rgb[:, 0] + rgb[:, 1] + rgb[:, 2]) / 3)


@pytest.mark.parametrize("name", ["mict_resnet18", "resnet3d_18"])
def test_imagenet_weights_start_a_flow_model_the_tsn_way(name: str) -> None:
    source = torchvision.models.resnet18().state_dict()
    model = build_model(name, 5, in_channels=2)
    report = transfer_weights(model, source)
    assert report.cross_modality == ["conv1.weight"] and report.adapted == []
    assert "TSN" in report.summary()
    expected = source["conv1.weight"].mean(dim=1)
    weight = model.conv1.weight
    if weight.dim() == 5:  # inflated over time as well
        expected = expected / weight.shape[2]
        weight = weight[:, :, 0]
    for c in range(2):
        assert torch.allclose(weight[:, c], expected, atol=1e-7)
    assert "layer1.0.conv1.weight" in report.copied + report.inflated  # the rest as for RGB
    rgb = build_model(name, 5)
    assert transfer_weights(rgb, source).cross_modality == []  # RGB models: copied as before
