"""Weight initialisation shared by every model family."""

from torch import nn


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal convolutions (fan-out, ReLU), unit/zero batch norms (as torchvision)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
