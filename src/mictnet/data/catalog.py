"""The datasets by name, as ``--dataset`` and the config's ``data.dataset`` give them."""

from __future__ import annotations

from pathlib import Path

from .datasets import HMDB51, UCF101, VideoDataset, VideoFolder, VideoList
from .kinetics import Kinetics

DATASETS = ("ucf101", "hmdb51", "kinetics", "folder", "list")


def build_dataset(name: str, root: str | Path, split: int | str = 1, train: bool = True, *,
                  splits_dir: str | Path | None = None, list_root: str | Path | None = None,
                  strict: bool = False, **clip_options) -> VideoDataset:
    """A dataset by name: ``ucf101``, ``hmdb51``, ``kinetics``, ``folder`` or ``list``
    (``root`` = the list file, ``list_root`` = the folder its videos lie under, default the
    list's folder). ``split`` and ``splits_dir`` apply to the first three; Kinetics reads the
    ``train`` CSV for training and ``val`` for testing whatever a numeric ``split`` says (a
    split name is used as given), its annotation folder is ``splits_dir``, and ``strict``
    makes its missing videos an error (the other datasets always do)."""
    if list_root is not None and name != "list":
        raise ValueError(f"list_root applies to the 'list' dataset only, not {name!r}")
    if name == "kinetics":
        part = split if isinstance(split, str) else "train" if train else "val"
        return Kinetics(root, part, train, annotations=splits_dir, strict=strict,
                        **clip_options)
    if name == "ucf101":
        return UCF101(root, split, train, splits_dir=splits_dir, **clip_options)
    if name == "hmdb51":
        return HMDB51(root, split, train, splits_dir=splits_dir, **clip_options)
    if name == "folder":
        return VideoFolder(root, train, **clip_options)
    if name == "list":
        return VideoList(root, list_root, train, **clip_options)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")

