"""mictnet: MiCT-Net action recognition in videos on ResNet backbones.

``import mictnet`` loads the models only; ``mictnet.load`` (video decoding, checkpoints) is
imported on first use.
"""

from typing import Any

from .models import build_model, list_models

__version__ = "0.1.0"
__all__ = ["__version__", "build_model", "list_models", "load"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from .inference import load

        return load
    raise AttributeError(f"module 'mictnet' has no attribute {name!r}")
