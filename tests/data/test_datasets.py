"""Datasets on small generated video trees: items, labels, clip modes, seeding, bad input."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bad_videos import decodable_frames, png_as_video, truncated_faststart_mp4
from mictnet.data import (
    HMDB51,
    UCF101,
    SplitError,
    VideoError,
    VideoFolder,
    VideoList,
    build_dataset,
    eval_transform,
    read_clip,
)
from mictnet.engine.batching import SeededItems
from mictnet.engine.rng import item_seed

SMALL = {"frames": 8, "crop_size": 32, "resize": (64, 48)}
CLASSES = ["ApplyEyeMakeup", "HandstandPushups", "YoYo"]


@pytest.fixture
def ucf(tmp_path, make_video):
    """A UCF-101-like tree: 3 classes x 3 groups, CRLF split files beside the video root."""
    root, splits = tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_bytes(
        "".join(f"{i} {c}\r\n" for i, c in enumerate(CLASSES, 1)).encode())
    lengths = iter([24, 30, 12, 40, 24, 20, 24, 28, 10])
    for split in (1, 2, 3):
        train, test = [], []
        for label, name in enumerate(CLASSES, 1):
            spelled = "HandStandPushups" if name == "HandstandPushups" else name
            for group in (1, 2, 3):
                rel = f"{name}/v_{spelled}_g{group:02d}_c01.avi"
                (test if group == split else train).append((rel, label))
                if split == 1:
                    make_video(root / rel, next(lengths))
        (splits / f"trainlist0{split}.txt").write_bytes(
            "".join(f"{r} {lab}\r\n" for r, lab in train).encode())
        (splits / f"testlist0{split}.txt").write_bytes(
            "".join(f"{r}\r\n" for r, _ in test).encode())
    return root


def test_ucf101_items_labels_and_no_decoding_at_construction(ucf, monkeypatch):
    import mictnet.data.datasets as datasets

    monkeypatch.setattr(datasets, "VideoReader", None)  # construction must not decode
    train = UCF101(ucf, split=1, train=True, **SMALL)
    test = UCF101(ucf, split=1, train=False, **SMALL)
    assert train.classes == CLASSES and len(train) == 6 and len(test) == 3
    assert [label for _, label in test.samples] == [0, 1, 2]
    assert test.samples[1][0] == str(ucf / "HandstandPushups/v_HandStandPushups_g01_c01.avi")
    monkeypatch.undo()
    for dataset in (train, test):
        for i in range(len(dataset)):
            clip, label = dataset[i]
            assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.float32
            assert label == dataset.samples[i][1] and isinstance(label, int)


def test_test_clip_is_the_first_frames(ucf):
    dataset = UCF101(ucf, 2, False, **SMALL)
    path, _ = dataset.samples[0]
    frames, _ = read_clip(path, 0, 8)
    expected = eval_transform(32, (64, 48))(torch.from_numpy(frames))
    assert torch.equal(dataset[0][0], expected)


def test_video_and_multiclip_modes(ucf):
    whole = UCF101(ucf, 1, False, **{**SMALL, "frames": None, "mode": "video"})
    lengths = [whole[i][0].shape[1] for i in range(len(whole))]
    assert lengths == [24, 40, 24]
    first = UCF101(ucf, 1, False, **{**SMALL, "frames": 30, "mode": "video"})
    assert first[0][0].shape == (3, 30, 32, 32)  # 24 frames, looped to 30
    multi = UCF101(ucf, 1, False, **{**SMALL, "mode": "multiclip", "num_clips": 3})
    clips, _ = multi[1]
    assert clips.shape == (3, 3, 8, 32, 32)
    assert not torch.equal(clips[0], clips[2])


def test_seeded_items_draw_the_same_clip_for_the_same_seed_also_in_workers(ucf):
    """The trainer's one seeding path: an item's draws depend on its seed alone."""
    items = SeededItems(UCF101(ucf, 1, True, **SMALL))
    keys = [(i, item_seed(7, 0, i)) for i in range(len(items))]
    first = [items[key][0] for key in keys]
    assert torch.equal(first[0], items[keys[0]][0])
    assert not torch.equal(first[0], items[(0, item_seed(7, 1, 0))][0])
    loader = DataLoader(items, batch_size=2, num_workers=2, sampler=keys)
    batches = torch.cat([clips for clips, _ in loader])
    assert torch.equal(batches, torch.stack(first))


def test_per_class_flip(ucf):
    dataset = UCF101(ucf, 1, True, flip=["YoYo"], **SMALL)
    assert dataset.flippable == [False, False, True]
    assert UCF101(ucf, 1, True, flip=False, **SMALL).flippable == [False] * 3
    with pytest.raises(ValueError, match=r"flip lists unknown class\(es\) \['Yoyo'\]"):
        UCF101(ucf, 1, True, flip=["Yoyo"], **SMALL)
    seen = []
    dataset.transform = lambda clip, flip, generator: seen.append(flip) or torch.zeros(1)
    for i in range(len(dataset)):
        dataset[i]
    labels = [label for _, label in dataset.samples]
    assert seen == [label == 2 for label in labels]


def test_missing_and_empty_videos_fail_at_construction(ucf):
    (ucf / "YoYo/v_YoYo_g02_c01.avi").unlink()
    (ucf / "ApplyEyeMakeup/v_ApplyEyeMakeup_g03_c01.avi").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"2 of 6 videos listed in .*trainlist01.txt are "
                                                r"missing or empty") as err:
        UCF101(ucf, 1, True)
    assert "v_YoYo_g02_c01.avi: no such file" in str(err.value)
    assert "v_ApplyEyeMakeup_g03_c01.avi: the file is empty" in str(err.value)
    dataset = UCF101(ucf, 1, True, skip_bad=True, **SMALL)
    assert len(dataset) == 4
    assert [problem for _, problem in dataset.bad_videos] == ["the file is empty (0 bytes)",
                                                              "no such file"]


def test_corrupt_video_raises_or_is_skipped(ucf):
    bad = ucf / "YoYo/v_YoYo_g02_c01.avi"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, np.uint8).tobytes())
    dataset = UCF101(ucf, 1, True, **SMALL)
    index = [p for p, _ in dataset.samples].index(str(bad))
    with pytest.raises(VideoError, match="v_YoYo_g02_c01.avi: cannot open it as a video"):
        dataset[index]
    skipping = UCF101(ucf, 1, True, skip_bad=True, **SMALL)
    clip, label = skipping[index]
    assert clip.shape == (3, 8, 32, 32) and label == skipping.samples[(index + 7919) % 6][1]
    loader = DataLoader(skipping, batch_size=3, num_workers=1)
    assert sum(len(labels) for _, labels in loader) == 6
    assert skipping.bad_videos == [(str(bad), "cannot open it as a video (corrupt or unknown "
                                    "format)")]


def test_truncated_video_trusts_the_real_decode(ucf):
    path = ucf / "HandstandPushups/v_HandStandPushups_g02_c01.avi"  # 40 frames
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])
    dataset = UCF101(ucf, 1, True, **{**SMALL, "frames": 30})
    index = [p for p, _ in dataset.samples].index(str(path))
    for _ in range(5):
        assert dataset[index][0].shape == (3, 30, 32, 32)


def test_bad_split_line_fails_at_construction(ucf):
    lists = ucf.parent / "ucfTrainTestlist"
    (lists / "trainlist01.txt").write_bytes(b"YoYo/v_YoYo_g02_c01.avi 1\r\n../x.avi 1\r\n")
    with pytest.raises(SplitError, match=r"trainlist01.txt:1: label 1 disagrees") as err:
        UCF101(ucf, 1, True)
    assert "trainlist01.txt:2: path '../x.avi' leaves the video root" in str(err.value)
    (lists / "testlist02.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testlist02.txt: file not found"):
        UCF101(ucf, 2, False)


def test_hmdb51(tmp_path, make_video):
    root, splits = tmp_path / "hmdb51", tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    names = {"clap": ["a#1 (x)!.avi", "b&c;[2].avi", "d.avi"],
             "run": ["e@~+.avi", "f.avi", "g.avi"]}
    for name, videos in names.items():
        for split in (1, 2, 3):
            lines = [f"{v} {(i + split) % 3} \n" for i, v in enumerate(videos)]
            (splits / f"{name}_test_split{split}.txt").write_text("".join(lines))
        for v in videos:
            make_video(root / name / v, 12)
    train = HMDB51(root, 2, True, **SMALL)
    assert train.classes == ["clap", "run"]
    assert [p.split("/")[-1] for p, _ in train.samples] == ["d.avi", "g.avi"]
    test = build_dataset("hmdb51", root, 2, False, splits_dir=splits, **SMALL)
    assert [p.split("/")[-1] for p, _ in test.samples] == ["a#1 (x)!.avi", "e@~+.avi"]
    assert test[0][0].shape == (3, 8, 32, 32) and test[1][1] == 1


def test_folder_and_list(tmp_path, make_video):
    for name in ("walk", "jump"):
        for i in range(2):
            make_video(tmp_path / "videos" / name / f"{i}.mp4", 10, fourcc="mp4v")
    (tmp_path / "videos" / "notes").mkdir()
    folder = VideoFolder(tmp_path / "videos", **SMALL)
    assert folder.classes == ["jump", "walk"] and len(folder) == 4
    assert folder[3][0].shape == (3, 8, 32, 32) and folder[3][1] == 1
    listing = tmp_path / "videos" / "list.csv"
    listing.write_text("path,label\nwalk/0.mp4,1\njump/1.mp4,0\n")
    listed = build_dataset("list", listing, train=True, **SMALL)
    assert listed.samples == [(str(tmp_path / "videos/walk/0.mp4"), 1),
                              (str(tmp_path / "videos/jump/1.mp4"), 0)]
    assert listed[0][0].shape == (3, 8, 32, 32)
    listing.write_text("walk/0.mp4 1\n../outside.mp4 0\n")
    with pytest.raises(SplitError, match=r"list.csv:2: path '../outside.mp4' leaves the video"):
        VideoList(listing)
    with pytest.raises(FileNotFoundError, match="video folder not found"):
        VideoFolder(tmp_path / "nothing")


def test_list_with_absolute_paths_under_a_list_root(tmp_path, make_video):
    videos = tmp_path / "videos"
    make_video(videos / "walk" / "a.avi", 10)
    cut = truncated_faststart_mp4(videos / "run" / "cut.mp4")  # header 60 frames, ~21 decode
    listing = tmp_path / "lists" / "train.csv"
    listing.parent.mkdir()
    listing.write_text(f'path,label\n"{videos}/walk/a.avi",walk\n{cut},run\n')
    with pytest.raises(SplitError, match=r"train.csv:2: absolute path .* is outside the video "
                                         r"root .*lists \(declare a root"):
        build_dataset("list", listing, **SMALL)
    listed = build_dataset("list", listing, train=True, list_root=videos,
                           **{**SMALL, "frames": 30})
    assert listed.samples == [(str(videos / "walk/a.avi"), 1), (str(cut), 0)]
    for _ in range(3):  # clips planned again on the real count of the truncated file
        assert listed[1][0].shape == (3, 30, 32, 32)
    with pytest.raises(ValueError, match="list_root applies to the 'list' dataset only"):
        build_dataset("folder", videos, list_root=videos)


def test_a_listed_directory_is_named_as_one(tmp_path, make_video):
    make_video(tmp_path / "a.avi", 10)
    (tmp_path / "b.avi").mkdir()
    (tmp_path / "list.txt").write_text("a.avi 0\nb.avi 1\n")
    with pytest.raises(FileNotFoundError, match=r"b.avi: is a directory, not a video file"):
        VideoList(tmp_path / "list.txt", **SMALL)


def test_prepare_warns_about_truncated_videos_and_still_images(tmp_path, caplog):
    from mictnet.data.cache import prepare_videos

    cut = truncated_faststart_mp4(tmp_path / "cut.mp4")
    photo = png_as_video(tmp_path / "photo.mp4")
    report = prepare_videos([(str(cut), "cut.mp4"), (str(photo), "photo.mp4")],
                            tmp_path / "cache", (32, 24), progress=False)
    assert report.written == 2 and report.failed == []
    assert report.warnings == [
        f"{cut}: header says 60 frames but only {decodable_frames(cut)} decode (truncated file "
        "or wrong frame count)",
        f"{photo}: a single frame (a still image, not a video)"]
    assert [r.getMessage() for r in caplog.records] == [f"warning: {w}" for w in report.warnings]


def test_build_dataset_and_options(ucf):
    dataset = build_dataset("ucf101", ucf, 3, False, **SMALL)
    assert isinstance(dataset, UCF101) and len(dataset) == 3
    with pytest.raises(ValueError, match="unknown dataset 'something-else'"):
        build_dataset("something-else", ucf)
    with pytest.raises(TypeError, match=r"unknown clip option\(s\) \['frame'\]"):
        build_dataset("ucf101", ucf, frame=8)


def test_synthetic_round_trip(tmp_path):
    """Generate a tiny synthetic dataset, check it, load it as UCF-101 (shapes, dtypes, labels)."""
    synthetic = importlib.import_module("mictnet.data.synthetic")
    from mictnet.data.checks import check_dataset

    config = synthetic.SynthConfig(classes=3, groups=3, clips_per_group=1, frames=8, size=(32, 32))
    root = synthetic.generate_dataset(tmp_path / "synth", config, progress=False)
    report = check_dataset("ucf101", root, full=True, progress=False)
    assert report.ok, report.problems
    assert report.classes == config.class_names and report.videos == 9
    train = UCF101(root, 1, True, frames=8, crop_size=24, resize=(32, 32),
                   flip=config.flip_safe)
    test = build_dataset("ucf101", root, 1, False, frames=8, crop_size=24, resize=(32, 32))
    assert len(train) == 6 and len(test) == 3
    for dataset in (train, test):
        for i in range(len(dataset)):
            clip, label = dataset[i]
            assert clip.shape == (3, 8, 24, 24) and clip.dtype == torch.float32
            assert dataset.classes[label] == dataset.samples[i][0].split("/")[-2]


def test_prepared_frames_cache(ucf, tmp_path, capsys):
    from mictnet.cli import main
    from mictnet.data.cache import PreparedReader, cache_path

    cache = tmp_path / "cache"
    args = ["prepare", "--dataset", "ucf101", "--root", str(ucf), "--out", str(cache),
            "--size", "64x48"]
    assert main(args) == 0
    assert "9 videos prepared (212 frames" in capsys.readouterr().out
    decoded = UCF101(ucf, 1, False, **SMALL)
    prepared = UCF101(ucf, 1, False, cache=cache, **SMALL)
    transform = eval_transform(32, (64, 48))
    for i in range(3):
        clip, label = prepared[i]
        assert clip.shape == (3, 8, 32, 32) and label == decoded[i][1]
        later = transform(torch.from_numpy(read_clip(decoded.samples[i][0], 3, 8)[0]))
        error = (clip - decoded[i][0]).abs().mean()  # JPEG (4:2:0, quality 90): close, not equal
        assert error < 0.3 and error < (clip - later).abs().mean() / 2
    whole = UCF101(ucf, 1, False, cache=cache, **{**SMALL, "frames": None, "mode": "video"})
    assert [whole[i][0].shape[1] for i in range(3)] == [24, 40, 24]
    train = UCF101(ucf, 1, True, cache=cache, **SMALL)
    assert train[0][0].shape == (3, 8, 32, 32)

    source = ucf / "YoYo/v_YoYo_g01_c01.avi"
    source.write_bytes(source.read_bytes())  # touched: prepared again, the others kept
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 videos prepared" in out and "8 already up to date" in out
    target = cache_path(cache, "YoYo/v_YoYo_g01_c01.avi")
    target.write_bytes(b"garbage")
    with pytest.raises(VideoError, match="v_YoYo_g01_c01.avi.jpgs: not a prepared-frames file"):
        PreparedReader(target)
    target.unlink()
    with pytest.raises(FileNotFoundError, match="1 of 3 videos have no prepared frames"):
        UCF101(ucf, 1, False, cache=cache)
