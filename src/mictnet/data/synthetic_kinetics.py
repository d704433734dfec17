"""The synthetic motion dataset in the layout of the Kinetics archives: ``train/``, ``val/`` and
``test/`` video folders and ``annotations/{train,validate,test}.csv``, for trying the Kinetics
path (``--dataset kinetics``) without downloading Kinetics.

Clips come from :func:`~.synthetic.generate_dataset` and are renamed as Kinetics names its files
(``<youtube id>_<start:06d>_<end:06d>.avi``, ids and times drawn from the config's seed). Split 1
decides: its training groups are ``train``, its held-out groups are ``val`` except the last two,
which become an unlabelled ``test`` (no label column, flat folder), as in Kinetics-600/700.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .kinetics import ANNOTATIONS
from .synthetic import VIDEO_DIR, SynthConfig, clip_name, generate_dataset, held_out_groups

ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
MARKER = "synth-kinetics.json"
TEST_GROUPS = 2  # held-out groups of split 1 that form the unlabelled test split


def kinetics_class_name(name: str) -> str:
    """``ZoomIn`` → ``zoom in``: the catalogue's name in Kinetics' lower-case words."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _split_of(group: int, held_out: list[int]) -> str:
    if group not in held_out:
        return "train"
    return "test" if group in held_out[-TEST_GROUPS:] else "val"


def generate_kinetics_layout(out_dir: str | Path, config: SynthConfig,
                             progress: bool = True) -> Path:
    """Write the dataset of ``config`` under ``out_dir`` in the Kinetics layout; return
    ``out_dir``. An earlier tree written here is replaced; a folder this module did not write
    that holds ``annotations/`` is refused."""
    out = Path(out_dir)
    if (out / ANNOTATIONS).exists() and not (out / MARKER).is_file():
        raise ValueError(f"{out}: holds {ANNOTATIONS}/ but no {MARKER}, so it is not a synthetic "
                         "Kinetics tree; choose another folder")
    for name in ("train", "val", "test", ANNOTATIONS):
        shutil.rmtree(out / name, ignore_errors=True)
    held_out = held_out_groups(config.groups)[0]
    rng = np.random.default_rng([config.seed, 400])
    rows: dict[str, list[list[str]]] = {"train": [], "val": [], "test": []}
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".synth-ucf-", dir=out) as tmp:
        videos = generate_dataset(tmp, config, progress=progress)
        for name in config.class_names:
            label = kinetics_class_name(name)
            for g in range(1, config.groups + 1):
                for c in range(1, config.clips_per_group + 1):
                    split = _split_of(g, held_out)
                    youtube_id = "".join(rng.choice(list(ID_CHARS), 11))
                    start = int(rng.integers(0, 290))
                    file = f"{youtube_id}_{start:06d}_{start + 10:06d}.avi"
                    folder = out / split if split == "test" else out / split / label
                    folder.mkdir(parents=True, exist_ok=True)
                    shutil.move(videos / clip_name(name, g, c), folder / file)
                    rows[split].append([label, youtube_id, str(start), str(start + 10), split])
    _write_annotations(out / ANNOTATIONS, rows)
    (out / MARKER).write_text(json.dumps({"generator": __name__, "source": VIDEO_DIR,
                                          "config": asdict(config) | {"size": list(config.size)}},
                                         indent=2))
    return out


def _write_annotations(folder: Path, rows: dict[str, list[list[str]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, file in (("train", "train.csv"), ("val", "validate.csv"), ("test", "test.csv")):
        labelled = split != "test"
        with open(folder / file, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow((["label"] if labelled else []) +
                            ["youtube_id", "time_start", "time_end", "split"])
            writer.writerows(row if labelled else row[1:] for row in rows[split])
