"""The margin grid of the training-outcome tests (issue 18): each under every kernel setting this
CPU offers and several seeds, its measured value against its threshold.

A training-outcome test (``pytest -m outcome``) records what it measured through the ``outcome``
fixture of ``tests/conftest.py`` (a JUnit XML property ``outcome:NAME`` = ``"VALUE >= BOUND"``).
This script runs those tests once per (kernel setting, seed) — the seed through
``$MICTNET_TEST_SEED`` — and prints, for each outcome, the worst value over the grid and its
margin to the threshold. Exit code 1 when a test fails or a margin is below ``--margin``.

Kernel settings (the ones this CPU offers are chosen by default):

- ``native``: what PyTorch and oneDNN pick;
- ``avx512-core``: ``ONEDNN_MAX_CPU_ISA=AVX512_CORE`` (AVX-512 without bf16/AMX instructions),
  only where the CPU has AVX-512;
- ``avx2``: ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` (an AVX2-only CPU, a Zen 3);
- ``default``: ``ATEN_CPU_CAPABILITY=default`` (ATen's unvectorised kernels);
- ``sse41``: ``ONEDNN_MAX_CPU_ISA=SSE41``, where the CPU has no AVX-512 (a fourth kernel set).

    python benchmarks/test_margins.py [--settings native avx2 ...] [--seeds 0 1 2]
        [--jobs 1] [--margin 0.10] [-k EXPR] [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from mictnet.engine.precision import cpu_info

ROOT = Path(__file__).resolve().parents[1]
SETTINGS: dict[str, dict[str, str]] = {
    "native": {},
    "avx512-core": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default"},
    "sse41": {"ONEDNN_MAX_CPU_ISA": "SSE41"},
}
MARGIN = 0.10  # ten points of accuracy


def offered_settings() -> list[str]:
    """The kernel settings that differ on this CPU (four on every x86 CPU with AVX2)."""
    avx512 = "avx512f" in cpu_info()[1]
    return ["native", "avx512-core" if avx512 else "sse41", "avx2", "default"]


@dataclass
class Cell:
    """One pytest run of the outcome tests: a kernel setting and a seed."""

    setting: str
    seed: int
    seconds: float = 0.0
    values: dict[str, tuple[float, str, float]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    error: str = ""


def parse_junit(path: Path, cell: Cell) -> None:
    """The recorded outcomes (``outcome:NAME`` = ``"VALUE OP BOUND"``) and failures of a run."""
    for case in ET.parse(path).getroot().iter("testcase"):
        test = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
        for prop in case.iter("property"):
            name = prop.get("name", "")
            if name.startswith("outcome:"):
                value, op, bound = prop.get("value", "").split()
                cell.values[name.removeprefix("outcome:")] = (float(value), op, float(bound))
        if case.find("failure") is not None or case.find("error") is not None:
            cell.failed.append(test)


def run_cell(cell: Cell, select: str | None, scratch: Path) -> Cell:
    xml = scratch / f"{cell.setting}-{cell.seed}.xml"
    env = {**os.environ, **SETTINGS[cell.setting], "MICTNET_TEST_SEED": str(cell.seed),
           "TORCHINDUCTOR_CACHE_DIR": str(scratch / f"inductor-{cell.setting}")}
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "outcome", "-p", "no:cacheprovider",
           f"--junitxml={xml}", str(ROOT / "tests")]
    if select:
        cmd += ["-k", select]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    cell.seconds = time.monotonic() - start
    if xml.is_file():
        parse_junit(xml, cell)
    if proc.returncode not in (0, 1) or not cell.values:
        cell.error = (proc.stdout + proc.stderr)[-2000:]
    return cell


def summary_rows(cells: list[Cell], margin: float) -> list[dict]:
    """Per outcome: threshold, every value, the worst one and its margin."""
    names = sorted({name for cell in cells for name in cell.values})
    rows = []
    for name in names:
        got = [(c.setting, c.seed, *c.values[name]) for c in cells if name in c.values]
        op, bound = got[0][3], got[0][4]
        values = [g[2] for g in got]
        worst = min(values) if op == ">=" else max(values)
        slack = worst - bound if op == ">=" else bound - worst
        rows.append({"outcome": name, "threshold": f"{op} {bound:g}", "worst": worst,
                     "margin": slack, "ok": slack >= margin - 1e-9, "runs": len(got),
                     "values": {f"{s}/seed{k}": v for s, k, v, _, _ in got}})
    return rows


def format_table(rows: list[dict], settings: list[str], seeds: list[int]) -> str:
    columns = [f"{s}/seed{k}" for s in settings for k in seeds]
    width = max(len(r["outcome"]) for r in rows) if rows else 10
    head = f"{'outcome':<{width}}  {'threshold':>10}  " + "  ".join(
        f"{c:>{max(len(c), 6)}}" for c in columns) + f"  {'worst':>6}  {'margin':>6}"
    lines = [head]
    for r in rows:
        cells = "  ".join(f"{r['values'].get(c, float('nan')):>{max(len(c), 6)}.3f}"
                          for c in columns)
        lines.append(f"{r['outcome']:<{width}}  {r['threshold']:>10}  {cells}  "
                     f"{r['worst']:>6.3f}  {r['margin']:>+6.3f}{'' if r['ok'] else '  LOW'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS),
                        help=f"kernel settings (default for this CPU: {offered_settings()})")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1,
                        help="cells run at once (the single-thread tests gain from 2)")
    parser.add_argument("--margin", type=float, default=MARGIN,
                        help="the least margin each outcome must keep (default 0.10)")
    parser.add_argument("-k", dest="select", help="pytest -k expression: some tests only")
    parser.add_argument("--json", type=Path, help="write the grid and the summary here")
    args = parser.parse_args(argv)
    settings = args.settings or offered_settings()
    model, flags = cpu_info()
    print(f"cpu: {model} ({torch.backends.cpu.get_cpu_capability()} natively; "
          f"{'AMX' if 'amx_bf16' in flags else 'no AMX'}), torch {torch.__version__}; "
          f"settings {', '.join(settings)}; seeds {args.seeds}", flush=True)
    cells = [Cell(s, k) for s, k in itertools.product(settings, args.seeds)]
    with tempfile.TemporaryDirectory(prefix="mict-margins-") as scratch, \
            ThreadPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(run_cell, c, args.select, Path(scratch)) for c in cells]
        for job in tqdm(jobs, desc="outcome tests", unit="run"):
            cell = job.result()
            tqdm.write(f"{cell.setting}/seed{cell.seed}: {len(cell.values)} outcomes, "
                       f"{len(cell.failed)} failed, {cell.seconds:.0f} s")
    rows = summary_rows(cells, args.margin)
    print(format_table(rows, settings, args.seeds))
    failed = [f"{c.setting}/seed{c.seed}: {t}" for c in cells for t in c.failed]
    broken = [c for c in cells if c.error]
    for c in broken:
        print(f"\n{c.setting}/seed{c.seed} did not run cleanly:\n{c.error}")
    for line in failed:
        print(f"FAILED {line}")
    low = [r["outcome"] for r in rows if not r["ok"]]
    print(f"\n{len(rows)} outcomes over {len(cells)} runs; least margin "
          f"{min((r['margin'] for r in rows), default=float('nan')):+.3f} (wanted "
          f">= {args.margin:+.3f}); {len(low)} below it; {len(failed)} failed tests")
    if args.json:
        args.json.write_text(json.dumps({"cpu": model, "settings": settings,
                                         "seeds": args.seeds, "summary": rows,
                                         "cells": [asdict(c) for c in cells]}, indent=1))
    return 1 if low or failed or broken else 0


if __name__ == "__main__":
    sys.exit(main())
