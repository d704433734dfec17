"""MiCT-ResNet, 3D-ResNet and 2D-ResNet: sizes, shapes, gradients, building blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mictnet.models import MiCTResNet, build_model, list_models, skeleton
from mictnet.models.blocks import to_4d, to_5d
from mictnet.models.lookahead_conv import LookaheadConv3d
from mictnet.models.mict import LookaheadConv3dBranch
from mictnet.models.skeleton import conv_bn_pool


def n_params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize(
    ("name", "options", "published"),
    [
        ("mict_resnet18", {}, 16.1),
        ("mict_resnet18", {"first_kernel_depth": 3}, 16.01),
        ("mict_resnet18", {"first_kernel_depth": 5}, 16.03),
        ("mict_resnet34", {}, 26.2),
        ("resnet3d_18", {}, 33.3),
    ],
)
def test_parameter_counts_match_published_table(name, options, published):
    assert abs(n_params(build_model(name, num_classes=101, **options)) - published) <= 0.05


def test_registry_lists_every_variant_and_rejects_unknowns():
    # Tests may register models of their own after the built-in ones.
    assert list_models()[:12] == [
        "mict_resnet18", "mict_resnet34", "mict_resnet50", "mict_resnet101",
        "resnet3d_18", "resnet3d_34", "resnet3d_50", "resnet2d_18", "resnet2d_50",
        "r3d_18", "mc3_18", "r2plus1d_18",
    ]
    with pytest.raises(ValueError, match="unknown model"):
        build_model("mict_resnet19")
    with pytest.raises(TypeError, match="no option"):
        build_model("resnet3d_18", temporal_stride=4)
    with pytest.raises(ValueError, match="temporal_stride"):
        build_model("mict_resnet18", temporal_stride=8)
    with pytest.raises(ValueError, match="first_kernel_depth"):
        build_model("mict_resnet18", first_kernel_depth=4)


def test_build_model_records_spec_without_pretrained():
    model = build_model("mict_resnet18", num_classes=7, temporal_stride=4, dropout=0.2)
    assert model.spec.name == "mict_resnet18"
    assert model.spec.num_classes == 7
    assert model.spec.options == {"temporal_stride": 4, "dropout": 0.2}


@pytest.mark.parametrize("frames", [16, 300])
@pytest.mark.parametrize("size", [112, 160])
@pytest.mark.parametrize("temporal_stride", [16, 4])
@pytest.mark.parametrize("batch", [1, 3])
def test_mict_output_shapes(frames, size, temporal_stride, batch):
    # Shapes propagate on the meta device: no compute, every combination stays fast.
    model = build_model("mict_resnet18", num_classes=101, temporal_stride=temporal_stride)
    model = model.to("meta").eval()
    clip = torch.empty(batch, 3, frames, size, size, device="meta")
    feats = model.features(clip)
    steps, side = -(-frames // temporal_stride), -(-size // 32)
    assert feats.shape == (batch, 512, steps, side, side)
    assert model(clip).shape == (batch, 101)


@pytest.mark.parametrize("name", ["resnet3d_18", "resnet2d_18", "mict_resnet50", "resnet3d_50"])
@pytest.mark.parametrize("frames", [16, 300])
def test_baseline_output_shapes(name, frames):
    model = build_model(name, num_classes=51).to("meta").eval()
    assert model(torch.empty(3, 3, frames, 112, 112, device="meta")).shape == (3, 51)


def test_mict_runs_on_real_tensors_any_length():
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=5).eval()
    with torch.no_grad():
        for frames in (1, 5, 16, 33):
            out = model(torch.randn(2, 3, frames, 64, 64))
            assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_head_averages_per_time_step_logits():
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=4, temporal_stride=4).eval()
    clip = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        feats = model.features(clip).mean(dim=(3, 4))  # 1×C×T
        per_step = torch.stack([model.fc(feats[:, :, t]) for t in range(feats.shape[2])])
        torch.testing.assert_close(model(clip), per_step.mean(0))


def test_both_branches_of_every_mict_block_get_gradients():
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=3).train()
    model(torch.randn(2, 3, 16, 64, 64)).sum().backward()
    assert isinstance(model, MiCTResNet)
    pairs = [(model.mict3d.conv, model.conv1)] + [
        (stage.mict3d.conv, getattr(stage, "0").conv1)
        for stage in (model.layer1, model.layer2, model.layer3, model.layer4)
    ]
    for pair in pairs:
        for conv in pair:
            assert conv.weight.grad is not None
            assert conv.weight.grad.abs().sum() > 0


def test_4d_5d_conversions_round_trip_and_are_views_in_channels_last():
    x = torch.randn(2, 8, 6, 5, 5)
    frames, depth = to_4d(x)
    assert frames.shape == (12, 8, 5, 5) and depth == 6
    torch.testing.assert_close(frames[7], x[1, :, 1])
    torch.testing.assert_close(to_5d(frames, depth), x)
    strided, d2 = to_4d(x, 4)
    assert d2 == 2
    torch.testing.assert_close(strided[3], x[1, :, 4])
    cl = x.contiguous(memory_format=torch.channels_last_3d)
    frames_cl, _ = to_4d(cl)
    assert frames_cl.data_ptr() == cl.data_ptr()
    assert frames_cl.is_contiguous(memory_format=torch.channels_last)


def test_mict_3d_convolution_sees_current_and_next_frames_only():
    torch.manual_seed(0)
    branch = LookaheadConv3dBranch(2, 3, (3, 3, 3), (1, 1, 1)).eval()
    x = torch.randn(1, 2, 8, 6, 6)
    base = branch(x)
    assert base.shape[2] == 8
    x2 = x.clone()
    x2[:, :, 4] += 1.0
    changed = (branch(x2) - base).abs().amax(dim=(0, 1, 3, 4)) > 0
    # Output t covers frames t..t+2, so only outputs 2, 3 and 4 see frame 4.
    assert changed.tolist() == [False, False, True, True, True, False, False, False]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_entrance_equals_its_textbook_formula(dtype):
    """Pad after the clip's end + k×7×7 conv, BN, ReLU, 3D max-pool, beside conv1, BN, ReLU,
    max-pool on every second frame; summed. (The model pools before the ReLU and skips the
    zero frames: the same numbers.)"""
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=5, first_kernel_depth=5).eval().to(dtype)
    for bn in (model.bn1, model.mict3d.bn):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(-1, 1)  # negative scales too: pooling must follow the BN
    x = torch.randn(2, 3, 12, 32, 34).to(dtype)
    with torch.no_grad():
        got = model.stem(x).float()
        branch = model.mict3d
        out3d = F.conv3d(F.pad(x.float(), (0, 0, 0, 0, 0, 4)), branch.conv.weight.float(),
                         stride=(1, 2, 2), padding=(0, 3, 3))
        out3d = F.max_pool3d(F.relu(branch.bn.float()(out3d)), 3, 2, 1)
        frames = x.float()[:, :, ::2].transpose(1, 2).flatten(0, 1)
        out2d = F.conv2d(frames, model.conv1.weight.float(), stride=2, padding=3)
        out2d = F.max_pool2d(F.relu(model.bn1.float()(out2d)), 3, 2, 1)
        want = out3d + out2d.unflatten(0, (2, 6)).transpose(1, 2)
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    assert got.shape == want.shape == (2, 64, 6, 8, 9)
    assert (got - want).abs().max() <= tol * want.abs().max()


@pytest.mark.parametrize("kind", ["2d", "3d", "lookahead"])
def test_eval_pool_before_batch_norm_is_exact(kind):
    """conv_bn_pool pools before an eval-mode batch norm, negative scales included."""
    torch.manual_seed(0)
    if kind == "2d":
        conv, bn = nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8)
        pool = nn.MaxPool2d(3, 2, 1)
        x = torch.randn(2, 3, 20, 22)
    else:
        conv = (nn.Conv3d(3, 8, 7, (1, 2, 2), 3, bias=False) if kind == "3d"
                else LookaheadConv3d(3, 8, (5, 7, 7), (1, 2, 2)))
        bn, pool = nn.BatchNorm3d(8), nn.MaxPool3d(3, 2, 1)
        x = torch.randn(2, 3, 9, 20, 22)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(8))  # about half negative
        bn.bias.copy_(torch.randn(8))
        bn.running_mean.copy_(torch.randn(8))
        bn.running_var.copy_(torch.rand(8) + 0.5)
    bn.eval()
    assert (bn.weight < 0).any() and (bn.weight > 0).any()
    out = conv_bn_pool(conv, bn, pool, x)
    torch.testing.assert_close(out, pool(bn(conv(x))), rtol=1e-5, atol=1e-5)
    out.square().sum().backward()  # the convolution still trains under a frozen batch norm
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    bn.train()
    torch.testing.assert_close(conv_bn_pool(conv, bn, pool, x), pool(bn(conv(x))))


@pytest.mark.parametrize("folded", [False, True])
@pytest.mark.parametrize("cache_items", [1, 2, 5])
def test_inference_entrance_in_cache_sized_chunks(monkeypatch, cache_items, folded):
    """In CPU inference conv_bn_pool convolves chunks whose output fits the cache budget, batch
    norm kept or folded: same result, and one convolution per chunk."""
    torch.manual_seed(0)
    conv, bn = nn.Conv3d(3, 8, 3, (1, 2, 2), 1, bias=folded), nn.BatchNorm3d(8).eval()
    if folded:
        bn = nn.Identity()  # as fuse_conv_bn leaves it: in training mode, which it ignores
    pool = nn.MaxPool3d(3, 2, 1)
    x = torch.randn(5, 3, 4, 8, 8)
    want = pool(bn(conv(x))).detach()
    item_bytes = 8 * 4 * 4 * 4 * 4  # one item's conv output: 8 channels x 4 x 4 x 4 fp32
    monkeypatch.setattr(skeleton, "CACHE_BYTES", cache_items * item_bytes)
    calls = []
    monkeypatch.setattr(conv, "_conv_forward", lambda x, w, b, f=conv._conv_forward:
                        calls.append(len(x)) or f(x, w, b))
    with torch.inference_mode():
        got = conv_bn_pool(conv, bn, pool, x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert calls == [len(c) for c in torch.arange(5).split(cache_items)]
    calls.clear()
    conv_bn_pool(conv, bn, pool, x)  # with autograd: one call, whatever the cache
    assert calls == [5]
