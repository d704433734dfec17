"""``mict demo --quick`` end to end: dataset generated and cached, training, evaluation, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from mictnet.cli import main
from mictnet.engine.precision import resolve_amp
from mictnet.engine.runlog import read_metrics_csv
from mictnet.tools.demo import QUICK, prepare_dataset

pytestmark = pytest.mark.slow  # trains models


@pytest.mark.outcome
def test_demo_quick(tmp_path: Path, capsys, outcome_seed: int, outcome) -> None:
    out, data = tmp_path / "demo", tmp_path / "data"
    assert main(["demo", "--quick", "--out", str(out), "--data", str(data),
                 "--no-progress", "--seed", str(outcome_seed)]) == 0
    text = capsys.readouterr().out
    assert "(generated;" in text
    # the recipe follows what this CPU (and its kernel caps) runs natively: CI runs this test
    # under the AVX2 cap on every kind, where it must train in fp32
    native_bf16 = resolve_amp("auto", torch.device("cpu")) == torch.bfloat16
    assert ("precision: cpu" in text) and (("no native bf16" in text) != native_bf16)
    top1 = float(re.search(r"top-1 ([\d.]+)%", text.split("synthetic test split")[1]).group(1))
    # 4 classes, two time-reversed pairs: chance is 25%, one frame at a time 50% at best
    outcome("demo --quick top-1", top1 / 100, at_least=0.6)
    run = out / "run-quick"
    report = json.loads((run / "eval-split1" / "report.json").read_text())
    assert abs(100 * report["top1"] - top1) <= 0.05  # the printed figure is the report's
    for path in (run / "last.pt", run / "curves.png", run / "eval-split1" / "confusion.png"):
        assert path.is_file() and str(path) in text
    assert "mict train --preset mict18-ucf101" in text
    rows = read_metrics_csv(run / "metrics.csv")
    assert report["top1"] == pytest.approx(rows[-1]["test_top1"])  # the final model's figure
    # the dataset is cached: asking again reuses it
    videos, reused = prepare_dataset(data / "quick", QUICK.dataset, progress=False)
    assert reused and videos == data / "quick" / "UCF-101"
