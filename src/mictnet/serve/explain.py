"""Grad-CAM, Grad-CAM++ and LayerCAM over space and time: which places and moments of a video
decided the model's answer (``mict explain``, ``Predictor.explain``).

The model runs on windows of ``T`` sampled frames (the training clip) that tile the video; in
each, the gradient of the target class's logit with respect to one layer's feature maps
``C×T'×h×w`` weighs its channels (Grad-CAM: the gradient's mean over space and time; Grad-CAM++:
Chattopadhay et al. 2018's weights of its positive part), and the ReLU of the weighted sum is
the window's map; LayerCAM (Jiang et al. 2021) weighs each cell by its own positive gradient
instead (maps of earlier, finer layers that stay on the object, but that a network with random
weights draws much alike: ``benchmarks/bench_explain.py``). Each time step, row and column of
the map is placed where its evidence comes from: the centre of its effective receptive field
(Luo et al. 2016), the centroid of the gradient magnitude of the layer's maps at that index with
respect to the input clip, measured on the video's first window. This matters: a MiCT-ResNet's
look-ahead convolutions make step ``j`` see frames well after ``j·T/T'``, zero padding pulls
border cells inwards, and at an input side that is not a multiple of the stride the cells are
not ``side/cells`` apart. Maps are interpolated linearly between those centres (held beyond the
outer ones): in time to every frame of the window; in space by :meth:`Explanation.heat` onto the
region of the frame the model sees (the resize and centre crop of its clip), zero elsewhere.
Maps are scaled by their maximum over the whole video, so frames compare.

The layer (``layer="auto"``) is the registry row's first ``cam_layers`` entry whose map is at
least :data:`MIN_CELLS` cells across at the model's input size (the last spatio-temporal
features of the 160-pixel recipe; an earlier stage for the 32-pixel demo clips), the last
convolution for custom models; any module name (``model.named_modules()``) or ``"features"``
may be given instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..data.decode import VideoReader
from ..data.sampling import looped_indices
from ..engine.precision import autocast
from ..models.registry import get_variant

if TYPE_CHECKING:
    from ..inference import Predictor

METHODS = ("gradcam", "gradcam++", "layercam")
MIN_CELLS = 4  # a map coarser than this many cells across cannot point at much


@dataclass(frozen=True)
class Explanation:
    """Where and when ``label`` was seen in ``video``: a map per frame on the layer's grid."""

    video: str
    label: str  # the class explained
    probability: float  # its probability in the main answer (``predict``)
    predicted: str  # the main answer's top class
    method: str
    layer: str
    frames: int
    fps: float
    width: int
    height: int
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 (end exclusive) the model sees, in pixels
    crop_size: int  # the model's input side: the crop is resized to it
    windows: list[tuple[int, int]]  # first frame, frames of each window
    maps: np.ndarray  # float32 frames×h×w in [0, 1] (1: the video's hottest cell)
    importance: np.ndarray  # float32 per frame in [0, 1]: its map's mean over the video's top
    rows: np.ndarray  # float32 h: each row's receptive-field centre, in model-input pixels
    cols: np.ndarray  # float32 w: each column's

    def heat(self, index: int) -> np.ndarray:
        """Frame ``index``'s heat, float32 ``height×width`` in [0, 1]: its map interpolated
        onto the crop between the cells' receptive-field centres, zero outside it."""
        x0, y0, x1, y1 = self.crop
        out = np.zeros((self.height, self.width), np.float32)
        out[y0:y1, x0:x1] = (interpolation_weights(self.rows, _input_pixels(y1 - y0,
                                                                           self.crop_size))
                             @ self.maps[index]
                             @ interpolation_weights(self.cols, _input_pixels(
                                 x1 - x0, self.crop_size)).T)
        return out

    def peaks(self) -> np.ndarray:
        """Where each frame's heat is highest (:func:`peak`): int ``frames×2`` ``(x, y)`` in
        pixels."""
        return np.array([peak(self.heat(i)) for i in range(self.frames)], np.int64)

    def to_dict(self) -> dict:
        """The JSON record (``explain.json``, ``POST /api/explain``): the fields, maps and
        importance rounded to 3 decimals, and each frame's peak."""
        return {"video": self.video, "label": self.label, "probability": self.probability,
                "predicted": self.predicted, "method": self.method, "layer": self.layer,
                "frames": self.frames, "fps": self.fps, "width": self.width,
                "height": self.height, "crop": list(self.crop), "grid": list(self.maps.shape[1:]),
                "input": self.crop_size, "rows": np.round(self.rows, 2).tolist(),
                "cols": np.round(self.cols, 2).tolist(),
                "windows": [list(w) for w in self.windows],
                "importance": np.round(self.importance, 3).tolist(),
                "peaks": self.peaks().tolist(), "maps": np.round(self.maps, 3).tolist()}


def explain(predictor: Predictor, video: str | Path, targets: Sequence[str | int] | None = None,
            top: int = 1, layer: str = "auto", method: str = "gradcam",
            progress: bool = False,
            centres: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
            ) -> list[Explanation]:
    """Explanations of ``video`` for each of ``targets`` (class names or indices), or else for
    its ``top`` most likely classes (``predictor.predict``'s main answer). ``centres``: the
    layer's :func:`receptive_centres` if already known (else measured on the first window)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    prediction = predictor.predict(video, top=len(predictor.classes))
    chosen = [_class_index(predictor.classes, t) for t in targets] if targets else \
        [predictor.classes.index(label) for label in prediction.labels[:top]]
    model = predictor.model
    name = resolve_layer(model, predictor.clip.input_size, layer, predictor.device)
    probability = dict(zip(prediction.labels, prediction.probabilities, strict=True))
    with VideoReader(video) as reader:
        info = reader.check_end()
        plan = windows(info.frames, predictor.clip_frames, predictor.clip.stride)
        sums: np.ndarray | None = None
        counts = np.zeros(info.frames, np.float32)
        for start, indices in tqdm(plan, desc=Path(video).name, unit="window",
                                   disable=not progress, leave=False):
            clip = predictor.transform(torch.from_numpy(reader.read(indices))).unsqueeze(0)
            clip = clip.to(predictor.device)
            if centres is None:
                centres = receptive_centres(model, name, clip, predictor.precision.dtype)
            cams = _window_cams(model, name, clip, chosen, method, predictor.precision.dtype,
                                centres[0])  # K×T×h×w
            span = np.arange(start, min(start + len(indices) * predictor.clip.stride,
                                        info.frames))
            rows = np.minimum((span - start) // predictor.clip.stride, len(indices) - 1)
            if sums is None:
                sums = np.zeros((len(chosen), info.frames, *cams.shape[2:]), np.float32)
            np.add.at(sums, (slice(None), span), cams[:, rows])
            np.add.at(counts, span, 1.0)
    maps = sums / np.maximum(counts, 1.0)[None, :, None, None]
    crop = crop_region(predictor.transform, info.width, info.height)
    out = []
    for k, index in enumerate(chosen):
        label = predictor.classes[index]
        scaled = maps[k] / max(float(maps[k].max()), 1e-12)
        strength = scaled.mean(axis=(1, 2))
        out.append(Explanation(str(video), label, float(probability[label]), prediction.label,
                               method, name, info.frames, info.fps, info.width, info.height,
                               crop, predictor.clip.crop, [(s, len(i)) for s, i in plan],
                               scaled.astype(np.float32),
                               (strength / max(float(strength.max()), 1e-12)).astype(np.float32),
                               centres[1], centres[2]))
    return out


def peak(heat: np.ndarray) -> tuple[int, int]:
    """``(x, y)`` of the highest pixel of ``heat``; where several share the maximum (the map
    holds its value beyond the outer cells' centres, so a border cell's maximum is a plateau
    out to the frame's edge), the one nearest the frame's centre: the cell's own centre, not
    the first in memory order (a frame corner)."""
    top = np.argwhere(heat >= heat.max())
    if len(top) > 1:
        middle = (np.array(heat.shape) - 1) / 2
        top = top[np.argmin(((top - middle) ** 2).sum(axis=1))][None]
    y, x = top[0]
    return int(x), int(y)


def interpolation_weights(centres: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``len(positions)×len(centres)`` weights that interpolate values placed at ``centres``
    (increasing) linearly onto ``positions``, holding the outer values beyond them."""
    centres = np.maximum.accumulate(np.asarray(centres, np.float64))
    out = np.zeros((len(positions), len(centres)), np.float32)
    if len(centres) == 1:
        out[:, 0] = 1
        return out
    positions = np.clip(positions, centres[0], centres[-1])
    high = np.clip(np.searchsorted(centres, positions, side="right"), 1, len(centres) - 1)
    low = high - 1
    gap = centres[high] - centres[low]
    part = np.where(gap > 0, (positions - centres[low]) / np.where(gap > 0, gap, 1), 0)
    rows = np.arange(len(positions))
    np.add.at(out, (rows, low), 1 - part)
    np.add.at(out, (rows, high), part)
    return out


def _input_pixels(pixels: int, size: int) -> np.ndarray:
    """Where ``pixels`` frame pixels fall on the ``size`` pixels they were resized to."""
    return (np.arange(pixels) + 0.5) * size / pixels - 0.5


def receptive_centres(model: nn.Module, layer: str, clip: Tensor, dtype: torch.dtype | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(steps, rows, cols)``: the centre of the effective receptive field of each time step
    (in the clip's frames), row and column (in its pixels) of ``layer``'s maps, the centroid of
    ``|d sum(maps at that index) / d clip|`` (float32 arrays of ``T'``, ``h``, ``w``)."""
    x = clip.detach().clone().requires_grad_()
    with _no_parameter_grads(model), torch.enable_grad(), autocast(clip.device, dtype):
        maps = _as_5d(_forward_at(model, layer, x, leaf=False)[0])
        centres = []
        for axis in (2, 3, 4):
            along = []
            for j in range(maps.shape[axis]):
                [grad] = torch.autograd.grad(maps.select(axis, j).float().sum(), x,
                                             retain_graph=True)
                profile = grad.abs().sum(dim=[d for d in range(5) if d != axis]).double()
                total = float(profile.sum())
                along.append(float((profile * torch.arange(len(profile))).sum()) / total
                             if total > 0 else (j + 0.5) * len(profile) / maps.shape[axis])
            centres.append(np.asarray(along, np.float32))
    return centres[0], centres[1], centres[2]


def windows(frames: int, length: int, stride: int = 1) -> list[tuple[int, list[int]]]:
    """``(first frame, sampled indices)`` of the windows of ``length`` frames, ``stride`` apart,
    that tile a video of ``frames`` frames (the last one ends at the video's end; a video
    shorter than one window is looped, as in training)."""
    span = length * stride
    starts = list(range(0, max(frames - span, 0) + 1, span))
    if starts[-1] + span < frames:
        starts.append(frames - span)
    return [(s, [s + k for k in looped_indices(0, length, -(-(frames - s) // stride), stride)])
            for s in starts]


def crop_region(transform, width: int, height: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the part of a ``width×height`` frame the test-time ``transform``
    (resize, centre crop) keeps, as :class:`~mictnet.data.transforms.ClipTransform` rounds it."""
    x, y, w, h = transform.crop_box()
    sx, sy = width / transform.resize[0], height / transform.resize[1]
    x0, y0 = round(x * sx), round(y * sy)
    return x0, y0, max(round((x + w) * sx), x0 + 1), max(round((y + h) * sy), y0 + 1)


def resolve_layer(model: nn.Module, input_size: tuple[int, int, int], layer: str = "auto",
                  device: torch.device | str = "cpu") -> str:
    """The layer ``layer`` names: itself (checked), or for ``"auto"`` the registry row's first
    ``cam_layers`` entry at least :data:`MIN_CELLS` across at ``input_size`` (the finest of
    them otherwise), or the model's last convolution."""
    names = dict(model.named_modules())
    if layer != "auto":
        if layer != "features" and layer not in names or layer == "":
            raise ValueError(f"the model has no layer {layer!r}; name one of its modules "
                             f"(e.g. {', '.join(_candidates(model)[:3])}) or 'auto'")
        return layer
    candidates = _candidates(model)
    if not candidates:
        raise ValueError("the model has no convolution for Grad-CAM: name a layer (--layer)")
    if len(candidates) == 1:
        return candidates[0]
    sizes = _map_sizes(model, candidates, input_size, device)
    return next((n for n in candidates if min(sizes[n]) >= MIN_CELLS), candidates[-1])


def _candidates(model: nn.Module) -> list[str]:
    spec = getattr(model, "spec", None)
    listed = get_variant(spec.name).cam_layers if spec is not None else ()
    if listed:
        return list(listed)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d | nn.Conv3d)]
    return convs[-1:]


def _map_sizes(model: nn.Module, names: Sequence[str], input_size: tuple[int, int, int],
               device: torch.device | str) -> dict[str, tuple[int, int]]:
    """``(h, w)`` of each layer's output for one clip of ``input_size`` (a no-grad forward)."""
    sizes: dict[str, tuple[int, int]] = {}

    def size_of(name: str):
        def record(module: nn.Module, inputs: object, output: Tensor) -> None:
            sizes.setdefault(name, tuple(output.shape[-2:]))
        return record

    hooks = [model.get_submodule(n).register_forward_hook(size_of(n))
             for n in names if n != "features"]
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, 3, *input_size, device=device)
            if "features" in names:
                sizes["features"] = tuple(model.features(x).shape[-2:])
            else:
                model(x)
    finally:
        model.train(training)
        for h in hooks:
            h.remove()
    return sizes


def _window_cams(model: nn.Module, layer: str, clip: Tensor, targets: Sequence[int],
                 method: str, dtype: torch.dtype | None, steps: np.ndarray) -> np.ndarray:
    """The maps of one clip ``1×3×T×H×W`` for each target: float32 ``K×T×h×w`` (ReLU'd, not
    scaled), interpolated in time to the clip's ``T`` frames from the steps' receptive-field
    centres ``steps``."""
    with _no_parameter_grads(model), torch.enable_grad(), autocast(clip.device, dtype):
        acts, logits = _forward_at(model, layer, clip, leaf=True)
        cams = []
        for k, target in enumerate(targets):
            [grads] = torch.autograd.grad(logits[0, target], acts,
                                          retain_graph=k < len(targets) - 1)
            cams.append(_cam(_as_5d(acts.detach().float()), _as_5d(grads.float()), method))
    cam = torch.stack(cams).cpu().numpy()  # K×T'×h×w
    weights = interpolation_weights(steps, np.arange(clip.shape[2], dtype=np.float64))
    return np.einsum("ft,kthw->kfhw", weights, cam)


def _cam(acts: Tensor, grads: Tensor, method: str) -> Tensor:
    """``T'×h×w`` map of one clip's activations and gradients ``1×C×T'×h×w``."""
    if method == "gradcam":
        weights = grads.mean(dim=(2, 3, 4), keepdim=True)
    elif method == "layercam":  # LayerCAM (Jiang et al. 2021): each cell's own positive gradient
        weights = grads.clamp(min=0)
    else:  # Grad-CAM++ (Chattopadhay et al. 2018), with exp(score)'s derivatives
        g2, g3 = grads.pow(2), grads.pow(3)
        denominator = 2 * g2 + acts.sum(dim=(2, 3, 4), keepdim=True) * g3
        alpha = torch.where(grads != 0, g2 / torch.where(denominator != 0, denominator, 1.0), 0)
        weights = (alpha * grads.clamp(min=0)).sum(dim=(2, 3, 4), keepdim=True)
    return (weights * acts).sum(dim=1)[0].clamp(min=0)


def _forward_at(model: nn.Module, layer: str, clip: Tensor, leaf: bool
                ) -> tuple[Tensor, Tensor]:
    """``(layer's output, logits)`` of one forward pass. With ``leaf`` the output is cut from
    the graph below it (a leaf that requires grad: gradients are computed from the layer up);
    without, it stays in the graph from the input."""
    if layer == "features":
        maps = model.features(clip)
        maps = maps.detach().requires_grad_() if leaf else maps
        return maps, model.head(maps)
    seen: list[Tensor] = []

    def capture(module: nn.Module, inputs: object, output: Tensor) -> Tensor | None:
        if not leaf:
            seen.append(output)
            return None
        cut = output.detach().requires_grad_()
        seen.append(cut)
        return cut * 1  # not the leaf itself: an in-place op after the layer stays legal

    hook = model.get_submodule(layer).register_forward_hook(capture)
    try:
        logits = model(clip)
    finally:
        hook.remove()
    return _checked_maps(layer, seen), logits


def _checked_maps(layer: str, seen: list[Tensor]) -> Tensor:
    """The one output ``layer`` gave in a forward pass, if it is feature maps."""
    if len(seen) != 1:
        raise ValueError(f"layer {layer!r} ran {len(seen)} times in one forward pass; name a "
                         "layer that runs once")
    if seen[0].dim() not in (4, 5):
        raise ValueError(f"layer {layer!r} gives {seen[0].dim()}D output; Grad-CAM needs "
                         "feature maps (N×C×T×h×w, or frames (N·T)×C×h×w)")
    return seen[0]


def _as_5d(x: Tensor) -> Tensor:
    """One clip's maps as ``1×C×T×h×w`` (a 2D layer's frames ``T×C×h×w`` included)."""
    return x.unsqueeze(0).transpose(1, 2) if x.dim() == 4 else x


@contextmanager
def _no_parameter_grads(model: nn.Module) -> Iterator[None]:
    """Parameters need no gradient while explaining (restored after)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _class_index(classes: Sequence[str], target: str | int) -> int:
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()
                                   and target not in classes):
        index = int(target)
        if not 0 <= index < len(classes):
            raise ValueError(f"class index {index} out of range 0..{len(classes) - 1}")
        return index
    if target not in classes:
        raise ValueError(f"unknown class {target!r}; the model knows {', '.join(classes)}")
    return classes.index(target)
