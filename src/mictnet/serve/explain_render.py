"""Pictures of an :class:`~mictnet.serve.explain.Explanation`: the video with its heat overlaid
(MP4 and GIF), a PNG sheet of frames over heat, and a PNG curve of importance per frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..data.decode import VideoReader
from .explain import Explanation

ALPHA = 0.6  # the heat's opacity where it is 1
CHUNK = 64  # frames decoded at once while writing the video
GIF_FRAMES = 48  # at most, evenly spaced
GIF_SIDE = 192  # longer side of the GIF, pixels
SHEET_FRAMES = 8


def overlay(frame: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """RGB uint8 ``frame`` with ``heat`` (``H×W`` in [0, 1]) as a jet colour map on top,
    opaque in proportion to the heat."""
    colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)[..., ::-1]
    weight = (ALPHA * heat)[..., None]
    return np.uint8(np.rint(frame * (1 - weight) + colour * weight))


def write_videos(explanation: Explanation, mp4: str | Path, gif: str | Path | None = None
                 ) -> list[Path]:
    """The video with its heat overlaid as MPEG-4 ``mp4`` (every frame, the video's rate) and,
    with ``gif``, an animated GIF of up to :data:`GIF_FRAMES` evenly spaced frames."""
    e = explanation
    fps = e.fps if e.fps > 0 else 25.0
    mp4 = Path(mp4)
    mp4.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), fps, (e.width, e.height))
    if not writer.isOpened():
        raise RuntimeError(f"{mp4}: OpenCV cannot write MPEG-4 files")
    keep = set(np.linspace(0, e.frames - 1, min(GIF_FRAMES, e.frames)).round().astype(int))
    stills = []
    try:
        with VideoReader(e.video) as reader:
            for first in range(0, e.frames, CHUNK):
                indices = list(range(first, min(first + CHUNK, e.frames)))
                for i, frame in zip(indices, reader.read(indices), strict=True):
                    shown = overlay(frame, e.heat(i))
                    writer.write(np.ascontiguousarray(shown[..., ::-1]))
                    if i in keep:
                        stills.append(_shrink(shown, GIF_SIDE))
    finally:
        writer.release()
    if gif is None:
        return [mp4]
    from PIL import Image

    gif = Path(gif)
    images = [Image.fromarray(s) for s in stills]
    step_ms = 1000 * e.frames / fps / len(images)
    images[0].save(gif, save_all=True, append_images=images[1:], duration=round(step_ms),
                   loop=0)
    return [mp4, gif]


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def plot_sheet(explanation: Explanation, path: str | Path, columns: int = SHEET_FRAMES,
               boxes: np.ndarray | None = None) -> Path:
    """A PNG: ``columns`` evenly spaced frames over their heat, the class and its probability in
    the title; ``boxes`` (``frames×4`` ``x0, y0, x1, y1``) outlines an object in both rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    e = explanation
    picks = np.linspace(0, e.frames - 1, min(columns, e.frames)).round().astype(int).tolist()
    with VideoReader(e.video) as reader:
        frames = reader.read(picks)
    aspect = e.height / e.width
    fig, axes = plt.subplots(2, len(picks), figsize=(1.25 * len(picks), 2.5 * aspect + 0.5),
                             squeeze=False)
    fps = e.fps if e.fps > 0 else 25.0
    for k, (i, frame) in enumerate(zip(picks, frames, strict=True)):
        for row, image in ((0, frame), (1, overlay(frame, e.heat(i)))):
            ax = axes[row][k]
            ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
            if boxes is not None and boxes[i][2] > boxes[i][0]:
                x0, y0, x1, y1 = boxes[i]
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                       edgecolor="white", linewidth=0.8, linestyle="--"))
        axes[0][k].set_title(f"{i / fps:.2f} s", fontsize=7)
    axes[0][0].set_ylabel("frames", fontsize=7)
    axes[1][0].set_ylabel(e.method, fontsize=7)
    fig.suptitle(f"{Path(e.video).name}: {e.label} {e.probability:.0%} "
                 f"({e.method} at {e.layer})", fontsize=8)
    fig.tight_layout(pad=0.3)
    return _save(fig, path, plt)


def plot_importance(explanation: Explanation, path: str | Path) -> Path:
    """A PNG curve: each frame's share of the heat (1: the frame that weighed most)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = explanation
    fps = e.fps if e.fps > 0 else 25.0
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.fill_between(np.arange(e.frames) / fps, e.importance, step="mid", alpha=0.4)
    ax.plot(np.arange(e.frames) / fps, e.importance, drawstyle="steps-mid")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, max(e.frames - 1, 1) / fps)
    ax.set_xlabel("time (s)", fontsize=8)
    ax.set_ylabel("importance", fontsize=8)
    ax.set_title(f"{Path(e.video).name}: which moments decided {e.label}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path, plt)


def _save(fig, path: str | Path, plt) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
