"""Grad-CAM over space and time (:mod:`mictnet.serve.explain`) for every registered model, its
windows over long videos, its geometry, the sanity measures, and ``POST /api/explain``."""

from __future__ import annotations

import importlib
import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import synthetic_frames
from mictnet.data.clip_spec import ClipSpec
from mictnet.engine.checkpoint import CheckpointMeta
from mictnet.inference import Predictor
from mictnet.models import build_model, get_variant, list_models
from mictnet.serve import explain as explain_module
from mictnet.serve.explain import (
    crop_region,
    explain,
    interpolation_weights,
    receptive_centres,
    resolve_layer,
    windows,
)
from mictnet.serve.explain_check import (
    frame_hits,
    heat_share,
    pointing_hits,
    randomised,
    rank_correlation,
)

CLASSES = ["clap", "jump", "wave"]


def h264(path: Path, frames: int | np.ndarray, size: tuple[int, int] = (64, 48)) -> Path:
    """An H.264 MP4 (libx264 of imageio-ffmpeg) of ``frames`` (a count or RGB frames)."""
    clip = synthetic_frames(frames, size) if isinstance(frames, int) else frames
    height, width = clip.shape[1:3]
    ffmpeg = importlib.import_module("imageio_ffmpeg").get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                    f"{width}x{height}", "-r", "25", "-i", "-", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", "-threads", "1", str(path)], input=clip.tobytes(), check=True)
    return path


def predictor_of(name: str, frames: int = 8, crop: int = 32, seed: int = 0) -> Predictor:
    torch.manual_seed(seed)
    model = build_model(name, num_classes=len(CLASSES))
    clip = ClipSpec(frames=frames, resize=(40, 36), crop=crop)
    return Predictor(model, CheckpointMeta(model.spec, CLASSES, clip.input_size, clip=clip),
                     clips=2)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return h264(tmp_path_factory.mktemp("video") / "disc.mp4", 20)


@pytest.mark.parametrize("name", [n for n in list_models() if get_variant(n).family != "custom"])
def test_every_registered_model_explains_an_h264_file(name: str, video: Path) -> None:
    torch.set_num_threads(1)
    predictor = predictor_of(name)
    [e] = explain(predictor, video)
    assert e.layer == resolve_layer(predictor.model, (8, 32, 32))
    assert e.layer in get_variant(name).cam_layers
    assert e.label == e.predicted == predictor.predict(video).label
    assert e.frames == 20 and e.maps.shape[0] == 20 and e.importance.shape == (20,)
    assert e.maps.min() >= 0 and e.maps.max() <= 1 and e.importance.max() <= 1
    assert e.windows == [(0, 8), (8, 8), (12, 8)]  # 20 frames in windows of 8, the last at the end
    heat = e.heat(3)
    assert heat.shape == (48, 64) and heat.dtype == np.float32
    x0, y0, x1, y1 = e.crop
    assert not heat[:, :x0].any() and not heat[:, x1:].any()  # nothing outside what it saw
    json.dumps(e.to_dict())


def test_auto_layer_is_the_last_stage_at_the_recipe_size_and_finer_for_tiny_clips() -> None:
    model = build_model("mict_resnet18", num_classes=3)
    assert resolve_layer(model, (16, 160, 160)) == "layer4"  # 5x5 cells
    assert resolve_layer(model, (16, 64, 64)) == "layer3"  # layer4 would be 2x2
    assert resolve_layer(model, (16, 32, 32)) == "layer2"
    assert resolve_layer(model, (8, 32, 32), "layer1.0") == "layer1.0"
    with pytest.raises(ValueError, match="no layer 'layer9'"):
        resolve_layer(model, (8, 32, 32), "layer9")


def test_target_class_top_k_and_methods(video: Path) -> None:
    predictor = predictor_of("resnet3d_18")
    found = explain(predictor, video, top=3)
    assert [e.label for e in found] == predictor.predict(video).labels
    [by_name] = explain(predictor, video, ["wave"])
    assert by_name.label == "wave" and np.allclose(
        by_name.maps, next(e for e in found if e.label == "wave").maps, atol=1e-5)
    plus = predictor.explain(video, "wave", method="gradcam++")
    assert plus.method == "gradcam++" and plus.maps.shape == by_name.maps.shape
    layer = predictor.explain(video, "wave", method="layercam")
    assert layer.method == "layercam" and layer.maps.shape == by_name.maps.shape
    with pytest.raises(ValueError, match="unknown class 'dance'"):
        explain(predictor, video, ["dance"])
    with pytest.raises(ValueError, match="unknown method"):
        explain(predictor, video, method="lime")


def test_given_centres_are_used_instead_of_measured(video: Path, monkeypatch) -> None:
    predictor = predictor_of("mict_resnet18")
    measured = []
    real = explain_module.receptive_centres
    monkeypatch.setattr(explain_module, "receptive_centres",
                        lambda *args: measured.append(real(*args)) or measured[-1])
    [first] = explain(predictor, video)
    assert len(measured) == 1  # once per video, on its first window

    def refuse(*args):
        raise AssertionError("centres were given: nothing to measure")

    monkeypatch.setattr(explain_module, "receptive_centres", refuse)
    [again] = explain(predictor, video, centres=measured[0])
    assert np.array_equal(again.maps, first.maps)
    assert np.array_equal(again.rows, first.rows) and np.array_equal(again.cols, first.cols)


def test_parameters_keep_their_gradient_flags(video: Path) -> None:
    predictor = predictor_of("mict_resnet18")
    predictor.model.fc.weight.requires_grad_(False)
    predictor.explain(video)
    assert not predictor.model.fc.weight.requires_grad
    assert predictor.model.conv1.weight.requires_grad


def test_windows_tile_long_and_loop_short_videos() -> None:
    assert windows(40, 8) == [(s, list(range(s, s + 8))) for s in (0, 8, 16, 24, 32)]
    assert [s for s, _ in windows(43, 8)] == [0, 8, 16, 24, 32, 35]
    assert windows(5, 8) == [(0, [0, 1, 2, 3, 4, 0, 1, 2])]
    assert windows(20, 4, stride=2) == [(0, [0, 2, 4, 6]), (8, [8, 10, 12, 14]),
                                        (12, [12, 14, 16, 18])]


def test_interpolation_puts_each_cell_on_its_centre_and_holds_beyond() -> None:
    weights = interpolation_weights(np.array([5.0, 9.0, 20.0]), np.arange(32.0))
    assert np.allclose(weights.sum(axis=1), 1)
    assert weights[5, 0] == 1 and weights[9, 1] == 1 and weights[20, 2] == 1
    assert np.allclose(weights[7], [0.5, 0.5, 0]) and np.allclose(weights[:5, 0], 1)
    assert np.allclose(weights[20:, 2], 1)  # past the last centre the map holds its value
    assert np.allclose(interpolation_weights(np.array([3.0]), np.arange(4.0)), 1)


def test_receptive_centres_follow_the_look_ahead_and_the_padding() -> None:
    """A MiCT-ResNet's steps see frames after their own (its 3D convolutions look ahead); a
    3D-ResNet's one step is centred on the clip; rows and columns run across the input, pulled
    inwards at the borders (not on pixels 0 and 32)."""
    torch.manual_seed(0)
    clip = torch.randn(1, 3, 16, 64, 64)
    mict = build_model("mict_resnet18", num_classes=3, temporal_stride=4).eval()
    steps, rows, cols = receptive_centres(mict, "layer4", clip, None)
    assert steps.shape == (4,) and rows.shape == cols.shape == (2,)
    assert all(steps[j] > 4 * j + 2.5 for j in range(3))  # frames 4j..4j+3 are centred on 4j+1.5
    assert np.all(np.diff(steps) > 0) and np.all(np.diff(rows) > 0)
    assert 8 < rows[0] < rows[1] < 56 and 8 < cols[0] < cols[1] < 56
    r3d = build_model("resnet3d_18", num_classes=3).eval()
    steps, _, _ = receptive_centres(r3d, "layer4", clip, None)
    assert steps.shape == (1,) and abs(steps[0] - 7.5) < 1.5


def test_crop_region_is_the_transforms_centre_crop() -> None:
    transform = ClipSpec(resize=(40, 36), crop=32).eval_transform()
    assert crop_region(transform, 40, 36) == (4, 2, 36, 34)
    assert crop_region(transform, 80, 72) == (8, 4, 72, 68)  # frames twice the resize


def test_sanity_measures(video: Path) -> None:
    predictor = predictor_of("mict_resnet18")
    e = predictor.explain(video)
    peaks = e.peaks()
    on_peak = np.array([[x, y, x + 1, y + 1] for x, y in peaks])
    assert pointing_hits(e, on_peak)[0] == int((e.maps.reshape(20, -1).max(1) > 0).sum())
    beside = on_peak + 1  # each frame's box one pixel past its peak: every frame a miss
    beside[0] = 0  # no object in frame 0: not counted
    assert frame_hits(e, beside) == {i: False for i in range(1, 20)}
    whole = np.tile([0, 0, 64, 48], (20, 1))
    inside, area = heat_share(e, whole)
    assert area == 1 and (inside == pytest.approx(1) or e.maps.max() == 0)
    assert rank_correlation(e, e) == pytest.approx(1) or e.maps.max() == 0
    fresh = randomised(predictor.model, seed=3)
    assert fresh.spec == predictor.model.spec
    assert not torch.equal(fresh.fc.weight, predictor.model.fc.weight)


def test_api_explain_answers_the_librarys_record(video: Path, tmp_path: Path) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 to httpx; both work
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from mictnet.serve import create_app

    predictor = predictor_of("mict_resnet18")
    client = TestClient(create_app(predictor))
    with open(video, "rb") as f:
        answer = client.post("/api/explain?class=jump", files={"file": ("my.mp4", f)})
    assert answer.status_code == 200
    expected = predictor.explain(video, "jump").to_dict() | {"video": "my.mp4"}
    record = answer.json()
    assert record["label"] == "jump" and record["grid"] == expected["grid"]
    assert np.allclose(record["maps"], expected["maps"], atol=2e-3)
    with open(video, "rb") as f:
        assert client.post("/api/explain?class=dance",
                           files={"file": ("my.mp4", f)}).status_code == 400
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with open(bad, "rb") as f:
        assert client.post("/api/explain", files={"file": ("bad.mp4", f)}).status_code == 422


def test_layercam_weighs_each_cell_by_its_own_positive_gradient() -> None:
    """Grad-CAM gives a channel one weight (its mean gradient); LayerCAM weighs every cell by
    the positive part of its own gradient."""
    acts = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(1, 2, 1, 2, 2)
    grads = torch.stack([torch.tensor([[1.0, -1.0], [0.5, 0.0]]),
                         torch.tensor([[-2.0, 0.0], [0.0, 1.0]])])[None, :, None]
    assert torch.equal(explain_module._cam(acts, grads, "layercam")[0],
                       torch.tensor([[1.0, 0.0], [1.5, 4.0]]))
    # the channels' mean gradients, 0.125 and -0.25, give Grad-CAM no positive cell
    assert torch.equal(explain_module._cam(acts, grads, "gradcam")[0], torch.zeros(2, 2))
