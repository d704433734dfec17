"""Split parsing on the real UCF-101 / HMDB-51 files and every malformed-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from mictnet.data.splits import (
    SplitError,
    find_splits_dir,
    parse_hmdb51,
    parse_ucf101,
    parse_video_list,
    read_ucf101_classes,
    unsafe_path_reason,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
UCF_SPLITS = SHARED / "ucf101" / "splits"
HMDB_SPLITS = SHARED / "hmdb51" / "splits"
UCF_COUNTS = {1: (9537, 3783), 2: (9586, 3734), 3: (9624, 3696)}


@pytest.fixture
def ucf_splits():
    if not (UCF_SPLITS / "classInd.txt").is_file():
        pytest.skip(f"official UCF-101 split files not found in {UCF_SPLITS}")
    return UCF_SPLITS


@pytest.fixture
def hmdb_splits():
    if not HMDB_SPLITS.is_dir():
        pytest.skip(f"official HMDB-51 split files not found in {HMDB_SPLITS}")
    return HMDB_SPLITS


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_real_split_counts_and_labels(ucf_splits, split):
    class_lines = (ucf_splits / "classInd.txt").read_bytes().decode().split("\r\n")
    expected = {name: int(i) - 1 for i, name in (line.split(" ") for line in class_lines if line)}
    train = parse_ucf101(ucf_splits, split, train=True)
    test = parse_ucf101(ucf_splits, split, train=False)
    assert len(train.classes) == 101 and train.classes[0] == "ApplyEyeMakeup"
    assert train.classes[36] == "HandstandPushups" and train.classes[100] == "YoYo"
    assert (len(train.samples), len(test.samples)) == UCF_COUNTS[split]
    assert not (train.problems or test.problems or train.duplicates or test.duplicates)
    for path, label in train.samples + test.samples:
        folder = path.split("/")[0]
        assert label == expected[folder], path  # every class's label from classInd.txt
        assert "\r" not in path and path.endswith(".avi")
    assert {label for _, label in train.samples} == set(range(101))
    assert {label for _, label in test.samples} == set(range(101))
    assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}
    quirky = [p for p, label in test.samples if label == 36]
    assert quirky and all(p.startswith("HandstandPushups/v_HandStandPushups_") for p in quirky)


@pytest.mark.parametrize("split", [1, 2, 3])
def test_hmdb51_real_split_counts_and_labels(hmdb_splits, split):
    train = parse_hmdb51(hmdb_splits, split, train=True)
    test = parse_hmdb51(hmdb_splits, split, train=False)
    assert len(train.classes) == 51 and train.classes[0] == "brush_hair"
    assert (len(train.samples), len(test.samples)) == (3570, 1530)
    assert not (train.problems or test.problems or train.duplicates)
    for samples in (train.samples, test.samples):
        for label in range(51):
            name = train.classes[label]
            mine = [p for p, lab in samples if lab == label]
            assert len(mine) == (70 if samples is train.samples else 30)
            assert all(p.startswith(f"{name}/") and p.endswith(".avi") for p in mine)
    assert any("!" in p or "(" in p for p, _ in train.samples + test.samples)
    assert all(not p.endswith(" ") for p, _ in train.samples)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


@pytest.fixture
def mini_ucf(tmp_path):
    splits = tmp_path / "ucfTrainTestlist"
    write(splits / "classInd.txt", "1 Alpha\r\n2 Beta\r\n")
    write(splits / "trainlist01.txt",
          "Alpha/v_Alpha_g08_c01.avi 1\r\nBeta/v_Beta_g08_c01.avi 2\r\n")
    write(splits / "testlist01.txt", "Alpha/v_Alpha_g01_c01.avi\r\nBeta/v_Beta_g01_c01.avi\r\n")
    return splits


def test_mini_ucf_crlf(mini_ucf):
    train = parse_ucf101(mini_ucf, 1, True)
    assert train.classes == ["Alpha", "Beta"]
    assert train.samples == [("Alpha/v_Alpha_g08_c01.avi", 0), ("Beta/v_Beta_g08_c01.avi", 1)]
    assert parse_ucf101(mini_ucf, 1, False).samples[1] == ("Beta/v_Beta_g01_c01.avi", 1)


def test_a_byte_order_mark_is_not_part_of_the_first_line(mini_ucf):
    """Windows editors save UTF-8 with a BOM; it must not make ``1 Alpha`` an unknown class."""
    for name in ("classInd.txt", "trainlist01.txt"):
        path = mini_ucf / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    train = parse_ucf101(mini_ucf, 1, True)
    assert train.classes == ["Alpha", "Beta"] and train.samples[0] == (
        "Alpha/v_Alpha_g08_c01.avi", 0)


@pytest.mark.parametrize("line, message", [
    ("Alpha/v_Alpha_g08_c01.avi", r"trainlist01.txt:2: expected '<Class>/<video>.avi <label>'"),
    ("Gamma/v_Gamma_g08_c01.avi 2", r"trainlist01.txt:2: unknown class 'Gamma'"),
    ("Beta/v_Beta_g08_c01.avi 1", r"trainlist01.txt:2: label 1 disagrees with classInd.txt"),
    ("Beta/v_Beta_g08_c01.avi x", r"trainlist01.txt:2: label 'x' is not a number"),
    ("../Beta/v.avi 2", r"trainlist01.txt:2: path '../Beta/v.avi' leaves the video root"),
    ("/data/Beta/v.avi 2", r"trainlist01.txt:2: absolute path '/data/Beta/v.avi'"),
    ("Beta/sub/v.avi 2", r"trainlist01.txt:2: expected '<Class>/<video>'"),
])
def test_ucf_bad_lines_name_file_and_line(mini_ucf, line, message):
    write(mini_ucf / "trainlist01.txt", f"Alpha/v_Alpha_g08_c01.avi 1\r\n{line}\r\n")
    parsed = parse_ucf101(mini_ucf, 1, True)
    with pytest.raises(SplitError, match=message):
        parsed.raise_problems()


def test_ucf_duplicates_and_bad_class_index(mini_ucf):
    write(mini_ucf / "testlist01.txt", "Alpha/a.avi\r\nAlpha/a.avi\r\n")
    parsed = parse_ucf101(mini_ucf, 1, False)
    assert parsed.samples == [("Alpha/a.avi", 0)]
    assert "testlist01.txt:2: 'Alpha/a.avi' listed again (first at line 1)" in str(
        parsed.duplicates[0])
    write(mini_ucf / "classInd.txt", "1 Alpha\r\n3 Beta\r\nbroken\r\n")
    _, problems = read_ucf101_classes(mini_ucf / "classInd.txt")
    assert [p.line for p in problems] == [2, 3]
    assert "class index 3 out of order" in str(problems[0])


def test_missing_split_files(tmp_path, mini_ucf):
    (mini_ucf / "testlist01.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testlist01.txt: file not found"):
        parse_ucf101(mini_ucf, 1, False)
    with pytest.raises(FileNotFoundError, match="split folder 'testTrainMulti_7030_splits' not"):
        find_splits_dir(tmp_path / "videos", "testTrainMulti_7030_splits")
    with pytest.raises(FileNotFoundError, match="nowhere: split folder not found"):
        find_splits_dir(tmp_path, "x", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="splits 1, 2 and 3"):
        parse_ucf101(mini_ucf, 4, True)


def test_splits_dir_inside_or_beside_root(tmp_path, mini_ucf):
    root = tmp_path / "UCF-101"
    root.mkdir()
    assert find_splits_dir(root, "ucfTrainTestlist") == mini_ucf  # beside
    inside = root / "ucfTrainTestlist"
    inside.mkdir()
    assert find_splits_dir(root, "ucfTrainTestlist") == inside
    assert find_splits_dir(root, "ucfTrainTestlist", mini_ucf) == mini_ucf


def test_hmdb_bad_lines_and_names(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    write(splits / "run_test_split1.txt", "a (1)!.avi 1 \nb.avi 2 \nc.avi 0 \n")
    write(splits / "jump_test_split1.txt", "d.avi 1 \nd.avi 3 \n../e.avi 1 \n")
    parsed = parse_hmdb51(splits, 1, True)
    assert parsed.classes == ["jump", "run"]
    assert parsed.samples == [("jump/d.avi", 0), ("run/a (1)!.avi", 1)]
    messages = [str(p) for p in parsed.problems]
    assert messages[0].endswith("jump_test_split1.txt:2: expected '<video>.avi <0|1|2>', got "
                                "'d.avi 3'")
    assert "jump_test_split1.txt:3: video name '../e.avi' must be a bare file name" in messages[1]
    assert "jump_test_split2.txt: split file missing" in str(parse_hmdb51(splits, 2).problems[0])


def test_video_list_formats_and_errors(tmp_path):
    spaced = write(tmp_path / "a.txt", "x/one video.avi 1\nx/two.avi 0\n")
    assert parse_video_list(spaced).samples == [("x/one video.avi", 1), ("x/two.avi", 0)]
    csv = write(tmp_path / "b.csv", "path,label\nx/1.mp4,walk\ny/2.mp4,run\n")
    parsed = parse_video_list(csv)
    assert parsed.classes == ["run", "walk"] and parsed.samples[0] == ("x/1.mp4", 1)
    mixed = write(tmp_path / "c.txt", "x/1.avi 0\nx/2.avi walk\n")
    with pytest.raises(SplitError, match="c.txt:2: labels mix class numbers and class names"):
        parse_video_list(mixed).raise_problems()
    bad = write(tmp_path / "d.txt", "x/1.avi 0\nlonely\n/abs/2.avi 1\n")
    messages = [str(p) for p in parse_video_list(bad).problems]
    assert messages[0].endswith("d.txt:2: expected 'path label' or 'path,label', got 'lonely'")
    assert "d.txt:3: absolute path" in messages[1]


def test_video_list_csv_with_quoted_fields(tmp_path):
    listing = write(tmp_path / "q.csv", 'path,label\n"a,b.mp4",1\n"x/say ""hi"".mp4", 0\n'
                                        '"lonely.mp4\n')
    parsed = parse_video_list(listing)
    assert parsed.samples == [("a,b.mp4", 1), ('x/say "hi".mp4', 0)]
    assert [str(p) for p in parsed.problems] == [
        f"{listing}:4: expected 'path label' or 'path,label', got '\"lonely.mp4'"]


def test_video_list_absolute_paths_under_a_declared_root(tmp_path):
    videos = tmp_path / "videos"
    listing = write(tmp_path / "lists" / "l.txt",
                    f"{videos}/walk/a.avi 0\nrun/b.avi 1\nrun/../c.avi 1\n"
                    f"{videos}/../escape.avi 0\n../x.avi 0\n/elsewhere/d.avi 1\n")
    parsed = parse_video_list(listing, root=videos)
    assert parsed.samples == [("walk/a.avi", 0), ("run/b.avi", 1), ("c.avi", 1)]
    assert [str(p) for p in parsed.problems] == [
        f"{listing}:4: absolute path '{videos}/../escape.avi' is outside the video root "
        f"{videos} (declare a root that holds it: --list-root DIR, or root= of VideoList)",
        f"{listing}:5: path '../x.avi' leaves the video root ('..')",
        f"{listing}:6: absolute path '/elsewhere/d.avi' is outside the video root {videos} "
        "(declare a root that holds it: --list-root DIR, or root= of VideoList)"]
    default = parse_video_list(listing)  # the list's folder: the absolute paths lie outside it
    assert [p.line for p in default.problems] == [1, 4, 5, 6]
    assert "--list-root DIR" in str(default.problems[0])


@pytest.mark.parametrize("path, bad", [
    ("a/b.avi", False), ("a..b/c.avi", False), ("../a.avi", True), ("a/../../b.avi", True),
    ("/etc/x.avi", True), ("C:\\x.avi", True), ("a\\..\\b.avi", True), ("", True),
])
def test_unsafe_paths(path, bad):
    assert (unsafe_path_reason(path) is not None) == bad
