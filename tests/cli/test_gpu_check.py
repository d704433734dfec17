"""``benchmarks/gpu_check.py --device cpu --quick`` runs end to end, so the GPU check cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"

pytestmark = pytest.mark.slow  # trains a model


def test_quick_cpu_check_writes_its_report(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    parts = report["parts"]
    assert set(parts) == {"cuda-tests", "benchmark-4x32x32", "compile", "train",
                          "predict-export"}
    for name, part in parts.items():
        assert part["status"] in ("ok", "skipped", "failed", "timeout"), name
        assert (tmp_path / f"{name}.log").is_file()
    bench = parts["benchmark-4x32x32"]
    assert bench["status"] == "ok"
    rates = {r["model"]: r["frames_per_s"] for r in bench["results"]["runs"]}
    assert set(rates) == {"mict_resnet18", "resnet3d_18"}
    assert all(rate > 0 for rate in rates.values())
    assert parts["compile"]["status"] == "skipped"  # CUDA graphs only on a GPU
    train = parts["train"]["results"]
    assert train["clips_per_s"] > 0 and 0 < train["loader_busy_percent"] <= 100
    assert train["gpu_utilisation_percent"] is None  # no nvidia-smi samples on the CPU
    assert all(t["status"] == "not measured" for t in report["targets"])
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| benchmark-4x32x32 | ok |" in text and "mict_resnet18 | fp32" in text
