"""The transfer study's configuration in Python (:class:`mictnet.engine.transfer.StudyConfig`):
the same values as its flags, checked when it is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from mictnet.engine.transfer import StudyConfig, source_config, target_config

ROOTS = {"source_root": "/data/K400", "target_root": "/data/UCF-101"}


def test_pretrained_none_means_from_scratch_as_on_the_command_line() -> None:
    study = StudyConfig(**ROOTS, recipe="demo", pretrained="none", models=["resnet2d_18"])
    assert source_config(study, "resnet2d_18").model.pretrained is None
    assert target_config(study, "resnet2d_18", "direct", 1, 0).model.pretrained is None
    assert StudyConfig(**ROOTS, pretrained="w.pt").pretrained == str(Path("w.pt").resolve())
    recipe_start = StudyConfig(**ROOTS)
    assert source_config(recipe_start, "mict_resnet18").model.pretrained == "imagenet"


@pytest.mark.parametrize(("change", "message"), [
    ({"source_root": None}, "needs --source-root"),
    ({"models": []}, "--models: give at least one"),
    ({"models": ["resnet2d_18"]}, "no published transfer recipe for resnet2d_18"),
])
def test_a_study_that_cannot_run_is_refused_when_made(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StudyConfig(**{**ROOTS, **change})
