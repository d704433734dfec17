"""Split and list files: UCF-101, HMDB-51, video lists and class folders, read exactly as shipped.

Every parser returns a :class:`SampleList` of ``(relative path, label)`` pairs with the class
names, plus the problems it found (``file:line: what is wrong``) instead of stopping at the first,
so that ``mict check`` can report them all; datasets call :meth:`SampleList.raise_problems`.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

UCF101_SPLITS = "ucfTrainTestlist"
HMDB51_SPLITS = "testTrainMulti_7030_splits"
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv")
_HMDB_FILE = re.compile(r"(?P<name>.+)_test_split(?P<split>\d+)\.txt")
MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class Problem:
    """Something wrong in a list file (``line`` is 1-based) or with one video."""

    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


class SplitError(ValueError):
    """A split or list file that cannot be used; the message lists its problems."""

    def __init__(self, problems: list[Problem]) -> None:
        shown = [str(p) for p in problems[:MAX_LISTED_PROBLEMS]]
        more = len(problems) - len(shown)
        super().__init__("\n".join(shown + ([f"... and {more} more"] if more > 0 else [])))
        self.problems = problems


@dataclass
class SampleList:
    """``(path relative to the video root, label)`` pairs and class names from a split/list."""

    classes: list[str]
    samples: list[tuple[str, int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def raise_problems(self) -> None:
        if self.problems:
            raise SplitError(self.problems)


def unsafe_path_reason(path: str) -> str | None:
    """Why ``path`` may not be used relative to a root (absolute, ``..``, empty), or ``None``."""
    if not path:
        return "empty path"
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute() or \
            PureWindowsPath(path).drive:
        return f"absolute path {path!r} (paths must be relative to the video root)"
    if ".." in re.split(r"[\\/]", path):
        return f"path {path!r} leaves the video root ('..')"
    return None


def find_splits_dir(root: str | Path, folder: str, splits_dir: str | Path | None = None) -> Path:
    """The split folder: ``splits_dir`` if given, else ``root/folder`` or ``root/../folder``."""
    if splits_dir is not None:
        path = Path(splits_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: split folder not found")
        return path
    root = Path(root)
    candidates = [root / folder, root.resolve().parent / folder]
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(
        f"split folder {folder!r} not found in {candidates[0]} or {candidates[1]}; "
        "give it with --splits DIR (splits_dir=...)")


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank ``(line number, stripped text)`` of a text file (CRLF or LF; a UTF-8
    byte-order mark, as Windows editors write, is dropped)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    text = path.read_text(encoding="utf-8-sig", errors="surrogateescape")
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_ucf101_classes(path: str | Path) -> tuple[list[str], list[Problem]]:
    """``classInd.txt``: ``<index> <Class>`` with indices 1..N in order."""
    path = Path(path)
    classes: list[str] = []
    problems: list[Problem] = []
    for n, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            problems.append(Problem(str(path), f"expected '<index> <ClassName>', got {line!r}", n))
            continue
        if int(parts[0]) != len(classes) + 1:
            problems.append(Problem(str(path), f"class index {parts[0]} out of order "
                                    f"(expected {len(classes) + 1})", n))
        if parts[1] in classes:
            problems.append(Problem(str(path), f"class {parts[1]!r} listed twice", n))
        classes.append(parts[1])
    if not classes and not problems:
        problems.append(Problem(str(path), "no classes in the class index"))
    return classes, problems


def parse_ucf101(splits_dir: str | Path, split: int = 1, train: bool = True) -> SampleList:
    """UCF-101 ``trainlist0N.txt`` (``Class/v_Class_gGG_cCC.avi label``) or ``testlist0N.txt``.

    Labels (0-based) come from ``classInd.txt`` through the class folder of each path; a train
    label that disagrees with it is a problem. File names may spell the class differently from
    the folder (``HandstandPushups/v_HandStandPushups_...``), as in the official release.
    """
    splits_dir = Path(splits_dir)
    if split not in (1, 2, 3):
        raise ValueError(f"UCF-101 has splits 1, 2 and 3, not {split}")
    classes, problems = read_ucf101_classes(splits_dir / "classInd.txt")
    index = {name: i for i, name in enumerate(classes)}
    list_file = splits_dir / f"{'train' if train else 'test'}list0{split}.txt"
    result = SampleList(classes, problems=problems,
                        sources=[str(splits_dir / "classInd.txt"), str(list_file)])
    seen: dict[str, int] = {}
    for n, line in _lines(list_file):
        parts = line.split()
        if len(parts) not in ((2,) if train else (1, 2)):
            want = "'<Class>/<video>.avi <label>'" if train else "'<Class>/<video>.avi'"
            result.problems.append(Problem(str(list_file), f"expected {want}, got {line!r}", n))
            continue
        path = parts[0].replace("\\", "/")
        reason = unsafe_path_reason(parts[0])
        if reason is None and len(PurePosixPath(path).parts) != 2:
            reason = f"expected '<Class>/<video>', got {path!r}"
        if reason:
            result.problems.append(Problem(str(list_file), reason, n))
            continue
        folder = PurePosixPath(path).parts[0]
        if folder not in index:
            result.problems.append(Problem(str(list_file), f"unknown class {folder!r} "
                                           "(not in classInd.txt)", n))
            continue
        label = index[folder]
        if len(parts) == 2:
            if not parts[1].isdigit():
                result.problems.append(Problem(str(list_file), f"label {parts[1]!r} is not a "
                                               "number", n))
                continue
            if int(parts[1]) - 1 != label:
                result.problems.append(Problem(
                    str(list_file), f"label {parts[1]} disagrees with classInd.txt, where "
                    f"{folder!r} is {label + 1}", n))
                continue
        _add(result, path, label, str(list_file), n, seen)
    return result


def parse_hmdb51(splits_dir: str | Path, split: int = 1, train: bool = True) -> SampleList:
    """HMDB-51 ``<class>_test_splitN.txt`` files (``<video>.avi <0|1|2>``; 1 train, 2 test).

    Classes are the ``<class>`` parts of the split file names in alphabetical order (the order
    used by the published results); paths are ``<class>/<video>.avi``.
    """
    splits_dir = Path(splits_dir)
    if split not in (1, 2, 3):
        raise ValueError(f"HMDB-51 has splits 1, 2 and 3, not {split}")
    by_split: dict[int, set[str]] = {}
    for file in splits_dir.iterdir():
        match = _HMDB_FILE.fullmatch(file.name)
        if match:
            by_split.setdefault(int(match["split"]), set()).add(match["name"])
    all_classes = sorted(set().union(*by_split.values())) if by_split else []
    if not all_classes:
        raise FileNotFoundError(f"{splits_dir}: no '<class>_test_split<N>.txt' files")
    result = SampleList(all_classes)
    wanted = "1" if train else "2"
    seen: dict[str, int] = {}
    for label, name in enumerate(all_classes):
        file = splits_dir / f"{name}_test_split{split}.txt"
        if not file.is_file():
            result.problems.append(Problem(str(file), "split file missing"))
            continue
        result.sources.append(str(file))
        for n, line in _lines(file):
            parts = line.rsplit(None, 1)
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                result.problems.append(Problem(str(file), f"expected '<video>.avi <0|1|2>', got "
                                               f"{line!r}", n))
                continue
            if "/" in parts[0] or "\\" in parts[0] or parts[0] in (".", ".."):
                result.problems.append(Problem(str(file), f"video name {parts[0]!r} must be a "
                                               "bare file name", n))
                continue
            if parts[1] == wanted:
                _add(result, f"{name}/{parts[0]}", label, str(file), n, seen)
    return result


def official_split(name: str, root: str | Path, split: int = 1, train: bool = True,
                   splits_dir: str | Path | None = None) -> tuple[Path, SampleList]:
    """``(split folder, list)`` of ``ucf101`` or ``hmdb51``: the folder is found as
    :func:`find_splits_dir` says and parsed with that dataset's parser."""
    folder_name, parse = _OFFICIAL_SPLITS[name]
    folder = find_splits_dir(root, folder_name, splits_dir)
    return folder, parse(folder, split, train)


def parse_video_list(file: str | Path, root: str | Path | None = None) -> SampleList:
    """A list of ``path label`` lines or CSV ``path,label`` rows (quoted fields allowed; an
    optional ``path,label`` header).

    Labels are all integers (0-based class indices; classes are named ``"0"``, ``"1"``, ...) or
    all class names (classes sorted by name). Paths are relative to the video root ``root``
    (default: the list's folder); absolute paths are accepted when they lie under it, and no
    path may leave it. Returned paths are relative to ``root``.
    """
    file = Path(file)
    root = file.parent if root is None else Path(root)
    rows: list[tuple[int, str, str]] = []
    result = SampleList([], sources=[str(file)])
    for n, line in _lines(file):
        if line.startswith("#"):
            continue
        parts = _list_fields(line)
        if n == 1 and [p.lower() for p in parts] == ["path", "label"]:
            continue
        if len(parts) != 2 or not parts[0] or not parts[1]:
            result.problems.append(Problem(str(file), f"expected 'path label' or 'path,label', "
                                           f"got {line!r}", n))
            continue
        path, reason = path_under_root(parts[0], root)
        if reason:
            result.problems.append(Problem(str(file), reason, n))
            continue
        rows.append((n, path, parts[1]))
    numeric = [r for r in rows if r[2].isdigit()]
    if numeric and len(numeric) != len(rows):
        n = next(r[0] for r in rows if not r[2].isdigit())
        result.problems.append(Problem(str(file), "labels mix class numbers and class names", n))
        return result
    if numeric:
        result.classes = [str(i) for i in range(max(int(r[2]) for r in rows) + 1)]
        labels = {r[2]: int(r[2]) for r in rows}
    else:
        result.classes = sorted({r[2] for r in rows})
        labels = {name: i for i, name in enumerate(result.classes)}
    seen: dict[str, int] = {}
    for n, path, label in rows:
        _add(result, path, labels[label], str(file), n, seen)
    if not rows and not result.problems:
        result.problems.append(Problem(str(file), "no videos listed"))
    return result


def _list_fields(line: str) -> list[str]:
    """The fields of a list line: a CSV row when it has a comma or a quote, else ``path label``
    split at the last space (paths may contain spaces)."""
    if "," in line or '"' in line:
        return [field.strip() for field in next(csv.reader([line], skipinitialspace=True))]
    return line.rsplit(None, 1)


def path_under_root(path: str, root: str | Path) -> tuple[str, str | None]:
    """``(path relative to root, None)`` for a listed ``path`` (relative to ``root`` or absolute)
    that lies under ``root``, else ``(path, why not)``; checked on the names, not symlinks."""
    if not path:
        return path, "empty path"
    posix = path.replace("\\", "/")
    absolute = posix.startswith("/") or bool(PureWindowsPath(path).drive)
    base = os.path.abspath(root)
    full = os.path.normpath(posix if absolute else os.path.join(base, posix))
    if not PureWindowsPath(path).drive and os.path.commonpath([base, full]) == base:
        return os.path.relpath(full, base), None
    if absolute:
        return path, (f"absolute path {path!r} is outside the video root {base} (declare a root "
                      "that holds it: --list-root DIR, or root= of VideoList)")
    return path, f"path {path!r} leaves the video root ('..')"


def scan_video_folder(root: str | Path) -> SampleList:
    """``root/<class>/<video>`` (video extensions only); classes are the folder names, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: video folder not found")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    result = SampleList([], sources=[str(root)])
    for folder in folders:
        videos = sorted(p for p in folder.iterdir()
                        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            continue
        label = len(result.classes)
        result.classes.append(folder.name)
        result.samples += [(f"{folder.name}/{v.name}", label) for v in videos]
    if not result.samples:
        result.problems.append(Problem(str(root), "no '<class>/<video>' files found "
                                       f"(extensions {', '.join(VIDEO_EXTENSIONS)})"))
    return result


_OFFICIAL_SPLITS = {"ucf101": (UCF101_SPLITS, parse_ucf101),
                    "hmdb51": (HMDB51_SPLITS, parse_hmdb51)}


def _add(result: SampleList, path: str, label: int, file: str, line: int,
         seen: dict[str, int]) -> None:
    if path in seen:
        result.duplicates.append(Problem(file, f"{path!r} listed again (first at line "
                                         f"{seen[path]})", line))
        return
    seen[path] = line
    result.samples.append((path, label))
