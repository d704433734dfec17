"""The synthetic motion dataset: UCF-101 layout and split formats, determinism, readable videos,
time-reversed pairs, metadata, caching and ``mict synth``."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import decode_all_frames
from mictnet.data import build_dataset
from mictnet.data.synthetic import (
    MOTIONS,
    SynthConfig,
    clip_name,
    clip_seed,
    generate_dataset,
    held_out_groups,
    object_boxes,
    read_metadata,
    render_clip,
    render_clip_with_boxes,
    reversed_pairs,
)
from mictnet.tools import synth

CONFIG = SynthConfig(classes=8, groups=4, clips_per_group=2, frames=6, size=(40, 32), seed=3)
UCF_LINE = re.compile(r"(?P<cls>\w+)/v_(?P=cls)_g(?P<g>\d\d)_c(?P<c>\d\d)\.avi")
REAL_SPLITS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "ucf101" / "splits"
MOTION = {m.name: m for m in MOTIONS}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(out, CONFIG, progress=False)
    return out


def read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    assert data.endswith(b"\r\n"), f"{path.name}: last line must end with CRLF"
    lines = data.split(b"\r\n")[:-1]
    assert all(b"\n" not in line and b"\r" not in line for line in lines), path.name
    assert all(line and line == line.strip() for line in lines), f"{path.name}: blank/space"
    return [line.decode("ascii") for line in lines]


def file_hashes(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_layout_and_split_files_as_ucf101(dataset: Path) -> None:
    index = [line.split(" ") for line in read_lines(dataset / "ucfTrainTestlist" / "classInd.txt")]
    assert index == [[str(i), name] for i, name in enumerate(CONFIG.class_names, 1)]
    label_of = {name: int(i) for i, name in index}
    on_disk = {str(p.relative_to(dataset / "UCF-101"))
               for p in (dataset / "UCF-101").rglob("*.avi")}
    assert len(on_disk) == 8 * 4 * 2
    for split, held_out in enumerate(held_out_groups(CONFIG.groups), 1):
        train, test = set(), set()
        for line in read_lines(dataset / "ucfTrainTestlist" / f"trainlist0{split}.txt"):
            path, label = line.split(" ")
            match = UCF_LINE.fullmatch(path)
            assert match, line
            assert int(label) == label_of[match["cls"]]
            assert int(match["g"]) not in held_out
            train.add(path)
        for line in read_lines(dataset / "ucfTrainTestlist" / f"testlist0{split}.txt"):
            match = UCF_LINE.fullmatch(line)
            assert match, f"test lines carry no label: {line!r}"
            assert int(match["g"]) in held_out
            test.add(line)
        assert not train & test
        assert train | test == on_disk
        assert {UCF_LINE.fullmatch(p)["cls"] for p in test} == set(CONFIG.class_names)


@pytest.mark.skipif(not REAL_SPLITS.is_dir(), reason="official UCF-101 split files not present")
def test_split_lines_match_the_official_format(dataset: Path) -> None:
    for name in ("classInd.txt", "trainlist01.txt", "testlist01.txt"):
        real = read_lines(REAL_SPLITS / name)[0]
        ours = read_lines(dataset / "ucfTrainTestlist" / name)[0]
        pattern = r"\d+ \w+" if name == "classInd.txt" else UCF_LINE.pattern + (
            r" \d+" if name.startswith("train") else "")
        assert re.fullmatch(pattern, real) and re.fullmatch(pattern, ours), (real, ours)


def test_loads_through_the_ucf101_dataset(dataset: Path) -> None:
    options = {"frames": CONFIG.frames, "crop_size": 28, "resize": CONFIG.size, "max_stride": 1,
               "flip": CONFIG.flip_safe}
    train = build_dataset("ucf101", dataset / "UCF-101", split=2, train=True, **options)
    test = build_dataset("ucf101", dataset / "UCF-101", split=2, train=False, **options)
    assert train.classes == test.classes == CONFIG.class_names
    assert (len(train), len(test)) == (8 * 3 * 2, 8 * 1 * 2)
    for path, label in test.samples:
        assert "_g02_" in str(path) and CONFIG.class_names[label] in str(path)
    for ds in (train, test):
        clip, label = ds[5]
        assert clip.shape == (3, CONFIG.frames, 28, 28) and clip.dtype == torch.float32
        assert isinstance(label, int) and ds.samples[5][1] == label


def test_held_out_groups() -> None:
    assert held_out_groups(25) == [list(range(1, 8)), list(range(8, 15)), list(range(15, 22))]
    assert held_out_groups(4) == [[1], [2], [3]]
    for groups in range(3, 100):
        flat = sum(held_out_groups(groups), [])
        assert len(set(flat)) == len(flat) and max(flat) <= groups


def test_same_seed_same_bytes(dataset: Path, tmp_path: Path) -> None:
    generate_dataset(tmp_path / "again", CONFIG, progress=False)
    assert file_hashes(tmp_path / "again") == file_hashes(dataset)
    other = SynthConfig(**{**CONFIG.__dict__, "seed": 4, "classes": 2})
    generate_dataset(tmp_path / "other", other, progress=False)
    video = "UCF-101/ZoomIn/v_ZoomIn_g01_c01.avi"
    assert file_hashes(tmp_path / "other")[video] != file_hashes(dataset)[video]


def test_videos_decode_with_frames_and_size(dataset: Path) -> None:
    width, height = CONFIG.size
    for path in sorted((dataset / "UCF-101").rglob("*.avi"))[::5]:
        frames = decode_all_frames(path)
        assert len(frames) == CONFIG.frames, path.name
        assert frames[0].shape == (height, width, 3), path.name
        assert not np.array_equal(frames[0], frames[-1]), f"{path.name}: nothing moves"


def test_decoded_video_matches_the_rendered_clip(dataset: Path) -> None:
    label, name = 3, CONFIG.class_names[2]
    clip = render_clip(MOTION[name], clip_seed(CONFIG, label, 2, 1), CONFIG.frames, CONFIG.size)
    decoded = decode_all_frames(dataset / "UCF-101" / name / f"v_{name}_g02_c01.avi")
    mse = np.mean((decoded.astype(np.float64) - clip) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25  # MPEG-4 is lossy but close


def test_reversed_class_plays_the_same_clip_backwards() -> None:
    pairs = reversed_pairs()
    assert pairs == [("ZoomIn", "ZoomOut"), ("Rise", "Fall"),
                     ("RotateClockwise", "RotateAnticlockwise"), ("MoveRight", "MoveLeft")]
    for forward, backward in pairs:
        for seed in (0, 1):
            clip = render_clip(MOTION[forward], seed, 8, (48, 40))
            assert np.array_equal(render_clip(MOTION[backward], seed, 8, (48, 40)), clip[::-1])
            assert not np.array_equal(clip, clip[::-1]), forward


@pytest.mark.parametrize("motion", MOTIONS, ids=[m.name for m in MOTIONS])
def test_every_motion_renders_a_moving_clip(motion) -> None:
    clip = render_clip(motion, 7, 5, (36, 28))
    assert clip.shape == (5, 28, 36, 3) and clip.dtype == np.uint8
    assert all(not np.array_equal(a, b) for a, b in zip(clip, clip[1:], strict=False))
    assert np.array_equal(render_clip(motion, 7, 5, (36, 28)), clip)


def motion_centroids(clip: np.ndarray) -> np.ndarray:
    """Centre ``(x, y)`` of the change between consecutive frames, per frame pair."""
    diff = np.abs(np.diff(clip.astype(np.float64), axis=0)).sum(axis=-1)
    ys, xs = np.mgrid[: clip.shape[1], : clip.shape[2]]
    weight = diff.sum(axis=(1, 2))
    return np.stack([(diff * xs).sum(axis=(1, 2)) / weight,
                     (diff * ys).sum(axis=(1, 2)) / weight], axis=1)


@pytest.mark.parametrize(("name", "axis", "sign"), [
    ("Rise", 1, -1), ("Fall", 1, 1), ("MoveRight", 0, 1), ("MoveLeft", 0, -1)])
def test_moving_classes_move_the_named_way_on_screen(name: str, axis: int, sign: int) -> None:
    for seed in range(3):
        path = motion_centroids(render_clip(MOTION[name], seed, 10, (64, 64)))[:, axis]
        assert sign * (path[-1] - path[0]) > 8, (name, seed, path)


@pytest.mark.parametrize(("name", "sign"), [("RotateClockwise", 1), ("RotateAnticlockwise", -1)])
def test_rotating_classes_turn_the_named_way_on_screen(name: str, sign: int) -> None:
    for seed in range(3):
        steps = np.diff(motion_centroids(render_clip(MOTION[name], seed, 10, (64, 64))), axis=0)
        turn = steps[:-1, 0] * steps[1:, 1] - steps[:-1, 1] * steps[1:, 0]  # > 0: clockwise
        assert sign * turn.sum() > 0 and np.mean(sign * turn > 0) > 0.7, (name, seed, turn)


def test_trajectories_mean_what_their_names_say() -> None:
    rng_seed, u = 5, np.linspace(0, 1, 12)
    zoom = MOTION["ZoomIn"].trajectory(np.random.default_rng(rng_seed), u)
    assert np.all(np.diff(zoom.radius) > 0) and zoom.radius[-1] / zoom.radius[0] > 2
    turn = MOTION["RotateClockwise"].trajectory(np.random.default_rng(rng_seed), u)
    assert np.all(np.diff(turn.angle) > 0)  # growing angle = clockwise with y pointing down
    assert np.ptp(turn.x) > 0.3 and np.ptp(turn.y) > 0.3  # about a pivot outside the object


def test_metadata_and_flip_safe_classes(dataset: Path) -> None:
    meta = read_metadata(dataset)
    assert meta["complete"] and meta["classes"] == CONFIG.class_names
    assert meta["config"]["size"] == list(CONFIG.size) and meta["config"]["seed"] == CONFIG.seed
    flip_safe = set(meta["flip_safe"])
    assert {"ZoomIn", "ZoomOut", "Rise", "Fall"} <= flip_safe
    assert not flip_safe & {"MoveLeft", "MoveRight", "RotateClockwise", "RotateAnticlockwise"}
    assert meta["reversed_pairs"] == [list(p) for p in reversed_pairs(CONFIG.motions)]
    assert meta["held_out_groups"] == held_out_groups(CONFIG.groups)


def test_complete_dataset_is_reused_and_other_config_replaces_it(tmp_path: Path) -> None:
    small = SynthConfig(classes=2, groups=3, clips_per_group=1, frames=3, size=(32, 32))
    videos = generate_dataset(tmp_path, small, progress=False)
    assert videos == tmp_path / "UCF-101"
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    generate_dataset(tmp_path, small, progress=False)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == stamps
    (videos / "Rise").mkdir()  # a stray folder does not matter; a missing video does
    (videos / "ZoomIn" / "v_ZoomIn_g01_c01.avi").unlink()
    generate_dataset(tmp_path, small, progress=False)
    assert (videos / "ZoomIn" / "v_ZoomIn_g01_c01.avi").is_file()
    bigger = SynthConfig(classes=3, groups=3, clips_per_group=1, frames=3, size=(32, 32))
    generate_dataset(tmp_path, bigger, progress=False)
    assert read_metadata(tmp_path)["classes"] == ["ZoomIn", "ZoomOut", "Rise"]
    assert len(list((videos / "Rise").glob("*.avi"))) == 3
    assert len(list(videos.rglob("*.avi"))) == 9


def test_class_offset_picks_later_motions_and_seeds_follow_the_motion() -> None:
    target = SynthConfig(classes=3, class_offset=2, groups=4, clips_per_group=2, seed=3)
    assert target.class_names == ["Rise", "Fall", "RotateClockwise"]
    assert SynthConfig(classes=4, class_offset=len(MOTIONS) - 4).class_names == [
        m.name for m in MOTIONS[-4:]]
    # label 1 of the target is label 3 of the source: the same motion, so the same clips ...
    assert clip_seed(target, 1, 2, 1) == clip_seed(CONFIG, 3, 2, 1)
    # ... unless the seed differs: then every clip is new
    other = SynthConfig(classes=3, class_offset=2, groups=4, clips_per_group=2, seed=4)
    assert clip_seed(other, 1, 2, 1) != clip_seed(CONFIG, 3, 2, 1)
    assert clip_seed(SynthConfig(classes=2, seed=3), 2, 1, 1) == clip_seed(CONFIG, 2, 1, 1)


def test_a_target_with_a_class_offset_and_another_seed_shares_no_clip(dataset: Path,
                                                                      tmp_path: Path) -> None:
    same = SynthConfig(**{**CONFIG.__dict__, "classes": 2, "class_offset": 2})
    videos = generate_dataset(tmp_path / "same", same, progress=False)
    assert sorted(p.name for p in videos.iterdir()) == ["Fall", "Rise"]
    source = file_hashes(dataset)
    assert {k: v for k, v in file_hashes(tmp_path / "same").items()
            if k.endswith(".avi")} == {k: v for k, v in source.items()
                                       if k.startswith(("UCF-101/Rise/", "UCF-101/Fall/"))}
    assert read_metadata(tmp_path / "same")["classes"] == ["Rise", "Fall"]
    new = SynthConfig(**{**same.__dict__, "seed": 4})
    generate_dataset(tmp_path / "same", new, progress=False)  # another config: replaced
    assert read_metadata(tmp_path / "same")["config"]["seed"] == 4
    assert not set(file_hashes(tmp_path / "same").values()) & set(source.values())


def test_refuses_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "UCF-101" / "ApplyEyeMakeup").mkdir(parents=True)
    with pytest.raises(ValueError, match="not a synthetic dataset"):
        generate_dataset(tmp_path, CONFIG, progress=False)
    assert (tmp_path / "UCF-101" / "ApplyEyeMakeup").is_dir()


def test_unreadable_metadata_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "synth.json").write_text("{not json")
    with pytest.raises(ValueError, match="synth.json"):
        read_metadata(tmp_path)


@pytest.mark.parametrize("bad", [
    {"classes": 1}, {"classes": len(MOTIONS) + 1}, {"groups": 2}, {"groups": 100},
    {"clips_per_group": 0}, {"frames": 1}, {"size": (8, 64)}, {"size": (65, 64)},
    {"size": (64, 64, 3)}, {"class_offset": -1}, {"class_offset": len(MOTIONS) - 1},
    {"classes": 4, "class_offset": len(MOTIONS) - 3}])
def test_bad_config_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        SynthConfig(**bad)


def test_mict_synth_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    synth.register(parser.add_subparsers())
    args = parser.parse_args(["synth", str(tmp_path), "--classes", "4", "--groups", "3",
                              "--clips-per-group", "2", "--frames", "4", "--size", "40x32",
                              "--seed", "1"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "4 classes x 3 groups x 2 clips = 24 clips" in out
    assert "split 1: 16 train / 8 test" in out
    meta = json.loads((tmp_path / "synth.json").read_text())
    assert meta["config"] == {"classes": 4, "groups": 3, "clips_per_group": 2, "frames": 4,
                              "size": [40, 32], "seed": 1, "class_offset": 0}
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", str(tmp_path), "--size", "40by32"])
    args = parser.parse_args(["synth", str(tmp_path / "t"), "--classes", "4", "--class-offset",
                              str(len(MOTIONS) - 4), "--groups", "3", "--clips-per-group", "1",
                              "--frames", "4", "--size", "32x32", "--seed", "2"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert f"classes: {', '.join(m.name for m in MOTIONS[-4:])}" in out
    assert read_metadata(tmp_path / "t")["config"]["class_offset"] == len(MOTIONS) - 4


def test_synth_json_holds_the_moving_objects_box_in_every_frame(dataset: Path) -> None:
    meta = read_metadata(dataset)
    for label, motion in enumerate(CONFIG.motions, 1):
        name = clip_name(motion.name, 2, 1)
        clip, boxes = render_clip_with_boxes(motion, clip_seed(CONFIG, label, 2, 1),
                                             CONFIG.frames, CONFIG.size)
        assert np.array_equal(object_boxes(meta, name), boxes)
        assert boxes.shape == (CONFIG.frames, 4)
        assert np.all(boxes[:, 2] > boxes[:, 0]) and np.all(boxes[:, 3] > boxes[:, 1])
        assert np.all(boxes[:, 2] <= CONFIG.size[0]) and np.all(boxes[:, 3] <= CONFIG.size[1])
    rise = object_boxes(meta, clip_name("Rise", 1, 1))
    assert rise[-1, 1] < rise[0, 1]  # up the frame
    zoom = object_boxes(meta, clip_name("ZoomIn", 1, 1))
    area = (zoom[:, 2] - zoom[:, 0]) * (zoom[:, 3] - zoom[:, 1])
    assert area[-1] > 2 * area[0]
    # a time-reversed class: the same clip backwards, so the same boxes backwards
    seed = clip_seed(CONFIG, 3, 1, 1)
    _, forward = render_clip_with_boxes(MOTIONS[2], seed, 6, CONFIG.size)
    _, backward = render_clip_with_boxes(MOTIONS[3], seed, 6, CONFIG.size)
    assert np.array_equal(forward[::-1], backward)
    with pytest.raises(ValueError, match="no clip"):
        object_boxes(meta, "Rise/v_Rise_g99_c01.avi")


def test_a_synth_json_without_boxes_is_regenerated(tmp_path: Path) -> None:
    small = SynthConfig(classes=2, groups=3, clips_per_group=1, frames=3, size=(32, 32))
    generate_dataset(tmp_path, small, progress=False)
    meta = read_metadata(tmp_path)
    old = {k: v for k, v in meta.items() if k != "objects"}  # as written before boxes
    (tmp_path / "synth.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="no object boxes"):
        object_boxes(old, clip_name("ZoomIn", 1, 1))
    generate_dataset(tmp_path, small, progress=False)
    assert read_metadata(tmp_path) == meta
