"""Run the README's console examples and report where their output drifted from the text.

Every ```` ```console ```` block of README.md is a list of ``$ command`` lines, each followed by
the output it shows. The commands run in order, in one working folder (``--workdir``, default a
fresh temporary one), through ``bash`` with the virtual environment's ``bin`` first on ``PATH``,
so later examples use what earlier ones wrote (``mict synth synth`` then ``--root synth/...``).
Commands that need what this machine lacks (a dataset under ``/data`` or ``~/data``, several
GPUs, a running server, the network) are skipped with the reason.

An output line matches when an output line of the command equals it with every number masked
(figures change from run to run and CPU to CPU, words must not) and paths made relative to the
working folder; ``...`` in the README stands for any lines. Each command prints one line (exit
status, seconds, matched/shown lines), then every shown line that no output line matches, beside
the closest one printed. Exit status 1 when any line drifted.

    python scripts/readme_examples.py [--only REGEX] [--skip REGEX] [--workdir DIR] [--readme FILE]
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDS = {  # what a command needs that a 2-core CPU machine without data may lack
    r"(^|\s)(/data/|~/data/)": "a dataset under /data or ~/data",
    r"^torchrun\b": "several processes on GPUs",
    r"^pip install\b": "the network",
    r"^curl\b": "a running mict serve",
    r"^mict serve\b": "a server that runs until stopped",
    r"four-actions\.avi": "test clips joined end to end (tests/serve/test_live.py makes one)",
}
NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
TMP_PATH = re.compile(r"/tmp/[^/\s]+/")
HASH = re.compile(r"-[0-9a-f]{8}\b")  # mict explain's per-video folder: a hash of the path
PROGRESS = re.compile(r"\d+/\d+ \[[^\]]*\]|\|[ ▏▎▍▌▋▊▉█]*\|")


@dataclass
class Example:
    command: str
    shown: list[str] = field(default_factory=list)
    line: int = 0


def examples(readme: Path) -> list[Example]:
    """The ``$ command`` lines of every console block, each with the output shown under it."""
    found: list[Example] = []
    in_block, current = False, None
    for number, text in enumerate(readme.read_text(encoding="utf-8").splitlines(), 1):
        if text.startswith("```"):
            in_block, current = text.strip() == "```console" and not in_block, None
        elif in_block and text.startswith("$ "):
            current = Example(text[2:].split("   # ")[0].strip(), line=number)
            found.append(current)
        elif current is not None and text.strip():
            current.shown.append(text)
    return found


def mask(text: str, workdir: Path) -> str:
    """A line with numbers masked, temporary and working-folder paths dropped, spaces collapsed."""
    text = text.replace(str(workdir) + os.sep, "").replace(str(Path.home()), "~")
    text = HASH.sub("-<hash>", TMP_PATH.sub("", text))
    return " ".join(NUMBER.sub("#", text).split())


def skip_reason(command: str) -> str | None:
    return next((why for pattern, why in NEEDS.items() if re.search(pattern, command)), None)


def run(example: Example, workdir: Path, env: dict[str, str]) -> tuple[int, float, list[str]]:
    start = time.perf_counter()
    proc = subprocess.run(["bash", "-c", example.command], cwd=workdir, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace")
    lines = [part for line in proc.stdout.splitlines() for part in line.split("\r")
             if part.strip() and not PROGRESS.search(part)]
    return proc.returncode, time.perf_counter() - start, lines


def drift(example: Example, printed: list[str], workdir: Path) -> list[tuple[str, str]]:
    """Shown lines that no printed line matches, each with the closest printed line."""
    masked = [mask(p, workdir) for p in printed]
    have = set(masked)
    return [(line, (difflib.get_close_matches(mask(line, workdir), masked, 1, 0.0) or [""])[0])
            for line in example.shown if line.strip() != "..." and mask(line, workdir) not in have]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    p.add_argument("--workdir", type=Path, help="run in this folder (default: a new temporary one)")
    p.add_argument("--only", help="run only the commands this regular expression finds")
    p.add_argument("--skip", help="skip the commands this regular expression finds")
    p.add_argument("--printed", action="store_true",
                   help="under a drifted command, all it printed (to paste into the README)")
    args = p.parse_args(argv)
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="readme-"))).resolve()
    (workdir / "docs").mkdir(parents=True, exist_ok=True)  # figures the examples write
    if not (workdir / "benchmarks").exists():  # `python benchmarks/...` as from the repo root
        (workdir / "benchmarks").symlink_to(ROOT / "benchmarks")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(ROOT / "src"), COLUMNS="200")
    print(f"README examples of {args.readme}, run in {workdir}", flush=True)
    drifted = 0
    for example in examples(args.readme):
        where = f"README.md:{example.line}"
        why = skip_reason(example.command)
        if why is None and args.only and not re.search(args.only, example.command):
            why = "not named by --only"
        if why is None and args.skip and re.search(args.skip, example.command):
            why = "named by --skip"
        if why is not None:
            print(f"skip  {where}  $ {example.command}  ({why})", flush=True)
            continue
        code, seconds, printed = run(example, workdir, env)
        lost = drift(example, printed, workdir)
        drifted += len(lost)
        print(f"{'DRIFT' if lost else 'ok':<5} {where}  $ {example.command}  (exit {code}, "
              f"{seconds:.0f} s, {len(example.shown) - len(lost)}/{len(example.shown)} lines)")
        for shown, closest in lost:
            print(f"        README: {shown.strip()}\n        printed ~ {closest}")
        if lost and args.printed:
            print("\n".join(f"        | {line}" for line in printed))
        sys.stdout.flush()
    print(f"{drifted} line(s) drifted" if drifted else "every shown line matches")
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main())
