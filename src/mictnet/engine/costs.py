"""What a model costs: parameters, training activation memory per clip, inference frames/s."""

from __future__ import annotations

import time

import torch
from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def activation_bytes_per_clip(model: nn.Module, input_size: tuple[int, int, int],
                              batch: int = 2, device: torch.device | str = "cpu") -> float:
    """Bytes of the tensors a training forward pass keeps for the backward pass, per clip.

    Measured by autograd's saved-tensor hooks (each storage counted once; the input and the
    weights excluded),
    so the figure is the same on every device and does not depend on the allocator.
    """
    device = torch.device(device)
    model = model.to(device).train()
    clips = torch.randn(batch, 3, *input_size, device=device)
    not_activations = {clips.untyped_storage().data_ptr()}
    not_activations |= {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in not_activations:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(clips)
    return sum(seen.values()) / batch


@torch.no_grad()
def inference_frames_per_second(model: nn.Module, input_size: tuple[int, int, int], *,
                                batch: int = 8, device: torch.device | str = "cpu",
                                amp_dtype: torch.dtype | None = None, iterations: int = 3,
                                warmup: int = 1) -> float:
    """Frames per second of eval-mode inference on random clips (median of ``iterations``)."""
    device = torch.device(device)
    model = model.to(device).eval()
    clips = torch.randn(batch, 3, *input_size, device=device)
    times = []
    for i in range(warmup + iterations):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            model(clips)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    times.sort()
    return batch * input_size[0] / times[len(times) // 2]
