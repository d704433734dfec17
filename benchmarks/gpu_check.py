"""The GPU check (issue 13): CUDA tests, speed table, timed training, predict and ONNX export.

    python benchmarks/gpu_check.py --out DIR [--device cuda|cpu] [--quick]

Every part runs in its own subprocesses under a time box (``TIME_BOXES``: 7.75 minutes in all on a
GPU), so one that fails or hangs still leaves the others' results. DIR gets ``report.json``,
``report.md`` and one ``<part>.log`` per part.
``--device cpu --quick`` uses tiny inputs and finishes in about a minute on two CPU cores (a test
runs it so the script cannot rot); the targets are for one H100/H200-class GPU at 16x160x160.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MICT = str(BIN / "mict") if (BIN / "mict").is_file() else "mict"
FULL_MODELS = ["mict_resnet18", "mict_resnet34", "resnet3d_18", "r3d_18", "r2plus1d_18"]
TARGET_INPUT = "16x160x160"
TAIL_LINES = 30
# Seconds per part: the full check stays under 8 minutes on one GPU; quick boxes are generous
# for slow CPUs (a 2-core Xeon with a busy host took 60 s for the quick predict and export).
TIME_BOXES = {
    False: {"cuda-tests": 75, f"benchmark-{TARGET_INPUT}": 120, "benchmark-16x112x112": 60,
            "compile": 60, "train": 100, "predict-export": 50},
    True: {"cuda-tests": 90, "benchmark-4x32x32": 90, "compile": 40, "train": 120,
           "predict-export": 180},
}


@dataclass
class Part:
    """One time-boxed part: its status, time, log and what it measured."""

    name: str
    status: str = "ok"  # ok, failed, timeout, skipped
    seconds: float = 0.0
    reason: str = ""
    results: dict[str, Any] = field(default_factory=dict)
    tail: str = ""


@dataclass
class Ctx:
    """The run's settings, shared by the parts."""

    out: Path
    device: str
    quick: bool
    deadline: float = 0.0

    @property
    def inputs(self) -> list[str]:
        return ["4x32x32"] if self.quick else [TARGET_INPUT, "16x112x112"]


class StepFailed(Exception):
    """A command of a part failed or ran out of time."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def run_step(ctx: Ctx, log: Path, argv: list[str]) -> str:
    """Run one command of a part, appending its output to ``log``; return that output."""
    left = ctx.deadline - time.monotonic()
    if left <= 0:
        raise StepFailed("timeout", "no time left in the part's time box")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ {' '.join(argv)}\n")
        f.flush()
        try:
            proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=left)
        except subprocess.TimeoutExpired as err:
            f.write(_text(err.output) + f"\n[timed out after {left:.0f} s]\n")
            raise StepFailed("timeout", f"{argv[1]} ran past the time box") from None
        f.write(proc.stdout + f"[exit {proc.returncode}]\n")
    if proc.returncode != 0:
        raise StepFailed("failed", f"{' '.join(argv[:3])} exited with {proc.returncode}")
    return proc.stdout


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else out or ""


def run_part(ctx: Ctx, name: str, timeout: float,
             body: Callable[[Ctx, Path], dict[str, Any]]) -> Part:
    """Run ``body`` within ``timeout`` seconds and record its status, results and log tail."""
    log = ctx.out / f"{name}.log"
    log.write_text("", encoding="utf-8")
    part = Part(name)
    ctx.deadline = time.monotonic() + timeout
    start = time.monotonic()
    try:
        part.results = body(ctx, log)
        part.status = part.results.pop("status", "ok")
        part.reason = part.results.pop("reason", "")
    except StepFailed as err:
        part.status, part.reason = err.status, str(err)
    except Exception as err:  # a bug in the report code must not hide the other parts
        part.status, part.reason = "failed", f"{type(err).__name__}: {err}"
    part.seconds = round(time.monotonic() - start, 1)
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    part.tail = "\n".join(lines[-TAIL_LINES:])
    print(f"{name}: {part.status} in {part.seconds} s {part.reason}".rstrip(), flush=True)
    return part


# --- the parts -------------------------------------------------------------------------------

def cuda_tests(ctx: Ctx, log: Path) -> dict[str, Any]:
    """``pytest -m cuda``: counts of passed/skipped/failed tests (quick: of the CUDA test
    module alone, without collecting the whole suite)."""
    where = [str(ROOT / "tests" / "engine" / "test_cuda.py")] if ctx.quick else []
    try:
        out = run_step(ctx, log, [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p",
                                  "no:cacheprovider", *where])
    except StepFailed:
        counts = _pytest_counts(log.read_text(encoding="utf-8"))
        return {"status": "failed", "reason": f"pytest: {_summary(counts)}", "counts": counts}
    counts = _pytest_counts(out)
    return {"counts": counts, "summary": _summary(counts)}


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {word}" for word, n in counts.items()) or "no pytest summary"


def _pytest_counts(out: str) -> dict[str, int]:
    """The counts of pytest's last summary line (``3 passed, 5 skipped, 40 deselected in 2s``)."""
    summaries = [line for line in out.splitlines() if re.search(r"\d+ \w+.* in [\d.]+s", line)]
    found = re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", summaries[-1]
                       if summaries else "")
    return {word: int(count) for count, word in found}


def benchmark(ctx: Ctx, log: Path, size: str) -> dict[str, Any]:
    """``mict benchmark`` at ``size``: frames/s per model, dtype, layout and batch."""
    report = ctx.out / f"benchmark-{size}.json"
    argv = [MICT, "benchmark", "--device", ctx.device, "--input", size, "--json", str(report)]
    if ctx.quick:
        argv += ["--models", "mict_resnet18", "resnet3d_18", "--batch-size", "1",
                 "--repeats", "1", "--no-memory", "--dtype", "fp32"]
    else:
        argv += ["--dtype", "fp32", "bf16", "--repeats", "2", "--channels-last"]
        if size == TARGET_INPUT:  # the published comparison: every model, batch and layout
            argv += ["both", "--models", *FULL_MODELS, "--batch-size", "1", "8", "64"]
        else:
            argv += ["on", "--models", "mict_resnet18", "resnet3d_18", "r2plus1d_18",
                     "--batch-size", "1", "64"]
    run_step(ctx, log, argv)
    data = json.loads(report.read_text(encoding="utf-8"))
    runs = [{k: r.get(k) for k in ("model", "dtype", "channels_last", "batch", "frames_per_s",
                                   "fraction_of_peak", "error")} for r in data["runs"]]
    return {"input": size, "runs": runs, "memory": data.get("memory", []),
            "machine": data.get("machine", {})}


def compiled(ctx: Ctx, log: Path) -> dict[str, Any]:
    """``torch.compile(mode="reduce-overhead")`` (CUDA graphs) vs eager, CUDA only."""
    if ctx.device != "cuda":
        return {"status": "skipped", "reason": "CUDA graphs need a GPU"}
    result = ctx.out / "compile.json"
    run_step(ctx, log, [sys.executable, __file__, "--helper", "compile", str(result),
                        "--input", TARGET_INPUT])
    return json.loads(result.read_text(encoding="utf-8"))


def training(ctx: Ctx, log: Path) -> dict[str, Any]:
    """``mict synth`` then a timed ``mict train``: clips/s from metrics.csv."""
    data, run = ctx.out / "synth", ctx.out / "train-run"
    if ctx.quick:
        synth = ["--classes", "4", "--groups", "3", "--clips-per-group", "2", "--size", "32x32"]
        train = ["--epochs", "1"]
    else:
        synth = ["--classes", "8", "--size", "171x160"]
        workers = str(os.cpu_count() or 4)
        train = ["--epochs", "3", "--crop-size", "160", "--data.resize", "171", "160",
                 "--batch-size", "64", "--workers", workers]
    run_step(ctx, log, [MICT, "synth", str(data), *synth])
    with gpu_utilisation(ctx, log.with_suffix(".gpu.csv")) as samples:
        run_step(ctx, log, [MICT, "train", "--preset", "demo-quick", "--dataset", "ucf101",
                            "--root", str(data / "UCF-101"), "--split", "1", "--out", str(run),
                            "--device", ctx.device, "--no-progress", *train])
    with (run / "metrics.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rates = [float(r["clips_per_s"]) for r in rows if r["clips_per_s"]]
    waits = [float(r["data_wait"]) for r in rows if r.get("data_wait")]
    busy = 100 * (1 - min(waits)) if waits else None  # in the best epoch (the first warms up)
    return {"epochs": len(rows), "clips_per_s_by_epoch": rates,
            "clips_per_s": max(rates) if rates else None, "crop": 32 if ctx.quick else 160,
            "data_wait_by_epoch": waits, "loader_busy_percent": busy,
            "gpu_utilisation_percent": _mean(samples()), "checkpoint": str(run / "best.pt")}


@contextlib.contextmanager
def gpu_utilisation(ctx: Ctx, path: Path) -> Iterator[Callable[[], list[float]]]:
    """Samples ``nvidia-smi``'s GPU utilisation every 0.5 s while the block runs (on CUDA where
    ``nvidia-smi`` exists; otherwise no samples)."""
    smi = shutil.which("nvidia-smi")
    if ctx.device != "cuda" or smi is None:
        yield list
        return
    with path.open("w", encoding="utf-8") as f:
        proc = subprocess.Popen([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,"
                                 "nounits", "-lms", "500"], stdout=f, stderr=subprocess.DEVNULL)
        try:
            yield lambda: [float(v) for v in path.read_text().split()
                           if v.replace(".", "").isdigit()]
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def predict_export(ctx: Ctx, log: Path) -> dict[str, Any]:
    """``mict predict`` on a 300-frame video, ``mict export`` to ONNX and its latency."""
    ckpt = ctx.out / "train-run" / "best.pt"
    if not ckpt.is_file():
        return {"status": "failed", "reason": "no checkpoint: the training part did not finish"}
    videos = ctx.out / "video300"
    size = "32x32" if ctx.quick else "320x240"
    run_step(ctx, log, [MICT, "synth", str(videos), "--classes", "2", "--groups", "3",
                        "--clips-per-group", "1", "--frames", "300", "--size", size])
    video = sorted((videos / "UCF-101").rglob("*.avi"))[0]
    start = time.monotonic()
    run_step(ctx, log, [MICT, "predict", str(video), "--checkpoint", str(ckpt), "--json",
                        "--device", ctx.device])
    predict_s = time.monotonic() - start
    from mictnet.engine.checkpoint import checkpoint_meta, load_checkpoint

    frames, height, width = checkpoint_meta(load_checkpoint(ckpt)).clip.input_size
    onnx = ctx.out / "model.onnx"
    run_step(ctx, log, [MICT, "export", "--checkpoint", str(ckpt), "--out", str(onnx),
                        "--overwrite"])
    result = ctx.out / "onnx.json"
    run_step(ctx, log, [sys.executable, __file__, "--helper", "onnx", str(result),
                        "--model", str(onnx), "--input", f"{frames}x{height}x{width}"])
    return {"video_frames": 300, "predict_wall_s": round(predict_s, 2),
            **json.loads(result.read_text(encoding="utf-8"))}


# --- helpers run in a child process ----------------------------------------------------------

def _median_seconds(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def helper_compile(out: Path, size: str) -> None:
    """Eager vs ``torch.compile(mode="reduce-overhead")`` frames/s, batch 1, bf16."""
    import torch

    from mictnet.models.registry import build_model

    frames, height, width = (int(v) for v in size.split("x"))
    clip = torch.randn(1, 3, frames, height, width, device="cuda", dtype=torch.bfloat16)
    rows = []
    for name in ("mict_resnet18", "resnet3d_18"):
        model = build_model(name, 101).cuda().eval().to(torch.bfloat16)
        fast = torch.compile(model, mode="reduce-overhead")
        with torch.inference_mode():
            for label, fn in (("eager", model), ("compile-reduce-overhead", fast)):
                for _ in range(5):
                    fn(clip)
                torch.cuda.synchronize()
                secs = _median_seconds(lambda fn=fn: fn(clip), 30, torch.cuda.synchronize)
                rows.append({"model": name, "mode": label, "frames_per_s": frames / secs})
    out.write_text(json.dumps({"runs": rows}, indent=1), encoding="utf-8")


def helper_onnx(out: Path, model_path: str, size: str) -> None:
    """Median latency of one clip through onnxruntime (CUDA provider where available)."""
    import numpy as np
    import onnxruntime as ort

    available = ort.get_available_providers()
    provider = ("CUDAExecutionProvider" if "CUDAExecutionProvider" in available
                else "CPUExecutionProvider")
    session = ort.InferenceSession(model_path, providers=[provider])
    inp = session.get_inputs()[0]
    shape = [1, 3, *(int(v) for v in size.split("x"))]
    clip = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    session.run(None, {inp.name: clip})
    secs = _median_seconds(lambda: session.run(None, {inp.name: clip}), 10, lambda: None)
    out.write_text(json.dumps({"onnx_provider": provider, "onnx_input": shape,
                               "onnx_latency_ms": round(secs * 1000, 2)}), encoding="utf-8")


# --- report ----------------------------------------------------------------------------------

def machine(device: str) -> dict[str, Any]:
    """GPU name and driver (nvidia-smi), torch/CUDA versions, CPU capability."""
    import torch

    info: dict[str, Any] = {
        "device": device, "torch": torch.__version__, "cuda": torch.version.cuda,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "gpu": None, "driver": None,
    }
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True)
        first = smi.stdout.strip().splitlines()[:1]
        if smi.returncode == 0 and first:
            info["gpu"], info["driver"] = (s.strip() for s in first[0].split(",", 1))
    if info["gpu"] is None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _best(parts: dict[str, Part], model: str) -> float | None:
    bench = parts.get(f"benchmark-{TARGET_INPUT}")
    if bench is None or bench.status != "ok":
        return None
    rates = [r["frames_per_s"] for r in bench.results["runs"]
             if r["model"] == model and r["batch"] == 1 and r["frames_per_s"]]
    return max(rates) if rates else None


def targets(ctx: Ctx, parts: dict[str, Part]) -> list[dict[str, Any]]:
    """The issue's GPU targets, each PASS, FAIL or not measured (with why)."""
    why = ("quick mode: tiny inputs" if ctx.quick
           else "" if ctx.device == "cuda" else "targets are for a GPU")
    mict, r3d = _best(parts, "mict_resnet18"), _best(parts, "resnet3d_18")
    train = parts["train"].results if parts["train"].status == "ok" else {}
    rows = [
        ("MiCT-ResNet-18 batch-1 frames/s at 16x160x160", mict, 6000.0, "{:.0f}"),
        ("MiCT-ResNet-18 / resnet3d_18 at batch 1", mict / r3d if mict and r3d else None,
         2.5, "{:.2f}x"),
        ("training clips/s at 16x160x160", train.get("clips_per_s"), 320.0, "{:.1f}"),
        ("loader keeps the GPU busy (%)", train.get("loader_busy_percent"), 90.0, "{:.0f}"),
    ]
    out = []
    for name, value, target, fmt in rows:
        if why or value is None:
            reason = why or "its part did not finish"
            out.append({"target": name, "goal": target, "value": value,
                        "status": "not measured", "why": reason})
        else:
            out.append({"target": name, "goal": target, "value": value, "shown": fmt.format(value),
                        "status": "PASS" if value >= target else "FAIL", "why": ""})
    return out


def markdown(ctx: Ctx, info: dict[str, Any], parts: dict[str, Part],
             goals: list[dict[str, Any]]) -> str:
    """The human-readable report."""
    lines = [f"# GPU check ({'quick, ' if ctx.quick else ''}device {ctx.device})", "",
             f"Machine: GPU {info['gpu'] or 'none'}, driver {info['driver'] or '-'}, "
             f"torch {info['torch']}, CUDA {info['cuda'] or '-'}, CPU {info['cpu_capability']} "
             f"x{info['cpu_count']}, {info['platform']}", "",
             "| part | status | seconds | note |", "|---|---|---|---|"]
    lines += [f"| {p.name} | {p.status} | {p.seconds} | {p.reason or p.results.get('summary', '')}"
              " |" for p in parts.values()]
    lines += ["", "## Targets", "", "| target | goal | measured | status |", "|---|---|---|---|"]
    lines += [f"| {g['target']} | {g['goal']:g} | {g.get('shown', g['why'])} | {g['status']} |"
              for g in goals]
    for part in parts.values():
        if part.name.startswith("benchmark") and part.status == "ok":
            lines += ["", f"## Inference frames/s, {part.results['input']}", "",
                      "| model | dtype | channels-last | batch | frames/s | % of matmul peak |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {r['model']} | {r['dtype']} | {'on' if r['channels_last'] else 'off'} "
                      f"| {r['batch']} | {_num(r['frames_per_s'])} | "
                      f"{_num(100 * (r['fraction_of_peak'] or 0))} |"
                      for r in part.results["runs"]]
    lines += _extra_lines(parts)
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _extra_lines(parts: dict[str, Part]) -> list[str]:
    lines = ["", "## Other measurements", ""]
    if parts["compile"].status == "ok":
        lines += [f"- {r['model']} {r['mode']}: {r['frames_per_s']:.0f} frames/s (bf16, batch 1)"
                  for r in parts["compile"].results["runs"]]
    train = parts["train"].results
    if train:
        lines.append(f"- training: {_num(train.get('clips_per_s'))} clips/s (best epoch, crop "
                     f"{train.get('crop')}); time waiting for data per epoch: "
                     f"{train.get('data_wait_by_epoch')} (the loader kept the device busy "
                     f"{_num(train.get('loader_busy_percent'))}% of the best epoch); GPU "
                     f"utilisation {_num(train.get('gpu_utilisation_percent'))}% (nvidia-smi)")
    pe = parts["predict-export"].results
    if "onnx_latency_ms" in pe:
        lines.append(f"- predict on a 300-frame video: {pe['predict_wall_s']} s wall (with "
                     f"start-up); ONNX {pe['onnx_provider']} latency {pe['onnx_latency_ms']} ms "
                     f"per clip {pe['onnx_input']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=False, help="report folder")
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny inputs, seconds per part")
    ap.add_argument("--helper", nargs=2, metavar=("KIND", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--input", default=TARGET_INPUT, help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.helper:
        kind, out = args.helper
        if kind == "compile":
            helper_compile(Path(out), args.input)
        else:
            helper_onnx(Path(out), args.model, args.input)
        return 0
    if args.out is None:
        ap.error("--out is required")
    return run_check(Ctx(args.out, args.device, args.quick))


def run_check(ctx: Ctx) -> int:
    """Run every part, write report.json and report.md; exit 1 if a part failed."""
    ctx.out.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[str, Callable[[Ctx, Path], dict[str, Any]]]] = [("cuda-tests", cuda_tests)]
    plan += [(f"benchmark-{s}", lambda c, lg, s=s: benchmark(c, lg, s)) for s in ctx.inputs]
    plan += [("compile", compiled), ("train", training), ("predict-export", predict_export)]
    boxes = TIME_BOXES[ctx.quick]
    parts = {name: run_part(ctx, name, boxes[name], body) for name, body in plan}
    info = machine(ctx.device)
    goals = targets(ctx, parts)
    report = {"device": ctx.device, "quick": ctx.quick, "machine": info, "targets": goals,
              "parts": {p.name: p.__dict__ for p in parts.values()}}
    (ctx.out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    text = markdown(ctx, info, parts, goals)
    (ctx.out / "report.md").write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(p.status in ("ok", "skipped") for p in parts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
