"""``mict synth``: write the synthetic motion dataset (UCF-101 or Kinetics layout) and summarise
it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data.synthetic import (
    DEMO_DATASET,
    MOTIONS,
    SynthConfig,
    generate_dataset,
    held_out_groups,
    reversed_pairs,
)
from ..data.synthetic_kinetics import TEST_GROUPS, generate_kinetics_layout
from ..engine.arg_types import frame_size, non_negative_int, positive_int


def summary(out_dir: Path, config: SynthConfig) -> list[str]:
    """Lines describing the dataset: where, classes, clips and split sizes."""
    per_class = config.groups * config.clips_per_group
    width, height = config.size
    lines = [
        f"synthetic motion dataset in {out_dir}",
        f"  videos: {out_dir / 'UCF-101'}  splits: {out_dir / 'ucfTrainTestlist'}",
        f"  {config.classes} classes x {config.groups} groups x {config.clips_per_group} clips = "
        f"{config.classes * per_class} clips of {config.frames} frames, {width}x{height}, "
        f"seed {config.seed}",
        f"  classes: {', '.join(config.class_names)}",
        f"  time-reversed pairs: "
        f"{', '.join('/'.join(p) for p in reversed_pairs(config.motions)) or 'none'}",
        f"  flip-safe classes: {', '.join(config.flip_safe) or 'none'}",
    ]
    for k, held_out in enumerate(held_out_groups(config.groups), 1):
        test = config.classes * len(held_out) * config.clips_per_group
        lines.append(f"  split {k}: {config.classes * per_class - test} train / {test} test "
                     f"(test groups {held_out[0]}-{held_out[-1]})")
    return lines


def kinetics_summary(out_dir: Path, config: SynthConfig) -> list[str]:
    """Lines describing the Kinetics-layout tree: where, classes and split sizes."""
    counts = {split: sum(1 for line in (out_dir / "annotations" / file).open()) - 1
              for split, file in (("train", "train.csv"), ("val", "validate.csv"),
                                  ("test", "test.csv"))}
    width, height = config.size
    return [
        f"synthetic motion dataset in {out_dir}, Kinetics layout",
        f"  videos: {out_dir}/train, val, test  annotations: {out_dir / 'annotations'}",
        f"  {config.classes} classes x {config.groups} groups x {config.clips_per_group} clips = "
        f"{sum(counts.values())} clips of {config.frames} frames, {width}x{height}, "
        f"seed {config.seed}",
        f"  train {counts['train']}, val {counts['val']}, test {counts['test']} (unlabelled: "
        f"the last {TEST_GROUPS} held-out groups of split 1)",
    ]


def run(args: argparse.Namespace) -> int:
    config = SynthConfig(classes=args.classes, groups=args.groups,
                         clips_per_group=args.clips_per_group, frames=args.frames,
                         size=args.size, seed=args.seed, class_offset=args.class_offset)
    if args.layout == "kinetics":
        generate_kinetics_layout(args.out, config)
        print("\n".join(kinetics_summary(Path(args.out), config)))
    else:
        generate_dataset(args.out, config, progress=True)
        print("\n".join(summary(Path(args.out), config)))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    d = DEMO_DATASET
    p = subparsers.add_parser(
        "synth",
        description="Write MPEG-4 AVI clips of objects that move in one of several ways, in the "
                    "layout of the UCF-101 archives (OUT/UCF-101, OUT/ucfTrainTestlist). "
                    "Defaults are the demo's dataset; the same settings give the same bytes and "
                    "an existing complete dataset with the same settings is reused.")
    p.add_argument("out", type=Path, metavar="OUT", help="output folder")
    p.add_argument("--classes", type=positive_int, default=d.classes,
                   help=f"number of motion classes, 2-{len(MOTIONS)}: the catalogue's first ones "
                        f"(default {d.classes})")
    p.add_argument("--class-offset", type=non_negative_int, default=d.class_offset,
                   help="skip this many motions of the catalogue first, so that two datasets "
                        "hold different classes (a pre-training source and a small target: "
                        "--classes 8 and --classes 4 --class-offset 8)")
    p.add_argument("--groups", type=positive_int, default=d.groups,
                   help=f"groups per class, 3-99 (default {d.groups})")
    p.add_argument("--clips-per-group", type=positive_int, default=d.clips_per_group,
                   help=f"clips per group (default {d.clips_per_group})")
    p.add_argument("--frames", type=positive_int, default=d.frames,
                   help=f"frames per clip (default {d.frames})")
    p.add_argument("--size", type=frame_size, default=d.size, metavar="WIDTHxHEIGHT",
                   help=f"frame size, width first (default {d.size[0]}x{d.size[1]})")
    p.add_argument("--layout", choices=("ucf101", "kinetics"), default="ucf101",
                   help="ucf101: OUT/UCF-101 and OUT/ucfTrainTestlist; kinetics: OUT/train, "
                        "OUT/val, OUT/test and OUT/annotations/*.csv, split 1's groups, class "
                        "names in Kinetics' words (default ucf101)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help=f"random seed; another seed gives new clips of the same classes "
                        f"(default {d.seed})")
    p.set_defaults(func=run)
