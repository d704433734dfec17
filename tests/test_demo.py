"""``mict demo --quick`` end to end: dataset generated and cached, training, evaluation, report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mictnet.cli import main
from mictnet.engine.runlog import read_metrics_csv
from mictnet.tools.demo import QUICK, prepare_dataset

pytestmark = pytest.mark.slow  # trains models


def test_demo_quick(tmp_path: Path, capsys) -> None:
    out, data = tmp_path / "demo", tmp_path / "data"
    assert main(["demo", "--quick", "--out", str(out), "--data", str(data),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "(generated;" in text
    top1 = float(re.search(r"top-1 ([\d.]+)%", text.split("synthetic test split")[1]).group(1))
    assert top1 >= 50.0  # 4 classes: chance is 25%
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
