"""``mict serve`` against clients that misbehave: uploads cut off, a server killed mid-upload,
headers that claim absurd work, requests over their time budget, requests without the token."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from test_serve import post, tiny_checkpoint, upload_files

from bad_videos import flat_h264, stretched_time_base_mp4
from mictnet.inference import load

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
from mictnet.serve import create_app  # noqa: E402
from mictnet.serve.limits import Limits  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BOUNDARY = "mictboundary"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def predictor(checkpoint):
    torch.set_num_threads(1)
    return load(checkpoint, clips=3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_partial_upload(port: int, total: int = 2**20, sent: int = 200_000) -> socket.socket:
    """A raw connection that announces ``total`` bytes of multipart upload and sends only the
    part's head and ``sent`` bytes of it (the caller closes it, or a killed server drops it)."""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"cut.mp4\"\r\nContent-Type: video/mp4\r\n\r\n").encode()
    request = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
               f"Content-Length: {total}\r\n\r\n").encode()
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn.sendall(request + head + b"\0" * sent)
    return conn


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def live_server(predictor, tmp_path) -> Iterator[tuple[int, Path]]:
    """``(port, upload folder)`` of the app under uvicorn in a thread of this process."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(predictor, upload_dir=str(tmp_path)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for(lambda: server.started)
    try:
        yield port, tmp_path
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_a_client_that_disconnects_mid_upload_leaves_no_file(live_server):
    port, folder = live_server
    for _ in range(3):
        conn = start_partial_upload(port)
        assert wait_for(lambda: len(upload_files(folder)) == 1), "the upload never started"
        conn.close()  # gone mid-upload: Starlette raises ClientDisconnect in the handler
        assert wait_for(lambda: upload_files(folder) == []), upload_files(folder)


def serve(checkpoint: Path, port: int, temp: Path) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(temp)}
    return subprocess.Popen([sys.executable, "-m", "mictnet.cli", "serve", "--checkpoint",
                             str(checkpoint), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_healthy(port: int, process: subprocess.Popen) -> None:
    def answers() -> bool:
        assert process.poll() is None, process.communicate()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    assert wait_for(answers, 120), "mict serve did not start"


def test_a_restart_removes_what_a_killed_server_left(checkpoint, predictor, tmp_path, caplog):
    temp = tmp_path / "tmp"
    temp.mkdir()
    foreign = temp / "mict-upload-of-someone-else.mp4"  # not the server's: never touched
    foreign.write_bytes(b"x")
    port = free_port()
    killed = serve(checkpoint, port, temp)
    wait_healthy(port, killed)
    conn = start_partial_upload(port)
    assert wait_for(lambda: len(upload_files(temp)) == 2)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=30)
    conn.close()
    [left] = [f for f in upload_files(temp) if f != foreign]  # what a kill leaves behind
    assert left.parent.parent.name.startswith("mict-serve-")

    create_app(predictor, upload_dir=str(temp))  # the restart (here, in this process)
    assert upload_files(temp) == [foreign]
    assert "removed 1 upload(s) a previous server left" in caplog.text


def test_a_running_servers_folder_is_never_removed(predictor, tmp_path, make_video):
    first = TestClient(create_app(predictor, upload_dir=str(tmp_path)))
    create_app(predictor, upload_dir=str(tmp_path))  # a second server starts beside it
    [root] = tmp_path.iterdir()
    assert len(list(root.iterdir())) == 2  # each its own folder
    video = make_video(tmp_path / "v.avi", 10)
    assert post(first, video).status_code == 200
    assert upload_files(tmp_path) == []


@pytest.fixture
def client(predictor, tmp_path) -> TestClient:
    return TestClient(create_app(predictor, upload_dir=str(tmp_path),
                                 limits=Limits(max_steps=2)))


def test_a_stretched_time_base_is_refused(client, tmp_path):
    video = stretched_time_base_mp4(tmp_path / "stretched.mp4")
    answer = post(client, video, query="?timeline=1")
    assert answer.status_code == 422
    message = answer.json()["error"]
    assert message.startswith("stretched.mp4: a frame rate of 0.000266") and "1-1000 fps" in message
    assert upload_files(tmp_path) == []


def test_frames_larger_than_the_limit_are_refused(client, tmp_path):
    video = flat_h264(tmp_path / "wide.mp4", (4112, 64))
    assert video.stat().st_size < 10_000
    answer = post(client, video)
    assert answer.status_code == 422
    assert answer.json() == {"error": "wide.mp4: 4112x64 frames; the server takes at most 4096 "
                                      "pixels a side"}


def test_a_long_timeline_gets_coarser_steps_and_says_so(client, make_video, tmp_path):
    video = make_video(tmp_path / "five.avi", 50, fps=10)  # 5 s: 5 steps, over max_steps=2
    record = post(client, video, query="?timeline=1").json()
    assert [(s["start"], s["end"]) for s in record["timeline"]] == [(0, 3), (3, 5)]
    assert record["notes"] == ["timeline: one step per 3 s (at most 2 steps)"]


class SlowModel(torch.nn.Module):
    """The model, 0.3 s slower per forward pass (a slow machine, deterministically)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(0.3)
        return self.model(x)


def test_a_slow_request_gets_503_and_frees_the_worker(checkpoint, make_video, tmp_path):
    slow = load(checkpoint, clips=1)
    slow.model = SlowModel(slow.model)
    client = TestClient(create_app(slow, workers=1, timeout=1.5, upload_dir=str(tmp_path)))
    long = make_video(tmp_path / "long.avi", 100, fps=10)  # 10 timeline steps: 3 s and more
    start = time.monotonic()
    answer = post(client, long, query="?timeline=1")
    took = time.monotonic() - start
    assert answer.status_code == 503 and 1.5 <= took < 3.0, took
    assert answer.json() == {"error": "long.avi: not answered within the server's time budget of "
                                      "1.5 s (--timeout); try a shorter video"}
    short = make_video(tmp_path / "short.avi", 8)
    start = time.monotonic()
    answer = post(client, short)  # one clip: answered within its budget, the worker is free
    assert answer.status_code == 200 and time.monotonic() - start < 1.5
    assert wait_for(lambda: upload_files(tmp_path) == [], 5)


def test_the_token_guards_the_api(predictor, make_video, tmp_path):
    client = TestClient(create_app(predictor, token="s3cret-token", upload_dir=str(tmp_path)))
    video = make_video(tmp_path / "v.avi", 10)
    for answer in (client.get("/api/model"), post(client, video),
                   client.get("/api/model", headers={"Authorization": "Bearer wrong"})):
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer TOKEN" in answer.json()["error"]
    good = {"Authorization": "Bearer s3cret-token"}
    assert client.get("/api/model", headers=good).status_code == 200
    with open(video, "rb") as f:
        answer = client.post("/api/predict", files={"file": ("v.avi", f)}, headers=good)
    assert answer.status_code == 200
    assert client.get("/").status_code == 200 and client.get("/healthz").status_code == 200
    assert upload_files(tmp_path) == []
