"""``mict transfer-study``: the flags of :class:`~mictnet.engine.transfer.StudyConfig`, the study
(:func:`~mictnet.engine.transfer.run_study`), and its table printed."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..engine.config_flags import add_section_flags, section_from_args
from ..engine.distributed import releases_process_group
from ..engine.transfer import StudyConfig, run_study


@releases_process_group
def run(args: argparse.Namespace) -> int:
    summary = run_study(section_from_args(args, StudyConfig))
    if summary is None:
        return 0  # not the main process
    out = Path(args.out)
    print(summary["markdown"], end="")
    print(f"tables: {out / 'transfer.md'}, {out / 'transfer.json'}\nbar chart: "
          f"{out / 'transfer.png'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "transfer-study",
        description="Train each model on the target directly (from ImageNet, or from scratch "
                    "with --pretrained none) and via the source (the same start, trained on "
                    "the source once, then fine-tuned), over the target's splits and seeds; "
                    "write the comparison (top-1/top-5 mean ± std, params, frames/s) as "
                    "OUT/transfer.md, .json and a bar chart .png. Finished runs are reused, "
                    "unfinished ones resumed.")
    add_section_flags(p, StudyConfig, tuple(f.name for f in dataclasses.fields(StudyConfig)),
                      default_text={"pretrained": "the recipe's"},
                      required=("source_root", "target_root"))
    p.set_defaults(func=run)
