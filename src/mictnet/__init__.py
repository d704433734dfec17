"""mictnet: MiCT-Net action recognition in videos on ResNet backbones."""

from .models import build_model, list_models
from .tools.predict import load

__version__ = "0.1.0"
__all__ = ["__version__", "build_model", "list_models", "load"]
