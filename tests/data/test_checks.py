"""``check_dataset`` and ``mict check``: counts, problems, JSON, exit codes."""

from __future__ import annotations

import json

import pytest

from bad_videos import decodable_frames, png_as_video, truncated_faststart_mp4
from mictnet.cli import main
from mictnet.data.checks import check_dataset


@pytest.fixture
def tree(tmp_path, make_video):
    """A UCF-101-like tree with two classes, split files inside the root."""
    root = tmp_path / "UCF-101"
    splits = root / "ucfTrainTestlist"
    splits.mkdir(parents=True)
    (splits / "classInd.txt").write_bytes(b"1 Alpha\r\n2 Beta\r\n")
    for split in (1, 2, 3):
        train = [f"{c}/v_{c}_g{g:02d}_c01.avi {i}\r\n" for i, c in enumerate(["Alpha", "Beta"], 1)
                 for g in (1, 2, 3) if g != split]
        test = [f"{c}/v_{c}_g{split:02d}_c01.avi\r\n" for c in ("Alpha", "Beta")]
        (splits / f"trainlist0{split}.txt").write_bytes("".join(train).encode())
        (splits / f"testlist0{split}.txt").write_bytes("".join(test).encode())
    for c in ("Alpha", "Beta"):
        for g in (1, 2, 3):
            make_video(root / c / f"v_{c}_g{g:02d}_c01.avi", 6 + g)
    return root


def test_clean_dataset(tree):
    report = check_dataset("ucf101", tree, progress=False)
    assert report.ok and report.problems == []
    assert report.classes == ["Alpha", "Beta"] and report.videos == 6
    assert report.counts["train1"] == {"Alpha": 2, "Beta": 2}
    assert report.counts["test3"] == {"Alpha": 1, "Beta": 1}
    assert report.frames == {"min": 7, "median": 8, "max": 9}
    assert "OK: no problems found" in report.format()
    assert report.to_dict()["ok"] is True


def test_every_problem_is_reported(tree):
    splits = tree / "ucfTrainTestlist"
    (splits / "trainlist01.txt").write_bytes(
        b"Alpha/v_Alpha_g02_c01.avi 1\r\nAlpha/v_Alpha_g02_c01.avi 1\r\nBeta/v_Beta_g02_c01.avi 1"
        b"\r\nGamma/x.avi 3\r\nAlpha/v_Alpha_g09_c01.avi 1\r\n")
    (tree / "Beta/v_Beta_g01_c01.avi").write_bytes(b"not a video at all" * 100)
    (tree / "Alpha/v_Alpha_g01_c01.avi").write_bytes(b"")
    report = check_dataset("ucf101", tree, split=1, progress=False)
    text = "\n".join(report.problems)
    assert not report.ok and len(report.problems) == 6, text
    assert "trainlist01.txt:3: label 1 disagrees with classInd.txt, where 'Beta' is 2" in text
    assert "trainlist01.txt:4: unknown class 'Gamma'" in text
    assert "trainlist01.txt:2: 'Alpha/v_Alpha_g02_c01.avi' listed again (first at line 1)" in text
    assert "v_Alpha_g09_c01.avi: listed but no such file" in text
    assert "v_Beta_g01_c01.avi: cannot open it as a video" in text
    assert "v_Alpha_g01_c01.avi: the file is empty" in text
    assert list(report.counts) == ["train1", "test1"]


@pytest.mark.parametrize("full", [False, True])
def test_truncated_files_are_found_at_their_end(tree, full):
    path = tree / "Beta/v_Beta_g03_c01.avi"
    make = path.read_bytes()
    path.write_bytes(make[:len(make) * 2 // 3])
    report = check_dataset("ucf101", tree, 3, full=full, progress=False)
    assert len(report.problems) == 1
    real = decodable_frames(path)
    assert report.problems[0] == (f"{path}: header says 9 frames but only {real} decode "
                                  "(truncated file or wrong frame count)")


def test_truncated_mp4_and_image_in_a_list(tmp_path, make_video):
    make_video(tmp_path / "walk" / "whole.avi", 12)
    cut = truncated_faststart_mp4(tmp_path / "walk" / "cut.mp4")
    png_as_video(tmp_path / "run" / "photo.mp4")
    (tmp_path / "list.txt").write_text("walk/whole.avi walk\nwalk/cut.mp4 walk\n"
                                       "run/photo.mp4 run\n")
    report = check_dataset("list", tmp_path / "list.txt", progress=False)
    assert report.problems == [
        f"{cut}: header says 60 frames but only {decodable_frames(cut)} decode (truncated file "
        "or wrong frame count)",
        f"{tmp_path}/run/photo.mp4: a single frame (a still image, not a video)"]
    counts = sorted([1, 12, decodable_frames(cut)])  # the truncated file's real count
    assert report.frames == {"min": counts[0], "median": counts[1], "max": counts[2]}


def test_cli_text_json_and_exit_codes(tree, tmp_path, capsys):
    assert main(["check", "--dataset", "ucf101", "--root", str(tree), "--split", "2",
                 "--per-class"]) == 0
    out = capsys.readouterr().out
    assert "2 classes, 6 videos checked" in out and "train2" in out and "Alpha" in out
    (tree / "Alpha/v_Alpha_g02_c01.avi").unlink()
    assert main(["check", "--dataset", "ucf101", "--root", str(tree), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["counts"]["train1"]["Alpha"] == 2
    assert data["problems"] == [f"{tree}/Alpha/v_Alpha_g02_c01.avi: listed but no such file"]
    (tree / "Alpha/v_Alpha_g02_c01.avi").symlink_to(tree / "gone.avi")  # a dangling link
    assert main(["check", "--dataset", "ucf101", "--root", str(tree), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"] == [
        f"{tree}/Alpha/v_Alpha_g02_c01.avi: a symbolic link to {tree}/gone.avi, which does not "
        "exist"]
    (tree / "Alpha/v_Alpha_g02_c01.avi").unlink()
    assert main(["check", "--dataset", "hmdb51", "--root", str(tmp_path / "none")]) == 2
    assert f"{tmp_path / 'none'}: no such dataset root" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["check", "--dataset", "hmdb51", "--root", str(tmp_path / "empty")]) == 1
    assert "split folder 'testTrainMulti_7030_splits' not found" in capsys.readouterr().out


def test_folder_and_list(tmp_path, make_video):
    make_video(tmp_path / "v" / "walk" / "a.avi", 5)
    make_video(tmp_path / "v" / "run" / "b.avi", 5)
    folder = check_dataset("folder", tmp_path / "v", progress=False)
    assert folder.ok and folder.counts == {"all": {"run": 1, "walk": 1}}
    (tmp_path / "v" / "list.txt").write_text("walk/a.avi 0\nrun/b.avi 0\nrun/c.avi 1\n")
    listed = check_dataset("list", tmp_path / "v" / "list.txt", progress=False)
    assert listed.counts == {"all": {"0": 2, "1": 1}}
    assert [p.split("/")[-1] for p in listed.problems] == ["c.avi: listed but no such file"]
