"""A synthetic motion dataset in the layout of UCF-101: classes that differ only by motion.

Every clip shows one object moving over a still background. Background, shape, texture and
colours are drawn at random for every clip whatever its class, so one frame says nothing about
the class. Several classes come in pairs that differ only in the direction of time (ZoomIn /
ZoomOut, Rise / Fall, RotateClockwise / RotateAnticlockwise, MoveRight / MoveLeft): the second of
a pair plays the first one's trajectory backwards, so for one clip seed its frames are the
first's frames in reverse order, and a model that looks at frames one by one cannot tell them
apart.

:func:`generate_dataset` writes MPEG-4 AVI files and split lists exactly as the two official
UCF-101 archives unpack (``OUT/UCF-101/<Class>/v_<Class>_gGG_cCC.avi`` and
``OUT/ucfTrainTestlist/{classInd,trainlist0N,testlist0N}.txt``, CRLF line endings), plus
``OUT/synth.json`` (config, classes, flip-safe classes, and the moving object's box in every
frame of every clip: :func:`object_boxes` reads it). The three splits hold out groups like
UCF-101's (1-7, 8-14, 15-21 of 25; blocks of ``round(7 * groups / 25)`` groups otherwise). The
same config gives the same bytes, and a complete dataset with the same config is reused.
"""

from __future__ import annotations

import colorsys
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

GENERATOR_VERSION = 1
FOURCC = "FMP4"  # MPEG-4 Part 2, as in the UCF-101 AVI files
FPS = 25
VIDEO_DIR = "UCF-101"
SPLITS_DIR = "ucfTrainTestlist"
METADATA = "synth.json"
SUPERSAMPLE = 2  # anti-aliasing: each pixel averages SUPERSAMPLE² samples
NUM_SPLITS = 3


class Poses(NamedTuple):
    """Object pose per frame: centre ``x``, ``y`` and ``radius`` in half-frame units (the frame's
    shorter side spans [-1, 1], y points down) and ``angle`` in radians (growing = clockwise on
    screen)."""

    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    angle: np.ndarray


Trajectory = Callable[[np.random.Generator, np.ndarray], Poses]


@dataclass(frozen=True)
class Motion:
    """A motion class: ``trajectory(rng, u)`` gives the poses at clip times ``u`` in [0, 1];
    ``reverse`` plays it backwards; ``flip_safe`` says a horizontal mirror keeps the class."""

    name: str
    trajectory: Trajectory
    flip_safe: bool
    reverse: bool = False


def _const(value: float, u: np.ndarray) -> np.ndarray:
    return np.full_like(u, value)


def _zoom(rng: np.random.Generator, u: np.ndarray) -> Poses:
    x, y = rng.uniform(-0.25, 0.25, 2)
    mid, ratio = rng.uniform(0.3, 0.4), rng.uniform(2.5, 3.5)
    angle = rng.uniform(0, 2 * np.pi)
    return Poses(_const(x, u), _const(y, u), mid * ratio ** (u - 0.5), _const(angle, u))


def _line(rng: np.random.Generator, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Across-coordinate, along-coordinate (growing with ``u``) and radius of a straight move."""
    across, mid, dist = rng.uniform(-0.4, 0.4), rng.uniform(-0.15, 0.15), rng.uniform(0.9, 1.2)
    return _const(across, u), mid + dist * (u - 0.5), _const(rng.uniform(0.28, 0.4), u)


def _rise(rng: np.random.Generator, u: np.ndarray) -> Poses:
    x, down, radius = _line(rng, u)
    return Poses(x, -down, radius, _const(rng.uniform(0, 2 * np.pi), u))


def _move_right(rng: np.random.Generator, u: np.ndarray) -> Poses:
    y, x, radius = _line(rng, u)
    return Poses(x, y, radius, _const(rng.uniform(0, 2 * np.pi), u))


def _rotate_clockwise(rng: np.random.Generator, u: np.ndarray) -> Poses:
    """Rigid rotation about a pivot outside the object, like a clock hand."""
    px, py = rng.uniform(-0.15, 0.15, 2)
    arm, radius = rng.uniform(0.3, 0.45), rng.uniform(0.25, 0.35)
    angle = rng.uniform(0, 2 * np.pi) + rng.uniform(0.9, 1.3) * np.pi * u
    return Poses(px + arm * np.cos(angle), py + arm * np.sin(angle), _const(radius, u), angle)


def _orbit(rng: np.random.Generator, u: np.ndarray) -> Poses:
    cx, cy = rng.uniform(-0.15, 0.15, 2)
    orbit, radius = rng.uniform(0.4, 0.55), rng.uniform(0.22, 0.3)
    phase, sweep = rng.uniform(0, 2 * np.pi), rng.choice([-1, 1]) * rng.uniform(1.2, 1.6) * np.pi
    theta = phase + sweep * u
    angle = rng.uniform(0, 2 * np.pi)
    return Poses(cx + orbit * np.cos(theta), cy + orbit * np.sin(theta), _const(radius, u),
                 _const(angle, u))


def _wave(rng: np.random.Generator, u: np.ndarray, cycles: tuple[float, float]) -> np.ndarray:
    return np.sin(2 * np.pi * rng.uniform(*cycles) * u + rng.uniform(0, 2 * np.pi))


def _pulse(rng: np.random.Generator, u: np.ndarray) -> Poses:
    x, y = rng.uniform(-0.25, 0.25, 2)
    radius = rng.uniform(0.3, 0.4) * (1 + 0.4 * _wave(rng, u, (1.5, 2.5)))
    return Poses(_const(x, u), _const(y, u), radius, _const(rng.uniform(0, 2 * np.pi), u))


def _shake(rng: np.random.Generator, u: np.ndarray) -> Poses:
    x, y = rng.uniform(-0.3, 0.3, 2)
    x = x + rng.uniform(0.15, 0.25) * _wave(rng, u, (2.5, 3.5))
    return Poses(x, _const(y, u), _const(rng.uniform(0.28, 0.4), u),
                 _const(rng.uniform(0, 2 * np.pi), u))


def _bounce(rng: np.random.Generator, u: np.ndarray) -> Poses:
    x, floor = rng.uniform(-0.4, 0.4), rng.uniform(0.35, 0.5)
    height = rng.uniform(0.6, 0.9)
    y = floor - height * np.abs(_wave(rng, u, (0.75, 1.25)))
    return Poses(_const(x, u), y, _const(rng.uniform(0.25, 0.35), u),
                 _const(rng.uniform(0, 2 * np.pi), u))


MOTIONS: tuple[Motion, ...] = (
    Motion("ZoomIn", _zoom, flip_safe=True),
    Motion("ZoomOut", _zoom, flip_safe=True, reverse=True),
    Motion("Rise", _rise, flip_safe=True),
    Motion("Fall", _rise, flip_safe=True, reverse=True),
    Motion("RotateClockwise", _rotate_clockwise, flip_safe=False),
    Motion("RotateAnticlockwise", _rotate_clockwise, flip_safe=False, reverse=True),
    Motion("MoveRight", _move_right, flip_safe=False),
    Motion("MoveLeft", _move_right, flip_safe=False, reverse=True),
    Motion("Orbit", _orbit, flip_safe=True),
    Motion("Pulse", _pulse, flip_safe=True),
    Motion("Shake", _shake, flip_safe=True),
    Motion("Bounce", _bounce, flip_safe=True),
)
"""The catalogue, time-reversed pairs first; a dataset of ``N`` classes uses the first ``N``
(after the first ``class_offset``)."""


def reversed_pairs(motions: tuple[Motion, ...] = MOTIONS) -> list[tuple[str, str]]:
    """Names of the classes that differ only in the direction of time, as ``(forward, back)``."""
    forward = {m.trajectory: m.name for m in motions if not m.reverse}
    return [(forward[m.trajectory], m.name) for m in motions
            if m.reverse and m.trajectory in forward]


@dataclass(frozen=True)
class SynthConfig:
    """What to generate: ``classes`` motions of the catalogue from index ``class_offset`` on,
    ``groups`` × ``clips_per_group`` clips per class of ``frames`` frames of ``size`` (width,
    height) pixels, all drawn from ``seed``. A clip's seed names its motion, not its label, so
    two datasets share no clip unless they share a class and ``seed``."""

    classes: int = 8
    groups: int = 25
    clips_per_group: int = 6
    frames: int = 16
    size: tuple[int, int] = (64, 64)
    seed: int = 0
    class_offset: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(int(v) for v in self.size))
        if not 0 <= self.class_offset <= len(MOTIONS) - 2:
            raise ValueError(f"class_offset must be in 0..{len(MOTIONS) - 2}, got "
                             f"{self.class_offset}")
        if not 2 <= self.classes <= len(MOTIONS) - self.class_offset:
            raise ValueError(f"classes must be in 2..{len(MOTIONS) - self.class_offset} (the "
                             f"catalogue has {len(MOTIONS)} motions, class_offset is "
                             f"{self.class_offset}), got {self.classes}")
        if not NUM_SPLITS <= self.groups <= 99:
            raise ValueError(f"groups must be in {NUM_SPLITS}..99 (three group splits, "
                             f"two-digit names), got {self.groups}")
        if not 1 <= self.clips_per_group <= 99:
            raise ValueError(f"clips_per_group must be in 1..99, got {self.clips_per_group}")
        if self.frames < 2:
            raise ValueError(f"frames must be at least 2, got {self.frames}")
        if len(self.size) != 2 or min(self.size) < 16 or any(v % 2 for v in self.size):
            raise ValueError(f"size must be (width, height), both even (MPEG-4) and >= 16, "
                             f"got {self.size}")

    @property
    def motions(self) -> tuple[Motion, ...]:
        return MOTIONS[self.class_offset: self.class_offset + self.classes]

    @property
    def class_names(self) -> list[str]:
        return [m.name for m in self.motions]

    @property
    def flip_safe(self) -> list[str]:
        """The classes a horizontal flip keeps (the others must not be mirrored)."""
        return [m.name for m in self.motions if m.flip_safe]


DEMO_DATASET = SynthConfig()
"""The dataset ``mict demo`` trains on: 4 time-reversed pairs × 25 groups × 6 clips = 1,200 clips
of 16 frames at 64×64 (split 1: 864 train, 336 test), generated in about 10 s on one core."""


def held_out_groups(groups: int) -> list[list[int]]:
    """The held-out groups of splits 1-3: UCF-101's 1-7, 8-14, 15-21 for 25 groups, blocks of
    ``round(7 * groups / 25)`` (at least 1) otherwise; the groups after them are always train."""
    block = max(1, round(7 * groups / 25))
    return [list(range(k * block + 1, (k + 1) * block + 1)) for k in range(NUM_SPLITS)]


# --- drawing ------------------------------------------------------------------------------------

def _colour(rng: np.random.Generator, value: tuple[float, float]) -> np.ndarray:
    """A random RGB colour in [0, 1] with HSV value drawn from ``value``."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.2, 1.0), rng.uniform(*value))
    return np.array(rgb, dtype=np.float32)


def _sample_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Supersample coordinates (half-frame units, shorter side spans [-1, 1]), ``(H·S)×(W·S)``."""
    half = min(width, height) / 2
    s = SUPERSAMPLE
    xs = ((np.arange(width * s) + 0.5) / s - width / 2) / half
    ys = ((np.arange(height * s) + 0.5) / s - height / 2) / half
    gx, gy = np.meshgrid(xs.astype(np.float32), ys.astype(np.float32))
    return gx, gy


def _pattern(rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A random two-tone pattern: ``f(u, v)`` -> bool, none of them invariant to rotation."""
    kind = rng.integers(4)
    beta, phase = rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)
    if kind == 0:  # stripes
        freq = rng.uniform(4.0, 7.0)
        return lambda u, v: np.sin(freq * (u * np.cos(beta) + v * np.sin(beta)) + phase) > 0
    if kind == 1:  # checker
        cell = rng.uniform(0.45, 0.7)
        return lambda u, v: (np.floor(u / cell) + np.floor(v / cell)) % 2 == 0
    if kind == 2:  # two halves
        return lambda u, v: u * np.cos(beta) + v * np.sin(beta) > 0
    sectors = 2 * rng.integers(1, 4)  # pinwheel of 2, 4 or 6 sectors
    return lambda u, v: np.floor((np.arctan2(v, u) + phase) * sectors / (2 * np.pi)) % 2 == 0


def _shape(rng: np.random.Generator) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A random shape inside the unit disc: ``f(u, v)`` -> bool."""
    kind = rng.integers(6)
    if kind == 0:
        return lambda u, v: u * u + v * v < 1
    if kind == 1:
        aspect = rng.uniform(0.5, 0.75)
        return lambda u, v: u * u + (v / aspect) ** 2 < 1
    if kind == 2:
        return lambda u, v: np.maximum(np.abs(u), np.abs(v)) < 0.75
    if kind == 3:
        return lambda u, v: (np.abs(u) < 0.35) & (np.abs(v) < 1) | (np.abs(u) < 1) & (
            np.abs(v) < 0.35)
    sides = int(rng.integers(3, 7))
    if kind == 4:  # regular polygon
        def polygon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
            phi = np.arctan2(v, u) % (2 * np.pi / sides) - np.pi / sides
            return np.hypot(u, v) * np.cos(phi) < np.cos(np.pi / sides)
        return polygon
    points = sides + 1  # star / flower of 4-7 points

    def star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.hypot(u, v) < 0.7 + 0.3 * np.cos(points * np.arctan2(v, u))
    return star


def _background(rng: np.random.Generator, gx: np.ndarray, gy: np.ndarray,
                value: tuple[float, float]) -> np.ndarray:
    """A random still background at supersample resolution, ``H×W×3`` float32 in [0, 1]."""
    a, b = _colour(rng, value), _colour(rng, value)
    kind = rng.integers(4)
    if kind == 0:  # linear gradient
        theta = rng.uniform(0, 2 * np.pi)
        t = (gx * np.cos(theta) + gy * np.sin(theta)) / 2.8 + 0.5
    elif kind == 1:  # smooth blobs
        cells = int(rng.integers(3, 7))
        grid = rng.uniform(0, 1, (cells, cells)).astype(np.float32)
        t = cv2.resize(grid, gx.shape[::-1], interpolation=cv2.INTER_CUBIC)
    elif kind == 2:  # soft stripes
        theta, freq = rng.uniform(0, 2 * np.pi), rng.uniform(3, 10)
        t = 0.5 + 0.5 * np.sin(freq * (gx * np.cos(theta) + gy * np.sin(theta)))
    else:  # plain with still distractor shapes
        t = np.zeros_like(gx)
        for _ in range(int(rng.integers(2, 6))):
            cx, cy = rng.uniform(-1.2, 1.2, 2)
            rx, ry = rng.uniform(0.08, 0.25, 2)
            t = np.maximum(t, (((gx - cx) / rx) ** 2 + ((gy - cy) / ry) ** 2 < 1) * 1.0)
    t = np.clip(t, 0, 1)[..., None].astype(np.float32)
    return a * (1 - t) + b * t


def render_clip(motion: Motion, seed: int | np.random.SeedSequence | list[int], frames: int,
                size: tuple[int, int]) -> np.ndarray:
    """One clip of ``motion``: uint8 ``frames×H×W×3`` RGB; the same seed gives the same clip.

    The random draws do not depend on ``reverse``, so the reverse of a class renders, for one
    seed, the class's frames in reverse order.
    """
    return render_clip_with_boxes(motion, seed, frames, size)[0]


def render_clip_with_boxes(motion: Motion, seed: int | np.random.SeedSequence | list[int],
                           frames: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`render_clip` and the moving object's box in every frame: int ``frames×4``
    ``(x0, y0, x1, y1)`` in pixels, end exclusive, around the pixels the object covers at least
    half (all zero in a frame where it covers none)."""
    rng = np.random.default_rng(seed)
    width, height = size
    gx, gy = _sample_grid(width, height)
    dark_background = rng.uniform() < 0.5
    background_value, object_value = ((0.1, 0.45), (0.6, 1.0)) if dark_background else \
        ((0.55, 0.95), (0.0, 0.4))
    background = _background(rng, gx, gy, background_value)
    mid = sum(object_value) / 2
    tones = [_colour(rng, (object_value[0], mid)), _colour(rng, (mid, object_value[1]))]
    if rng.uniform() < 0.5:
        tones.reverse()
    inside, pattern = _shape(rng), _pattern(rng)
    u = np.linspace(0.0, 1.0, frames)
    poses = motion.trajectory(rng, 1.0 - u if motion.reverse else u)
    t = (slice(None), None, None)  # pose arrays broadcast over the frame axis
    cos, sin = np.cos(poses.angle)[t], np.sin(poses.angle)[t]
    scale = 1 / poses.radius[t]
    dx, dy = gx - poses.x[t].astype(np.float32), gy - poses.y[t].astype(np.float32)
    lu = dx * (cos * scale).astype(np.float32) + dy * (sin * scale).astype(np.float32)
    lv = dy * (cos * scale).astype(np.float32) - dx * (sin * scale).astype(np.float32)
    obj, tone = inside(lu, lv), pattern(lu, lv)
    first, second = _pool(obj & tone)[..., None], _pool(obj & ~tone)[..., None]
    background = _pool(background.transpose(2, 0, 1)).transpose(1, 2, 0)
    image = background * (1 - first - second) + first * tones[0] + second * tones[1]
    return np.rint(image * 255).astype(np.uint8), _boxes(first + second >= 0.5)


def _boxes(masks: np.ndarray) -> np.ndarray:
    """``(x0, y0, x1, y1)`` of each ``T×H×W×1`` mask's true pixels (zeros where none)."""
    boxes = np.zeros((len(masks), 4), dtype=np.int64)
    for t, mask in enumerate(masks[..., 0]):
        ys, xs = np.nonzero(mask)
        if len(xs):
            boxes[t] = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return boxes


def _pool(x: np.ndarray) -> np.ndarray:
    """Average the ``SUPERSAMPLE``² samples of each pixel over the last two axes."""
    s = SUPERSAMPLE
    x = x.astype(np.float32)
    total = sum(x[..., i::s, j::s] for i in range(s) for j in range(s))
    return total / (s * s)


def write_video(path: Path, clip: np.ndarray, fps: int = FPS) -> None:
    """Write an RGB uint8 ``T×H×W×3`` clip as MPEG-4 in AVI."""
    height, width = clip.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"{path}: OpenCV cannot write {FOURCC} AVI files")
    try:
        for frame in clip:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        writer.release()


# --- the dataset on disk ------------------------------------------------------------------------

def clip_name(class_name: str, group: int, clip: int) -> str:
    """``Class/v_Class_gGG_cCC.avi``, the UCF-101 naming."""
    return f"{class_name}/v_{class_name}_g{group:02d}_c{clip:02d}.avi"


def clip_seed(config: SynthConfig, label: int, group: int, clip: int) -> list[int]:
    """The seed of one clip (``label``, ``group`` and ``clip`` 1-based) for :func:`render_clip`:
    it holds the motion's place in the catalogue (``label`` without a class offset)."""
    return [config.seed, GENERATOR_VERSION, config.class_offset + label, group, clip]


BOX_FORMAT = "x0 y0 x1 y1 per frame, ';'-separated (pixels, end exclusive)"


def _metadata(config: SynthConfig, complete: bool, boxes: dict[str, str] | None = None) -> dict:
    objects = {} if boxes is None else {"objects": {"format": BOX_FORMAT, "boxes": boxes}}
    return {
        "generator": "mictnet.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "complete": complete,
        "config": asdict(config) | {"size": list(config.size)},
        "classes": config.class_names,
        "flip_safe": config.flip_safe,
        "reversed_pairs": [list(p) for p in reversed_pairs(config.motions)],
        "held_out_groups": held_out_groups(config.groups),
        "video": {"fourcc": FOURCC, "fps": FPS},
    } | objects


def _box_text(boxes: np.ndarray) -> str:
    return ";".join(" ".join(map(str, box)) for box in boxes.tolist())


def object_boxes(meta: dict, clip: str) -> np.ndarray:
    """The moving object's box in every frame of ``clip`` (``Class/v_Class_gGG_cCC.avi``) from
    a ``synth.json`` (:func:`read_metadata`): int ``frames×4`` ``(x0, y0, x1, y1)``, pixels,
    end exclusive. A dataset written before boxes were recorded is a ``ValueError``."""
    boxes = meta.get("objects", {}).get("boxes")
    if boxes is None:
        raise ValueError("this synth.json has no object boxes (written by an older mictnet): "
                         "delete the dataset folder's synth.json and run mict synth again")
    if clip not in boxes:
        raise ValueError(f"synth.json has no clip {clip!r}")
    return np.array([[int(v) for v in box.split()] for box in boxes[clip].split(";")],
                    dtype=np.int64).reshape(-1, 4)


def read_metadata(out_dir: str | Path) -> dict | None:
    """The ``synth.json`` of a generated dataset, or ``None`` when there is none."""
    path = Path(out_dir) / METADATA
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: unreadable synthetic-dataset metadata ({err})") from None


def _is_complete(out_dir: Path, config: SynthConfig) -> bool:
    meta = read_metadata(out_dir)
    if meta is None or "objects" not in meta or \
            {k: v for k, v in meta.items() if k != "objects"} != _metadata(config, complete=True):
        return False
    split_files = ["classInd.txt"] + [f"{kind}list0{k}.txt" for kind in ("train", "test")
                                      for k in range(1, NUM_SPLITS + 1)]
    if not all((out_dir / SPLITS_DIR / f).is_file() for f in split_files):
        return False
    return all((out_dir / VIDEO_DIR / clip_name(name, g, c)).is_file()
               for name in config.class_names for g in range(1, config.groups + 1)
               for c in range(1, config.clips_per_group + 1))


def _clear_previous(out_dir: Path) -> None:
    """Remove an earlier synthetic dataset; refuse to touch a folder this module did not write."""
    videos, splits = out_dir / VIDEO_DIR, out_dir / SPLITS_DIR
    if read_metadata(out_dir) is None:
        if videos.exists() or splits.exists():
            raise ValueError(f"{out_dir}: holds {VIDEO_DIR}/ or {SPLITS_DIR}/ but no "
                                  f"{METADATA}, so it is not a synthetic dataset; choose another "
                                  "folder")
        return
    for path in (videos, splits):
        if path.exists():
            shutil.rmtree(path)


def _write_splits(splits_dir: Path, config: SynthConfig) -> None:
    splits_dir.mkdir(parents=True, exist_ok=True)
    names = config.class_names
    lines = [f"{i} {name}" for i, name in enumerate(names, 1)]
    (splits_dir / "classInd.txt").write_bytes(_crlf(lines))
    for k, held_out in enumerate(held_out_groups(config.groups), 1):
        train, test = [], []
        for label, name in enumerate(names, 1):
            for g in range(1, config.groups + 1):
                for c in range(1, config.clips_per_group + 1):
                    if g in held_out:
                        test.append(clip_name(name, g, c))
                    else:
                        train.append(f"{clip_name(name, g, c)} {label}")
        (splits_dir / f"trainlist0{k}.txt").write_bytes(_crlf(train))
        (splits_dir / f"testlist0{k}.txt").write_bytes(_crlf(test))


def _crlf(lines: list[str]) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode("ascii")


def generate_dataset(out_dir: str | Path, config: SynthConfig = DEMO_DATASET,
                     progress: bool = True) -> Path:
    """Write the dataset under ``out_dir`` and return its video root ``out_dir/UCF-101``.

    A complete dataset generated earlier with the same config is reused as it is; an earlier
    synthetic dataset with another config (or an interrupted one) is replaced.
    """
    out_dir = Path(out_dir)
    videos = out_dir / VIDEO_DIR
    if _is_complete(out_dir, config):
        return videos
    _clear_previous(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METADATA).write_text(json.dumps(_metadata(config, complete=False), indent=2))
    jobs = [(label, motion, g, c) for label, motion in enumerate(config.motions, 1)
            for g in range(1, config.groups + 1) for c in range(1, config.clips_per_group + 1)]
    boxes = {}
    for label, motion, g, c in tqdm(jobs, desc="synthetic clips", unit="clip",
                                    disable=not progress):
        name = clip_name(motion.name, g, c)
        path = videos / name
        path.parent.mkdir(parents=True, exist_ok=True)
        clip, boxes[name] = render_clip_with_boxes(motion, clip_seed(config, label, g, c),
                                                   config.frames, config.size)
        boxes[name] = _box_text(boxes[name])
        write_video(path, clip)
    _write_splits(out_dir / SPLITS_DIR, config)
    (out_dir / METADATA).write_text(json.dumps(_metadata(config, True, boxes),
                                               indent=2))
    return videos
