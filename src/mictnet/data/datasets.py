"""Video datasets: UCF-101, HMDB-51, class folders and video lists (Kinetics: :mod:`.kinetics`;
by name: :mod:`.catalog`).

Items are ``(clip, label)``: ``clip`` a float tensor ``3×T×H×W`` (``K×3×T×H×W`` in multiclip
mode; ``2×...`` for ``modality="flow"``), ``label`` an int. Construction reads the split/list
files and ``os.stat``-s every video, so malformed lines, unknown classes, unsafe paths and missing
or empty files fail at once, in the main process; nothing is decoded until an item is asked for.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Collection
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .cache import PreparedReader, cache_path
from .decode import VideoError, VideoReader
from .flow import FlowReader, flow_path
from .sampling import ClipSampler
from .splits import SampleList, official_split, parse_video_list, scan_video_folder
from .transforms import FLOW_MEAN, FLOW_STD, RESIZE, ClipTransform, eval_transform, train_transform

BAD_REASONS = ("missing", "empty", "unreadable", "no-frames", "truncated", "bad-request")
MAX_REPLACEMENTS = 20
UNLABELLED = -1  # the label of a video whose class is not known (an unlabelled test set)


@dataclass(frozen=True)
class ClipOptions:
    """How clips are sampled and augmented (the ``**clip_options`` of every dataset).

    ``flip``: ``True`` lets every class be mirrored, ``False`` none, a collection of class names
    only those. ``skip_bad``: replace a video that fails to decode by another sample and record
    it in ``dataset.bad_videos`` instead of raising. ``stride``: test clips read every
    ``stride``-th frame (a model's :class:`~mictnet.data.clip_spec.ClipSpec`). Random draws
    come from torch's global generator (seeded per DataLoader worker; the trainer seeds it per
    item, see :class:`mictnet.engine.batching.SeededItems`). ``cache``: read the frames that
    ``mict prepare`` wrote to that folder instead of decoding the videos. ``transform`` replaces
    the built-in one; it is called as
    ``transform(uint8 T×H×W×3 tensor, flip=bool, generator=None)``. ``modality="flow"``: read
    the optical flow ``mict prepare --flow`` wrote to ``cache`` (``T×H×W×2``) instead of frames,
    the same frames and augmentation draws as RGB (a flip negates x; see :mod:`.transforms`).
    """

    frames: int | None = 16
    crop_size: int = 160
    resize: tuple[int, int] = RESIZE
    mode: str = "clip"
    num_clips: int = 1
    flip: bool | Collection[str] = True
    jitter: float = 0.5
    max_stride: int = 4
    stride: int = 1
    skip_bad: bool = False
    seek: bool = True
    cache: str | Path | None = None
    transform: Callable[..., torch.Tensor] | None = None
    modality: str = "rgb"

    @classmethod
    def from_kwargs(cls, options: dict) -> ClipOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown clip option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)


class VideoDataset(Dataset):
    """Clips from ``samples`` (``(path, label)``, paths under ``root``) named by ``classes``."""

    def __init__(self, root: str | Path, classes: list[str], samples: list[tuple[str, int]],
                 train: bool = False, source: str = "", **clip_options) -> None:
        self.root = Path(root)
        self.classes = list(classes)
        self.train = train
        self.options = ClipOptions.from_kwargs(clip_options)
        opts = self.options
        self.sampler = ClipSampler(opts.frames, opts.mode, train, opts.num_clips,
                                   opts.max_stride, opts.stride)
        if opts.modality not in ("rgb", "flow"):
            raise ValueError(f"modality must be rgb or flow, got {opts.modality!r}")
        if opts.modality == "flow" and opts.cache is None:
            raise ValueError("optical flow is read from a cache: run mict prepare --flow dis "
                             "--out DIR and pass --cache DIR (cache=DIR)")
        if opts.transform is not None:
            self.transform = opts.transform
        elif opts.modality == "flow":
            self.transform = ClipTransform(train, opts.crop_size, tuple(opts.resize), True,
                                           0.0, FLOW_MEAN, FLOW_STD)
        elif train:
            self.transform = train_transform(opts.crop_size, opts.resize, True, opts.jitter)
        else:
            self.transform = eval_transform(opts.crop_size, opts.resize)
        self.flippable = self._flippable(opts.flip)
        self._messages: dict[str, str] = {}
        full = [(str(self.root / path), label) for path, label in samples]
        self.samples = self._existing(full, source)
        self._prepared = self._prepared_paths(opts.cache) if opts.cache is not None else {}
        self._bad = torch.zeros(len(self.samples), dtype=torch.int8).share_memory_()

    def _flippable(self, flip: bool | Collection[str]) -> list[bool]:
        if isinstance(flip, bool):
            return [flip] * len(self.classes)
        if isinstance(flip, str):
            raise TypeError("flip must be a bool or a collection of class names, not a string")
        unknown = sorted(set(flip) - set(self.classes))
        if unknown:
            raise ValueError(f"flip lists unknown class(es) {unknown}")
        return [name in set(flip) for name in self.classes]

    def _existing(self, samples: list[tuple[str, int]], source: str) -> list[tuple[str, int]]:
        """``samples`` whose files exist and are not empty; the others raise or are recorded."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: video root folder not found")
        kept, bad = [], []
        for path, label in samples:
            problem = _file_problem(path)
            if problem:
                bad.append(f"{path}: {problem}")
            else:
                kept.append((path, label))
        if bad and not self.options.skip_bad:
            listed = f" listed in {source}" if source else ""
            shown = "\n".join(bad[:10]) + (f"\n... and {len(bad) - 10} more" if len(bad) > 10
                                           else "")
            raise FileNotFoundError(f"{len(bad)} of {len(samples)} videos{listed} are missing "
                                    f"or empty under {self.root} (skip_bad=True skips them):\n"
                                    f"{shown}")
        for message in bad:
            path, problem = message.rsplit(": ", 1)
            self._messages[path] = problem
        return kept

    def _prepared_paths(self, cache: str | Path) -> dict[str, str]:
        """Prepared file (frames, or flow) of every sample; missing ones fail here, in the main
        process."""
        flow = self.options.modality == "flow"
        where = flow_path if flow else cache_path
        prepared = {path: str(where(cache, os.path.relpath(path, self.root)))
                    for path, _ in self.samples}
        missing = [p for p in prepared.values() if not os.path.isfile(p)]
        if missing:
            what, run = ("optical flow", "mict prepare --flow dis") if flow else \
                ("prepared frames", "mict prepare")
            raise FileNotFoundError(
                f"{len(missing)} of {len(prepared)} videos have no {what} in {cache} "
                f"(run {run} with --out {cache}), e.g. {missing[0]}")
        return prepared

    def __len__(self) -> int:
        return len(self.samples)

    def video_record(self, index: int) -> dict[str, str]:
        """What names sample ``index`` in a predictions file: its path relative to the root."""
        return {"video": os.path.relpath(self.samples[index][0], self.root)}

    def skipped_indices(self) -> list[int]:
        """Samples that failed to decode so far (``skip_bad=True`` answered them with another
        sample)."""
        return torch.nonzero(self._bad).flatten().tolist()

    @property
    def bad_videos(self) -> list[tuple[str, str]]:
        """``(path, problem)`` of every video skipped so far (``skip_bad=True``)."""
        found = dict(self._messages)
        for i in torch.nonzero(self._bad).flatten().tolist():
            path = self.samples[i][0]
            found.setdefault(path, BAD_REASONS[int(self._bad[i]) - 1])
        return sorted(found.items())

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        if not self.options.skip_bad:
            return self.load(path, label), label
        for attempt in range(MAX_REPLACEMENTS):
            i = (index + attempt * 7919) % len(self.samples)
            path, label = self.samples[i]
            try:
                return self.load(path, label), label
            except VideoError as err:
                self._bad[i] = BAD_REASONS.index(err.reason) + 1
                self._messages[path] = err.problem
        raise RuntimeError(f"{MAX_REPLACEMENTS} videos in a row failed to decode, the last "
                           f"{path}; see dataset.bad_videos")

    def load(self, path: str, label: int, generator: torch.Generator | None = None
             ) -> torch.Tensor:
        """Decode, sample and transform the clip(s) of one video."""
        prepared = self._prepared.get(path)
        if self.options.modality == "flow":
            reader = FlowReader(prepared)
        elif prepared:
            reader = PreparedReader(prepared)
        else:
            reader = VideoReader(path, seek=self.options.seek)
        with reader:
            if self.sampler.whole_video:
                clips = [reader.read_all()]
            else:
                clips = reader.read_clips(lambda frames: self.sampler.clips(frames, generator))
        flip = label != UNLABELLED and self.flippable[label]
        out = [self.transform(torch.from_numpy(c), flip=flip, generator=generator) for c in clips]
        return torch.stack(out) if self.sampler.mode == "multiclip" else out[0]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, {len(self)} videos, "
                f"{len(self.classes)} classes, train={self.train}, mode={self.options.mode!r})")


def _file_problem(path: str) -> str | None:
    """Why ``path`` cannot be a video file (missing, a directory, empty), or ``None``."""
    try:
        info = os.stat(path)
    except OSError:
        return "no such file"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory, not a video file"
    return "the file is empty (0 bytes)" if info.st_size == 0 else None


def _from_list(listed: SampleList) -> SampleList:
    listed.raise_problems()
    return listed


class UCF101(VideoDataset):
    """UCF-101 as unpacked: ``root/<Class>/v_<Class>_gGG_cCC.avi``; split files found in
    ``root/ucfTrainTestlist``, ``root/../ucfTrainTestlist`` or ``splits_dir``."""

    def __init__(self, root: str | Path, split: int = 1, train: bool = True, *,
                 splits_dir: str | Path | None = None, **clip_options) -> None:
        _, listed = official_split("ucf101", root, split, train, splits_dir)
        listed = _from_list(listed)
        self.split = split
        super().__init__(root, listed.classes, listed.samples, train, listed.sources[-1],
                         **clip_options)


class HMDB51(VideoDataset):
    """HMDB-51: ``root/<class>/<video>.avi``; the 153 ``<class>_test_splitN.txt`` files found in
    ``root/testTrainMulti_7030_splits``, beside ``root`` or in ``splits_dir``."""

    def __init__(self, root: str | Path, split: int = 1, train: bool = True, *,
                 splits_dir: str | Path | None = None, **clip_options) -> None:
        folder, listed = official_split("hmdb51", root, split, train, splits_dir)
        listed = _from_list(listed)
        self.split = split
        super().__init__(root, listed.classes, listed.samples, train,
                         f"{folder}/*_test_split{split}.txt", **clip_options)


class VideoFolder(VideoDataset):
    """Your own videos, one folder per class: ``root/<class>/<video>``; classes sorted by name."""

    def __init__(self, root: str | Path, train: bool = False, **clip_options) -> None:
        listed = _from_list(scan_video_folder(root))
        super().__init__(root, listed.classes, listed.samples, train, str(root), **clip_options)


class VideoList(VideoDataset):
    """Videos listed in ``file`` (``path label`` lines or CSV ``path,label`` rows) under ``root``
    (default: the list's folder): relative paths are relative to it, absolute paths must lie in
    it, no path may leave it."""

    def __init__(self, file: str | Path, root: str | Path | None = None, train: bool = False,
                 **clip_options) -> None:
        root = Path(file).parent if root is None else root
        listed = _from_list(parse_video_list(file, root))
        super().__init__(root, listed.classes, listed.samples, train, str(file), **clip_options)
