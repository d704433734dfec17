"""Kinetics-400/600/700 in the official layout: annotation CSVs and clips named by YouTube id.

Annotations: ``train.csv``, ``validate.csv`` (or ``val.csv``) and ``test.csv`` with the header
``label,youtube_id,time_start,time_end,split`` (extra columns ignored; the Kinetics-600/700 test
CSVs have no ``label`` column: their clips are unlabelled, :data:`UNLABELLED`), found in
``root/annotations``, beside ``root`` (``root/../annotations``, ``root/..``) or in
``annotations=DIR``. Videos are ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` (or
``<youtube_id>.<ext>``), any video extension, in class folders or flat, under ``root/<split>``
when that folder exists, else under ``root``; they are found through one walk of that folder.
Real copies always miss a few percent of the clips: those, and unreadable videos, are skipped
and listed in ``dataset.missing`` (and by :func:`write_missing` in ``missing-<split>.csv``)
unless ``strict=True``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from .datasets import UNLABELLED, VideoDataset
from .splits import VIDEO_EXTENSIONS, Problem, SampleList, SplitError

SPLITS = ("train", "val", "test")
ANNOTATIONS = "annotations"
SPLIT_FILES = {"train": ("train.csv",), "val": ("validate.csv", "val.csv"),
               "test": ("test.csv",)}
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validate", "valid", "validation"),
                 "test": ("test",)}
COLUMNS = ("youtube_id", "time_start", "time_end")  # and "label", except in unlabelled CSVs
MISSING_COLUMNS = ("reason", "youtube_id", "video", "annotation", "problem")


@dataclass(frozen=True)
class Clip:
    """One annotation row: ``line`` is its 1-based line in ``file``; ``label`` is ``None`` in a
    CSV without a label column."""

    label: str | None
    youtube_id: str
    start: int
    end: int
    file: str
    line: int

    @property
    def stem(self) -> str:
        return f"{self.youtube_id}_{self.start:06d}_{self.end:06d}"


@dataclass(frozen=True)
class Skipped:
    """A listed clip left out: ``reason`` is ``missing`` (no video file), ``duplicate`` (its
    file is an earlier row's) or ``unreadable``; ``video`` its file relative to the root
    (empty when missing)."""

    reason: str
    clip: Clip
    video: str
    problem: str

    @property
    def message(self) -> str:
        return f"{self.video}: {self.problem}" if self.video else self.problem

    def row(self) -> dict[str, str]:
        """A row of ``missing-<split>.csv`` (:data:`MISSING_COLUMNS`)."""
        return {"reason": self.reason, "youtube_id": self.clip.youtube_id, "video": self.video,
                "annotation": f"{self.clip.file}:{self.clip.line}", "problem": self.problem}


@dataclass
class KineticsList:
    """A split's clips resolved to video files: ``samples`` found (label :data:`UNLABELLED`
    when the CSV has none), ``missing`` not."""

    classes: list[str]
    source: str
    labelled: bool = True
    samples: list[tuple[str, int]] = field(default_factory=list)
    clips: dict[str, Clip] = field(default_factory=dict)  # relative path -> its CSV row
    missing: list[Skipped] = field(default_factory=list)

    def sample_list(self) -> KineticsSamples:
        """As a :class:`SampleList` (for ``mict check`` and ``mict prepare``)."""
        missing = [Problem(s.clip.file, f"{s.clip.youtube_id}: {s.message}", s.clip.line)
                   for s in self.missing]
        return KineticsSamples(self.classes, list(self.samples), sources=[self.source],
                               missing=missing)


@dataclass
class KineticsSamples(SampleList):
    """A split's found videos; ``missing`` names the CSV line of each video not found (skipped
    by ``mict prepare``, and by ``mict check`` unless ``--strict``)."""

    missing: list[Problem] = field(default_factory=list)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"Kinetics splits are {', '.join(SPLITS)}, not {split!r}")


def find_annotations(root: str | Path, annotations: str | Path | None = None) -> Path:
    """The folder of the annotation CSVs: ``annotations`` if given, else the first of
    ``root/annotations``, ``root/../annotations``, ``root/..`` that holds a split CSV."""
    if annotations is not None:
        if not Path(annotations).is_dir():
            raise FileNotFoundError(f"{annotations}: annotation folder not found")
        return Path(annotations)
    parent = Path(root).resolve().parent
    candidates = [Path(root) / ANNOTATIONS, parent / ANNOTATIONS, parent]
    for folder in candidates:
        if any((folder / name).is_file() for names in SPLIT_FILES.values() for name in names):
            return folder
    raise FileNotFoundError(f"no Kinetics annotation CSVs (train.csv, validate.csv, test.csv) in "
                            f"{', '.join(map(str, candidates))}; give the folder with --splits DIR "
                            "(annotations=...)")


def annotation_file(folder: Path, split: str) -> Path | None:
    """The CSV of ``split`` in ``folder`` (``val``: ``validate.csv`` or ``val.csv``), or None."""
    _check_split(split)
    return next((folder / n for n in SPLIT_FILES[split] if (folder / n).is_file()), None)


def read_annotations(file: Path) -> tuple[list[Clip], list[Problem]]:
    """The rows of one annotation CSV, and its malformed lines as problems. Without a ``label``
    column (the Kinetics-600/700 test CSVs) every clip's label is ``None``."""
    with open(file, newline="", encoding="utf-8-sig", errors="surrogateescape") as f:
        rows = list(csv.reader(f))
    header = [name.strip() for name in rows[0]] if rows else []
    absent = [c for c in COLUMNS if c not in header]
    if absent:
        return [], [Problem(str(file), f"header {','.join(header)!r} lacks column(s) "
                            f"{', '.join(absent)} (expected label,{','.join(COLUMNS)},split; "
                            "label only where the split has labels)", 1)]
    at = {name: header.index(name) for name in ("label", *COLUMNS) if name in header}
    clips: list[Clip] = []
    problems: list[Problem] = []
    for n, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        clip = _clip(row, at, str(file), n)
        if isinstance(clip, Problem):
            problems.append(clip)
        else:
            clips.append(clip)
    return clips, problems


def _clip(row: list[str], at: dict[str, int], file: str, line: int) -> Clip | Problem:
    """One row as a :class:`Clip`, or what is wrong with it."""
    if len(row) <= max(at.values()):
        return Problem(file, f"expected {len(at)}+ comma-separated fields, got {row!r}", line)
    label = row[at["label"]].strip() if "label" in at else None
    youtube_id = row[at["youtube_id"]].strip()
    if label == "" or not youtube_id:
        return Problem(file, f"empty label or youtube_id in {row!r}", line)
    times = []
    for name in ("time_start", "time_end"):
        text = row[at[name]].strip()
        try:
            value = float(text)
        except ValueError:
            return Problem(file, f"{name} {text!r} is not a number", line)
        if value != int(value) or value < 0:
            return Problem(file, f"{name} {text!r} is not a whole number of seconds", line)
        times.append(int(value))
    return Clip(label, youtube_id, times[0], times[1], file, line)


def index_videos(root: Path, split: str) -> dict[str, str]:
    """``{file stem: path relative to root}`` of every video under ``root/<split folder>``
    (or ``root`` when there is none), class folders or flat; the first in sorted order wins."""
    base = next((root / n for n in SPLIT_FOLDERS[split] if (root / n).is_dir()), root)
    index: dict[str, str] = {}
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            stem, ext = os.path.splitext(name)
            if ext.lower() in VIDEO_EXTENSIONS:
                index.setdefault(stem, os.path.relpath(os.path.join(folder, name), root))
    return index


def kinetics_list(root: str | Path, split: str = "train",
                  annotations: str | Path | None = None) -> KineticsList:
    """Read ``split``'s CSV and find its videos. Classes are the sorted labels of the train and
    val CSVs present (so both splits number them alike; an unlabelled test CSV takes theirs);
    malformed lines raise :class:`SplitError` naming ``file:line``."""
    folder = find_annotations(root, annotations)
    file = annotation_file(folder, split)
    if file is None:
        raise FileNotFoundError(f"{folder}: no {' or '.join(SPLIT_FILES[split])} for split "
                                f"{split!r}")
    clips, problems = read_annotations(file)
    if problems:
        raise SplitError(problems)
    labels = {c.label for c in clips}
    for other in ("train", "val"):
        other_file = annotation_file(folder, other)
        if other_file is not None and other_file != file:
            labels |= {c.label for c in read_annotations(other_file)[0]}
    labelled = all(c.label is not None for c in clips)
    result = KineticsList(sorted(labels - {None}), str(file), labelled)
    _resolve(result, clips, index_videos(Path(root), split))
    return result


def _resolve(result: KineticsList, clips: list[Clip], index: dict[str, str]) -> None:
    """Fill ``result``'s samples and missing clips from the file index."""
    number = {name: i for i, name in enumerate(result.classes)}
    for clip in clips:
        path = index.get(clip.stem) or index.get(clip.youtube_id)
        if path is None:
            result.missing.append(Skipped("missing", clip, "",
                                          f"no video file {clip.stem}.* found"))
        elif path in result.clips:
            first = result.clips[path]
            result.missing.append(Skipped("duplicate", clip, path,
                                          f"listed before, on line {first.line}"))
        else:
            result.samples.append((path, UNLABELLED if clip.label is None else number[clip.label]))
            result.clips[path] = clip


def missing_file(folder: str | Path, split: str) -> Path:
    """Where a run or an evaluation lists the clips of ``split`` it skipped."""
    return Path(folder) / f"missing-{split}.csv"


def write_missing(skipped: list[Skipped], path: str | Path) -> Path | None:
    """Write ``skipped`` as CSV (:data:`MISSING_COLUMNS`, one row per clip) to ``path``; with
    nothing skipped, remove an earlier list instead and return ``None``."""
    path = Path(path)
    if not skipped:
        path.unlink(missing_ok=True)
        return None
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=MISSING_COLUMNS)
        writer.writeheader()
        writer.writerows(s.row() for s in skipped)
    return path


class Kinetics(VideoDataset):
    """Kinetics-400/600/700 (see the module docstring): ``split`` is ``train``, ``val`` or
    ``test``; ``annotations`` the CSV folder. Missing videos, and with the default
    ``strict=False`` empty or unreadable ones too, are skipped and listed in :meth:`skipped`;
    ``strict=True`` makes a missing video an error naming its CSV line (and an empty or
    unreadable one an error unless ``skip_bad=True``). A split without labels
    (:attr:`labelled` false: every label is :data:`UNLABELLED`) can be scored, not trained on."""

    def __init__(self, root: str | Path, split: str = "train", train: bool = True, *,
                 annotations: str | Path | None = None, strict: bool = False,
                 **clip_options) -> None:
        listed = kinetics_list(root, split, annotations)
        if train and not listed.labelled:
            raise ValueError(f"{listed.source} has no label column: its clips can be scored "
                             "(mict evaluate writes their predictions), not trained on")
        if strict and listed.missing:
            first = listed.missing[0]
            raise FileNotFoundError(
                f"{first.clip.file}:{first.clip.line}: {first.clip.youtube_id}: {first.message} "
                f"under {root} ({len(listed.missing)} of "
                f"{len(listed.missing) + len(listed.samples)} listed videos missing or listed "
                "twice; without --strict, strict=False, they are skipped)")
        self.split = split
        self.strict = strict
        self.labelled = listed.labelled
        self._listed = listed
        clip_options["skip_bad"] = clip_options.get("skip_bad", False) or not strict
        super().__init__(root, listed.classes, listed.samples, train, listed.source,
                         **clip_options)

    @property
    def listed(self) -> int:
        """Clips the split's CSV lists, found or not."""
        return len(self._listed.samples) + len(self._listed.missing)

    def skipped(self) -> list[Skipped]:
        """Every clip skipped so far: missing and duplicate rows, then empty or unreadable
        videos (found when the dataset was built or when a clip failed to decode)."""
        unreadable = []
        for path, problem in self.bad_videos:
            video = os.path.relpath(path, self.root)
            unreadable.append(Skipped("unreadable", self._listed.clips[video], video, problem))
        return self._listed.missing + unreadable

    @property
    def missing(self) -> list[tuple[str, str]]:
        """``(youtube_id, "file.csv:line: problem")`` of every clip skipped so far."""
        return [(s.clip.youtube_id, f"{s.clip.file}:{s.clip.line}: {s.message}")
                for s in self.skipped()]

    def video_record(self, index: int) -> dict[str, str]:
        """The video of sample ``index`` and its CSV row's YouTube id and times."""
        record = super().video_record(index)
        clip = self._listed.clips[record["video"]]
        return {**record, "youtube_id": clip.youtube_id, "time_start": str(clip.start),
                "time_end": str(clip.end)}
