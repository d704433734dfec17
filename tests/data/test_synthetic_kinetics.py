"""``mict synth --layout kinetics``: the synthetic clips as a Kinetics tree that the Kinetics
reader takes as it takes Kinetics itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from mictnet.cli import main
from mictnet.data.kinetics import kinetics_list
from mictnet.data.synthetic import SynthConfig
from mictnet.data.synthetic_kinetics import generate_kinetics_layout, kinetics_class_name

CONFIG = SynthConfig(classes=3, groups=9, clips_per_group=1, frames=4, size=(16, 16))


def test_class_names_in_kinetics_words() -> None:
    assert [kinetics_class_name(n) for n in ("ZoomIn", "Rise", "RotateClockwise")] == [
        "zoom in", "rise", "rotate clockwise"]


def test_the_reader_finds_every_clip_with_its_label(tmp_path: Path) -> None:
    root = generate_kinetics_layout(tmp_path / "k400", CONFIG, progress=False)
    train, val, test = (kinetics_list(root, split) for split in ("train", "val", "test"))
    # split 1 holds out 3 of 9 groups: one for val, the last two for the unlabelled test
    assert (len(train.samples), len(val.samples), len(test.samples)) == (18, 3, 6)
    assert not (train.missing or val.missing or test.missing)
    assert train.classes == val.classes == ["rise", "zoom in", "zoom out"]
    assert (train.labelled, val.labelled, test.labelled) == (True, True, False)
    for path, label in train.samples + val.samples:
        assert Path(path).parent.name == train.classes[label]  # class folder = CSV label
    assert all(Path(p).parent.name == "test" for p, _ in test.samples)


def test_same_seed_same_tree_and_a_foreign_folder_is_refused(tmp_path: Path) -> None:
    a = generate_kinetics_layout(tmp_path / "a", CONFIG, progress=False)
    b = generate_kinetics_layout(tmp_path / "b", CONFIG, progress=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.avi"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.avi"))
    assert generate_kinetics_layout(a, CONFIG, progress=False) == a  # its own tree: replaced
    assert sorted(p.relative_to(a) for p in a.rglob("*.avi")) == files
    (tmp_path / "mine" / "annotations").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a synthetic Kinetics tree"):
        generate_kinetics_layout(tmp_path / "mine", CONFIG, progress=False)


def test_the_command_then_mict_check(tmp_path: Path, capsys) -> None:
    out = tmp_path / "k400"
    assert main(["synth", str(out), "--layout", "kinetics", "--classes", "3", "--groups", "9",
                 "--clips-per-group", "1", "--frames", "4", "--size", "16x16"]) == 0
    assert "train 18, val 3, test 6 (unlabelled" in capsys.readouterr().out
    assert main(["check", "--dataset", "kinetics", "--root", str(out)]) == 0
    assert "OK: no problems found" in capsys.readouterr().out
