"""Channels-last for models that mix 2D and 3D layers."""

import torch
from torch import nn


def to_channels_last(model: nn.Module) -> nn.Module:
    """Put 4D parameters in ``channels_last`` and 5D ones in ``channels_last_3d`` (in place).

    ``Module.to(memory_format=...)`` cannot do this for a model that holds both.
    Feed such a model clips in ``torch.channels_last_3d``.
    """
    for p in model.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
        elif p.dim() == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return model
