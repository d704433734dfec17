"""Dataset checks: every listed video exists, opens and has frames; counts per split and class;
malformed, duplicate and mislabelled entries."""

from __future__ import annotations

import functools
import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from .cache import cache_path, read_header
from .catalog import DATASETS
from .datasets import UNLABELLED
from .decode import VideoError, VideoReader
from .flow import SUFFIX as FLOW_SUFFIX
from .flow import flow_path, flow_problem
from .kinetics import (
    SPLITS,
    KineticsSamples,
    annotation_file,
    find_annotations,
    kinetics_list,
)
from .splits import SampleList, official_split, parse_video_list, scan_video_folder


@dataclass
class CheckReport:
    """What :func:`check_dataset` found. ``counts[list name][class] = videos``."""

    dataset: str
    root: str
    splits_dir: str | None = None
    classes: list[str] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    videos: int = 0
    frames: dict[str, float] = field(default_factory=dict)  # min / median / max per video
    problems: list[str] = field(default_factory=list)
    unlabelled: dict[str, int] = field(default_factory=dict)  # videos of lists without labels
    listed: int = 0  # videos the lists name, found or not
    skipped: list[str] = field(default_factory=list)  # Kinetics clips training would skip

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    def format(self, per_class: bool = False) -> str:
        """A readable report."""
        lines = [f"{self.dataset} at {self.root}"
                 + (f" (splits: {self.splits_dir})" if self.splits_dir else "")]
        frames = (f" (frames per video: min {self.frames['min']:.0f}, median "
                  f"{self.frames['median']:.0f}, max {self.frames['max']:.0f})"
                  if self.frames else "")
        lines.append(f"{len(self.classes)} classes, {self.videos} videos checked{frames}")
        names = list(self.counts)
        if names or self.unlabelled:
            lines.append(f"{'list':<10} {'videos':>7} {'classes':>8}")
            for name in names:
                counts = self.counts[name]
                lines.append(f"{name:<10} {sum(counts.values()):>7} "
                             f"{sum(1 for v in counts.values() if v):>8}")
            lines += [f"{name:<10} {n:>7} {'no labels':>9}" for name, n in self.unlabelled.items()]
        if per_class and names:
            width = max((len(c) for c in self.classes), default=5)
            lines.append(f"{'class':<{width}} " + " ".join(f"{n:>8}" for n in names))
            for c in self.classes:
                lines.append(f"{c:<{width}} " + " ".join(f"{self.counts[n].get(c, 0):>8}"
                                                         for n in names))
        if self.skipped:
            lines.append(f"{len(self.skipped)} of {self.listed} listed videos missing/unreadable, "
                         "skipped by training and evaluation (--strict: an error):")
            lines += [f"  {p}" for p in self.skipped]
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        elif self.skipped:
            lines.append(f"OK otherwise: no problems beyond the {len(self.skipped)} skipped "
                         "video(s) above (they are problems with --strict)")
        else:
            lines.append("OK: no problems found")
        return "\n".join(lines)


def dataset_lists(name: str, root: Path, split: int | None = None,
                  splits_dir: str | Path | None = None, list_root: str | Path | None = None
                  ) -> tuple[Path, str | None, dict[str, SampleList]]:
    """``(video root, split folder, {list name: parsed list})`` of a dataset (all three splits
    unless ``split``; for ``kinetics`` every split CSV present, whatever ``split``; for
    ``list``, ``root`` is the list file and ``list_root`` the folder its videos lie under,
    default the list's folder)."""
    root = Path(root)
    if list_root is not None and name != "list":
        raise ValueError(f"list_root applies to the 'list' dataset only, not {name!r}")
    if name in ("ucf101", "hmdb51"):
        lists = {}
        for s in [split] if split else [1, 2, 3]:
            for part in ("train", "test"):
                folder, lists[f"{part}{s}"] = official_split(name, root, s, part == "train",
                                                             splits_dir)
        return root, str(folder), lists
    if name == "kinetics":
        return root, *kinetics_lists(root, splits_dir)
    if name == "folder":
        return root, None, {"all": scan_video_folder(root)}
    if name == "list":
        video_root = root.parent if list_root is None else Path(list_root)
        return video_root, None, {"all": parse_video_list(root, video_root)}
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def kinetics_lists(root: Path, annotations: str | Path | None = None
                   ) -> tuple[str, dict[str, SampleList]]:
    """``(annotation folder, {split: list})`` of every Kinetics split CSV present."""
    folder = find_annotations(root, annotations)
    lists = {split: kinetics_list(root, split, folder).sample_list() for split in SPLITS
             if annotation_file(folder, split) is not None}
    return str(folder), lists


def check_video(path: str, full: bool = False) -> tuple[int | None, str | None]:
    """``(frames, problem)`` of one video: it exists, opens, decodes its first frame and the last
    frames its header claims (with ``full``: every frame, whose number must match the header),
    and is more than a single frame."""
    try:
        with VideoReader(path) as reader:
            if full:
                reader.read_all()
            else:
                reader.read([0])
                reader.check_end()
            info = reader.info
    except VideoError as err:
        return None, str(err)
    problem = info.warning()
    if full and info.header_frames is not None and info.frames > info.header_frames:
        problem = f"header says {info.header_frames} frames but {info.frames} decode"
    return info.frames, f"{path}: {problem}" if problem else None


def check_dataset(name: str, root: str | Path, split: int | None = None,
                  splits_dir: str | Path | None = None, *, list_root: str | Path | None = None,
                  full: bool = False, strict: bool = False, progress: bool = True,
                  cache: str | Path | None = None) -> CheckReport:
    """Check a dataset's lists and every video in them (all three splits unless ``split``).

    ``root`` is the video root (for ``list``: the list file; videos under ``list_root``,
    default its folder).
    Videos are opened and their first and last frames decoded (a truncated file is a problem);
    ``full`` decodes every frame. Kinetics videos that are missing or do not open are
    ``skipped`` (as training skips them), or with ``strict`` problems. With ``cache`` (a
    ``mict prepare --out`` folder) every video's prepared frames and, where the cache holds
    optical flow, its flow must be there, current and of the video's frame count.
    """
    root = Path(root)
    report = CheckReport(name, str(root))
    try:
        video_root, report.splits_dir, lists = dataset_lists(name, root, split, splits_dir,
                                                             list_root)
    except (FileNotFoundError, ValueError) as err:
        report.problems.append(str(err))
        return report
    for parsed in lists.values():
        if len(parsed.classes) > len(report.classes):
            report.classes = list(parsed.classes)
    seen_problems: set[str] = set()
    paths: dict[str, None] = {}
    skips = name == "kinetics" and not strict
    for list_name, parsed in lists.items():
        missing = [str(p) for p in parsed.missing] if isinstance(parsed, KineticsSamples) else []
        report.listed += len(parsed.samples) + len(missing)
        (report.skipped if skips else report.problems).extend(missing)
        for problem in parsed.problems + parsed.duplicates:
            if str(problem) not in seen_problems:  # class index problems repeat in every list
                seen_problems.add(str(problem))
                report.problems.append(str(problem))
        if any(label == UNLABELLED for _, label in parsed.samples):
            report.unlabelled[list_name] = len(parsed.samples)
        else:
            counts = Counter(parsed.classes[label] for _, label in parsed.samples)
            report.counts[list_name] = {c: counts.get(c, 0) for c in parsed.classes}
        for path, _ in parsed.samples:
            paths.setdefault(str(video_root / path))
    frame_counts = []
    if cache is not None and not Path(cache).is_dir():
        report.problems.append(f"{cache}: no such cache folder")
        cache = None
    for path in tqdm(paths, desc="checking videos", unit="video", disable=not progress):
        if not os.path.exists(path):
            report.problems.append(
                f"{path}: a symbolic link to {os.readlink(path)}, which does not exist"
                if os.path.islink(path) else f"{path}: listed but no such file")
            continue
        frames, problem = check_video(path, full)
        if problem:
            (report.skipped if skips and frames is None else report.problems).append(problem)
        if frames:
            frame_counts.append(frames)
            if cache is not None:
                report.problems += cache_problems(path, os.path.relpath(path, video_root), cache,
                                                  frames)
    report.videos = len(paths)
    if frame_counts:
        report.frames = {"min": min(frame_counts), "median": statistics.median(frame_counts),
                         "max": max(frame_counts)}
    return report


def cache_problems(source: str, relative: str, cache: str | Path, frames: int) -> list[str]:
    """What is wrong with the prepared frames and (where ``cache`` holds any) the optical flow of
    the video ``source`` of ``frames`` frames."""
    found = []
    target = cache_path(cache, relative)
    try:
        header = read_header(target)
        if header["frames"] != frames:
            found.append(f"{target}: {header['frames']} prepared frames but {source} has "
                         f"{frames} (run mict prepare again)")
    except FileNotFoundError:
        found.append(f"{target}: no prepared frames for {source} (run mict prepare)")
    except VideoError as err:
        found.append(str(err))
    if _has_flow(cache):
        problem = flow_problem(source, flow_path(cache, relative), frames)
        found += [problem] if problem else []
    return found


@functools.cache
def _has_flow(cache: str | Path) -> bool:
    return next(Path(cache).rglob(f"*{FLOW_SUFFIX}"), None) is not None
