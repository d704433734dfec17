"""Inference-time folding of batch norms into the convolutions before them."""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval

#: Attribute pairs where a batch norm directly follows a convolution in every model here; in
#: BN-Inception's layout (mict_net) every convolution ``name`` has its batch norm ``name_bn``.
_CONV_BN_NAMES = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"), ("conv", "bn"))
_BN_SUFFIX = "_bn"


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold each batch norm into the convolution it follows (in place), for inference only.

    The logits are unchanged up to float rounding; the model skips one memory pass per batch
    norm. Raises ``RuntimeError`` on a model in training mode, whose statistics still change.
    """
    if model.training:
        raise RuntimeError("fuse_conv_bn needs a model in eval mode")
    for module in model.modules():
        suffixed = [n for n, _ in module.named_children() if n.endswith(_BN_SUFFIX)]
        names = _CONV_BN_NAMES + tuple((n.removesuffix(_BN_SUFFIX), n) for n in suffixed)
        for conv_name, bn_name in names:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, (nn.Conv2d, nn.Conv3d)) and isinstance(bn, _BatchNorm):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
        if isinstance(module, nn.Sequential) and len(module) >= 2:
            conv, bn = module[0], module[1]
            if isinstance(conv, (nn.Conv2d, nn.Conv3d)) and isinstance(bn, _BatchNorm):
                module[0], module[1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
    return model
