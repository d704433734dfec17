"""Learning-rate schedules: the step schedule of the published recipes."""

from __future__ import annotations

import pytest

from mictnet.engine.presets import preset
from mictnet.engine.schedule import LRFactor


def test_step_schedule_divides_after_milestones() -> None:
    cfg = preset("r3d18-ucf101").schedule
    factor = LRFactor(cfg, steps_per_epoch=10)
    assert factor(0) == 1.0 and factor(399) == 1.0
    assert factor(400) == pytest.approx(0.1) and factor(799) == pytest.approx(0.1)
    assert factor(800) == pytest.approx(0.01)
