"""The page's camera mode over HTTP: frames sent in chunks get exactly the steps
``Predictor.stream`` gives for the same frames; bad chunks and unknown sessions are refused."""

from __future__ import annotations

import numpy as np
import pytest
from test_serve import TestClient, tiny_checkpoint

from mictnet.inference import load
from mictnet.serve import create_app
from mictnet.serve.camera import MAX_FRAMES_PER_CHUNK


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return load(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt"))


@pytest.fixture(scope="module")
def client(predictor, tmp_path_factory):
    return TestClient(create_app(predictor, upload_dir=str(tmp_path_factory.mktemp("up"))))


def frames_of(count: int, width: int, height: int) -> np.ndarray:
    """``count`` RGBA frames: a bright square moving right over noise."""
    rng = np.random.default_rng(0)
    out = rng.integers(0, 80, (count, height, width, 4), dtype=np.uint8)
    for t in range(count):
        x = (2 * t) % (width - 8)
        out[t, height // 3: height // 3 + 8, x: x + 8, :3] = 250
    out[..., 3] = 255
    return out


def test_chunks_of_frames_give_the_offline_streams_steps(client, predictor):
    opened = client.post("/api/camera").json()
    width, height = opened["width"], opened["height"]
    assert (width, height) == predictor.clip.resize and opened["max_frames"] == MAX_FRAMES_PER_CHUNK
    frames = frames_of(40, width, height)
    steps, sid = [], opened["session"]
    for start in range(0, 40, 7):  # chunks that cut across the model's steps
        chunk = frames[start:start + 7]
        answer = client.post(f"/api/camera/{sid}?frames={len(chunk)}",
                             content=chunk.tobytes()).json()
        assert answer["frames"] == start + len(chunk)
        steps += answer["steps"]
    steps += client.delete(f"/api/camera/{sid}").json()["steps"]
    expected = list(predictor.stream(iter(frames[..., :3])))
    assert [s["index"] for s in steps] == [s.index for s in expected] and steps
    for got, want in zip(steps, expected, strict=True):
        probs, idx = want.probabilities.topk(3)
        assert [t["label"] for t in got["top"]] == [predictor.classes[int(i)] for i in idx]
        assert [t["probability"] for t in got["top"]] == pytest.approx(probs.tolist(), abs=1e-5)
        assert (got["first_frame"], got["last_frame"]) == (want.first_frame, want.last_frame)
    assert client.post(f"/api/camera/{sid}?frames=1", content=frames[0].tobytes()).status_code \
        == 404  # ended


def test_bad_chunks_are_refused_with_the_reason(client):
    opened = client.post("/api/camera").json()
    sid, size = opened["session"], opened["width"] * opened["height"] * 4
    wrong = client.post(f"/api/camera/{sid}?frames=2", content=b"\0" * size)
    assert wrong.status_code == 422 and f"are {2 * size} bytes, got {size}" in wrong.json()["error"]
    assert client.post(f"/api/camera/{sid}", content=b"\0" * size).status_code == 400
    too_many = client.post(f"/api/camera/{sid}?frames=1",
                           content=b"\0" * (size * (MAX_FRAMES_PER_CHUNK + 1)))
    assert too_many.status_code == 413
    assert client.post("/api/camera/nope?frames=1", content=b"\0" * size).status_code == 404
    assert client.delete(f"/api/camera/{sid}").status_code == 200
