"""``mict serve``'s app (:mod:`mictnet.serve`) through Starlette's test client."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from mictnet.data.clip_spec import ClipSpec
from mictnet.engine.checkpoint import CheckpointMeta, save_checkpoint
from mictnet.inference import load, prediction_record
from mictnet.models import build_model

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.requests import Request  # noqa: E402

from mictnet.serve import create_app  # noqa: E402
from mictnet.serve.upload import UploadError, receive_file  # noqa: E402

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 to httpx; both work
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CLASSES = ["clap", "jump", "wave"]
INPUT = (8, 32, 32)


def tiny_checkpoint(path: Path) -> Path:
    """An untrained 3-class MiCT-ResNet-18 on 8x32x32 clips (the same weights every time)."""
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=len(CLASSES))
    save_checkpoint(path, model, CheckpointMeta(model.spec, CLASSES, INPUT,
                                                {"data": {"resize": [40, 36]}}))
    return path


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    torch.set_num_threads(1)
    return load(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt"), clips=3)


@pytest.fixture(scope="module")
def upload_root(tmp_path_factory) -> Path:
    """The temp folder of the module's server (its uploads go to a folder inside)."""
    return tmp_path_factory.mktemp("uploads")


def upload_files(root: Path) -> list[Path]:
    """Upload files anywhere under ``root`` (none once every answer is given)."""
    return sorted(root.rglob("mict-upload-*"))


@pytest.fixture
def uploads(upload_root):
    """The folder of the upload files (checked empty after each answer)."""
    return upload_root


@pytest.fixture(scope="module")
def client(predictor, upload_root):
    return TestClient(create_app(predictor, max_upload_mb=1, workers=2,
                                 upload_dir=str(upload_root)))


def expected(predictor, path, name: str, timeline: bool = False) -> dict:
    record = prediction_record(predictor.predict(path),
                               predictor.timeline(path) if timeline else None)
    return {**record, "video": name}


def post(client, path, name: str | None = None, query: str = ""):
    with open(path, "rb") as f:
        return client.post(f"/api/predict{query}", files={"file": (name or path.name, f)})


def test_good_video_answers_predicts_json(client, predictor, make_video, tmp_path, uploads):
    video = make_video(tmp_path / "good.avi", 20, size=(64, 48))
    answer = post(client, video)
    assert answer.status_code == 200
    assert answer.json() == expected(predictor, video, "good.avi")
    assert answer.json()["clips"] == 3 and "timeline" not in answer.json()
    assert upload_files(uploads) == []


def test_long_video_with_timeline(client, predictor, make_video, tmp_path, uploads):
    video = make_video(tmp_path / "long.mp4", 35, size=(64, 48), fourcc="mp4v", fps=10)
    answer = post(client, video, query="?timeline=1")
    assert answer.status_code == 200
    record = answer.json()
    assert [(s["start"], s["end"]) for s in record["timeline"]] == [(0, 1), (1, 2), (2, 3),
                                                                   (3, 3.5)]
    assert record == expected(predictor, video, "long.mp4", timeline=True)
    assert upload_files(uploads) == []


def test_client_file_names_are_never_paths(client, make_video, tmp_path, uploads):
    video = make_video(tmp_path / "v.avi", 10)
    answer = post(client, video, name="../../etc/evil name.avi")
    assert answer.status_code == 200 and answer.json()["video"] == "evil name.avi"
    assert upload_files(uploads) == [] and not (tmp_path / "evil name.avi").exists()


def test_over_the_limit_is_413(client, tmp_path, uploads):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\x00" * (2 * 2**20))
    answer = post(client, big)
    assert answer.status_code == 413
    assert answer.json() == {"error": "upload larger than the limit of 1 MB (--max-upload-mb)"}


def test_reading_stops_at_the_limit(uploads):
    """A body without a length (an endless stream here) is read only up to the limit."""
    pulled = []
    head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'

    async def receive() -> dict:
        pulled.append(1)
        return {"type": "http.request", "body": head if len(pulled) == 1 else b"\0" * 2**16,
                "more_body": True}

    scope = {"type": "http", "method": "POST", "path": "/api/predict", "query_string": b"",
             "headers": [(b"content-type", b"multipart/form-data; boundary=x")]}
    with pytest.raises(UploadError) as info:
        asyncio.run(receive_file(Request(scope, receive), "file", 2**20, str(uploads)))
    assert info.value.status == 413 and len(pulled) == 1 + 16  # the head, then 1 MB
    assert upload_files(uploads) == []


def test_garbage_is_422_with_the_decoders_reason(client, tmp_path, uploads):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 200)
    answer = post(client, bad)
    assert answer.status_code == 422
    message = answer.json()["error"]
    assert message.startswith("broken.mp4: ") and "video" in message
    assert str(uploads) not in message and upload_files(uploads) == []
    assert client.get("/healthz").json() == {"status": "ok"}  # still serving


@pytest.mark.parametrize("kwargs", [{"data": {"video": "x"}}, {"content": b"{}"},
                                    {"files": {"other": ("a.mp4", b"123")}}])
def test_no_file_field_is_400(client, uploads, kwargs):
    answer = client.post("/api/predict", **kwargs)
    assert answer.status_code == 400 and '"file"' in answer.json()["error"]
    assert upload_files(uploads) == []


def test_concurrent_requests_queue_and_all_answer(client, predictor, make_video, tmp_path):
    videos = [make_video(tmp_path / "a.avi", 12, size=(64, 48)),
              make_video(tmp_path / "b.mp4", 20, size=(80, 60), fourcc="mp4v")]
    top1 = {v.name: predictor.predict(v).label for v in videos}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: post(client, videos[i % 2]), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert [a.json()["labels"][0] for a in answers] == [top1["a.avi"], top1["b.mp4"]] * 4


def test_model_health_and_self_contained_page(client):
    assert client.get("/api/model").json() == {
        "model": "mict_resnet18", "num_classes": 3, "classes": CLASSES, "input_size": [8, 32, 32],
        "clip": ClipSpec(frames=8, resize=(40, 36), crop=32).to_dict()}
    assert client.get("/healthz").json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert 'id="top1"' in html and 'id="file"' in html and "api/predict" in html
    assert "http://" not in html and "https://" not in html and "src=" not in html


def test_import_mictnet_does_not_import_the_server():
    code = ("import sys, mictnet, mictnet.cli, mictnet.inference; "
            "assert not {'starlette', 'uvicorn'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("flag", [["--workers", "0"], ["--max-upload-mb", "0"],
                                  ["--port", "x"]])
def test_serve_argument_errors_exit_2(tmp_path, capsys, flag):
    from mictnet.cli import main

    with pytest.raises(SystemExit) as info:
        main(["serve", "--checkpoint", str(tmp_path / "c.pt"), *flag])
    assert info.value.code == 2 and f"argument {flag[0]}" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--port", "70000"], ["--port", "0"],
                                  ["--max-upload-mb", "inf"], ["--max-upload-mb", "nan"],
                                  ["--max-upload-mb", "-1"], ["--timeout", "0"],
                                  ["--timeout", "inf"], ["--token", "short"],
                                  ["--token", "has space"], ["--clips", "65"]])
def test_out_of_range_flags_are_argument_errors(flag, capsys):
    from mictnet.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["serve", "--checkpoint", "c.pt", *flag])
    assert stop.value.code == 2 and flag[0] in capsys.readouterr().err


def test_a_host_beyond_loopback_is_warned_about(tmp_path, monkeypatch, capsys):
    import uvicorn

    from mictnet.cli import main

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append(kw["host"]))
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    assert main(["serve", "--checkpoint", str(ckpt), "--host", "0.0.0.0"]) == 0
    assert "it has no authentication (add --token TOKEN)" in capsys.readouterr().err
    assert main(["serve", "--checkpoint", str(ckpt), "--host", "0.0.0.0", "--token",
                 "a-long-token"]) == 0
    err = capsys.readouterr().err
    assert "and has the token use the server" in err and "/?token=a-long-token" in err
    assert main(["serve", "--checkpoint", str(ckpt)]) == 0
    assert "no authentication" not in capsys.readouterr().err
    assert served == ["0.0.0.0", "0.0.0.0", "127.0.0.1"]


def test_unknown_paths_and_methods_answer_json(client):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "GET /api/nothing: Not Found"}
    wrong = client.get("/api/predict")
    assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]
    assert wrong.json() == {"error": "GET /api/predict: Method Not Allowed"}
