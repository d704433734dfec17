"""Measures of an explanation against where the object really is (the synthetic generator's
boxes), and the model-randomisation sanity check of Adebayo et al. (NeurIPS 2018): a map that
barely changes when the weights are random says nothing about what the model learnt.

- pointing game: the share of frames whose heat maximum lies in the object's box;
- heat share: the share of the heat inside the box, against the box's share of the frame;
- rank correlation (Spearman, ties averaged) between two explanations' heat.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..models.registry import build_model
from .explain import Explanation, peak


def _frames_with_object(boxes: np.ndarray) -> list[int]:
    return [i for i, (x0, y0, x1, y1) in enumerate(boxes) if x1 > x0 and y1 > y0]


def frame_hits(explanation: Explanation, boxes: np.ndarray) -> dict[int, bool]:
    """For each frame with an object: does its heat maximum lie in the box (a frame with no
    heat at all is a miss)?"""
    hits = {}
    for i in _frames_with_object(boxes):
        heat = explanation.heat(i)
        x, y = peak(heat)
        x0, y0, x1, y1 = boxes[i]
        hits[i] = bool(heat.max() > 0 and x0 <= x < x1 and y0 <= y < y1)
    return hits


def pointing_hits(explanation: Explanation, boxes: np.ndarray) -> tuple[int, int]:
    """``(frames whose heat maximum is in the box, frames with an object)``."""
    hits = frame_hits(explanation, boxes)
    return sum(hits.values()), len(hits)


def heat_share(explanation: Explanation, boxes: np.ndarray) -> tuple[float, float]:
    """``(mean share of the heat inside the box, mean share of the frame the box covers)``
    over the frames with an object and some heat."""
    inside, area = [], []
    for i in _frames_with_object(boxes):
        heat = explanation.heat(i)
        total = float(heat.sum())
        if total <= 0:
            continue
        x0, y0, x1, y1 = boxes[i]
        inside.append(float(heat[y0:y1, x0:x1].sum()) / total)
        area.append((x1 - x0) * (y1 - y0) / heat.size)
    return (float(np.mean(inside)) if inside else 0.0), (float(np.mean(area)) if area else 0.0)


def rank_correlation(a: Explanation, b: Explanation) -> float:
    """Spearman's rank correlation of two explanations' heat over every pixel of every frame
    (0 where either is constant)."""
    x = np.concatenate([a.heat(i).ravel() for i in range(a.frames)])
    y = np.concatenate([b.heat(i).ravel() for i in range(b.frames)])
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their mean rank."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2  # ranks start..end-1 (from 1: +1), averaged
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """The same registered network with fresh random weights (every layer: the cascading
    randomisation run to the input), in eval mode on ``model``'s device."""
    spec = model.spec
    torch.manual_seed(seed)
    fresh = build_model(spec.name, spec.num_classes, **spec.options)
    fresh.spec = spec
    return fresh.to(next(model.parameters()).device).eval()
