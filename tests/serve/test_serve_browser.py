"""End to end: ``mict serve`` in a subprocess, its page in headless Chromium (Selenium), a
generated video uploaded through the file input; the top-1 shown is ``mict predict``'s.

Skips, saying why, only without Selenium, Chromium or chromedriver (``.ci/run`` installs Debian's
``chromium`` and ``chromium-driver``). ``MICT_SAVE_SCREENSHOT=1`` also writes the README's
``docs/serve.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_serve import CLASSES, tiny_checkpoint

from conftest import synthetic_frames

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless browser test needs chromium and chromedriver "
           "(apt-get install chromium chromium-driver)")
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "serve.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mict(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mictnet.cli", *args], **kwargs)


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mict serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"mict serve did not answer {url}/healthz in {timeout} s")


TOKEN = "browser-test-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """``(page url with the token, checkpoint)`` of a ``mict serve --token`` on a free port."""
    checkpoint = tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
    port = free_port()
    process = mict("serve", "--checkpoint", str(checkpoint), "--port", str(port), "--token",
                   TOKEN, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield f"{url}/?token={TOKEN}", checkpoint
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
        print(err)


def chrome(*flags: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1100,880", *flags):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    driver = chrome()
    try:
        yield driver
    finally:
        driver.quit()


def write_y4m(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    """RGB frames as a YUV4MPEG2 file (4:2:0), what Chromium's fake camera plays in a loop."""
    height, width = frames.shape[1:3]
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def upload(browser, url: str, video: Path) -> str:
    """Open the page, upload ``video``, wait for the answer; the top-1 shown."""
    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: "classes" in d.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "file").send_keys(str(video))
    return WebDriverWait(browser, 120).until(
        lambda d: d.find_element(By.ID, "top1").text or False)


def test_page_shows_mict_predicts_top1(server, browser, make_video, tmp_path):
    url, checkpoint = server
    video = make_video(tmp_path / "drive.webm", 60, size=(320, 240), fourcc="VP80", fps=20)
    predicted = subprocess.run([sys.executable, "-m", "mictnet.cli", "predict", str(video),
                                "--checkpoint", str(checkpoint), "--json"],
                               capture_output=True, text=True, check=True)
    [record] = json.loads(predicted.stdout)

    top1 = upload(browser, url, video)
    assert top1 == record["labels"][0]
    assert "token" not in browser.current_url  # kept for the tab, out of the address bar
    assert len(browser.find_elements(By.CSS_SELECTOR, "#bars .row")) == 3
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline div")) == 3  # 3 s, 1 per s
    WebDriverWait(browser, 10).until(
        lambda d: d.execute_script("return document.getElementById('video').readyState") >= 2)
    browser.execute_script("document.getElementById('video').currentTime = 1.5")
    time.sleep(0.5)
    screenshot = tmp_path / "serve.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("MICT_SAVE_SCREENSHOT") == "1":
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(screenshot, README_SCREENSHOT)
    marks = [m.text for m in browser.find_elements(By.CSS_SELECTOR, "#marks span")]
    assert marks == ["0 s", "1 s", "2 s", "3 s"]
    head = browser.find_element(By.ID, "playhead")
    assert head.is_displayed() and head.value_of_css_property("left") != "0px"
    assert not browser.find_element(By.ID, "preview").is_displayed()


def test_a_file_the_browser_cannot_play_gets_preview_frames(server, browser, make_video,
                                                            tmp_path):
    url, _ = server
    video = make_video(tmp_path / "synthetic.avi", 40, size=(160, 120), fourcc="XVID")
    upload(browser, url, video)
    preview = WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "preview").is_displayed()
        and d.find_element(By.ID, "preview"))
    assert preview.get_attribute("src").startswith("data:image/jpeg;base64,")
    assert browser.execute_script("return arguments[0].naturalWidth", preview) == 160
    assert not browser.find_element(By.ID, "video").is_displayed()
    note = browser.find_element(By.ID, "note").text
    assert note == "This browser cannot play synthetic.avi (its codec): showing 12 frames the " \
                   "server decoded from it."


def test_a_bad_file_is_an_error_in_red(server, browser, tmp_path):
    url, _ = server
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 200)
    browser.get(url)
    WebDriverWait(browser, 30).until(lambda d: "classes" in d.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "file").send_keys(str(bad))
    status = WebDriverWait(browser, 60).until(
        lambda d: "error 422" in d.find_element(By.ID, "status").text
        and d.find_element(By.ID, "status"))
    time.sleep(0.5)  # the player's own error comes after: it must not restyle the status
    assert status.get_attribute("class") == "error"
    assert status.value_of_css_property("color") == "rgba(187, 0, 0, 1)"
    assert "the answer is still" not in status.text and status.text.startswith(
        "error 422: broken.mp4: ")
    assert not browser.find_element(By.ID, "result").is_displayed()


@pytest.mark.parametrize(("probability", "uncertain"), [(0.345, True), (0.9, False)])
def test_a_low_confidence_answer_looks_uncertain(server, browser, probability, uncertain):
    url, _ = server
    browser.get(url)
    record = {"video": "v.mp4", "labels": ["clap", "jump", "wave"],
              "probabilities": [probability, (1 - probability) * 0.6, (1 - probability) * 0.4],
              "frames": 30, "fps": 25, "width": 64, "height": 48, "clips": 1, "warning": None}
    browser.execute_script("showResult(arguments[0])", record)
    top1, confidence = (browser.find_element(By.ID, i) for i in ("top1", "confidence"))
    assert top1.text == "clap"
    assert (top1.get_attribute("class") == "uncertain") is uncertain
    assert ("uncertain" in confidence.text) is uncertain
    assert confidence.text.startswith(f"{100 * probability:.1f}% likely")


def test_without_the_token_the_page_says_why(server, browser):
    url, _ = server
    browser.get(url.split("?")[0])
    text = WebDriverWait(browser, 30).until(
        lambda d: "unavailable" in d.find_element(By.ID, "model").text
        and d.find_element(By.ID, "model").text)
    assert "this server needs its token" in text


def test_heat_map_toggle_overlays_the_explanation_on_the_video(server, browser, make_video,
                                                               tmp_path):
    url, _ = server
    video = make_video(tmp_path / "drive.webm", 30, size=(320, 240), fourcc="VP80", fps=20)
    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: "classes" in d.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "file").send_keys(str(video))
    top1 = WebDriverWait(browser, 120).until(
        lambda d: d.find_element(By.ID, "top1").text or False)
    assert not browser.find_element(By.ID, "heat").is_displayed()
    browser.find_element(By.ID, "heatmap").click()
    WebDriverWait(browser, 120).until(
        lambda d: d.find_element(By.ID, "heat").get_attribute("data-frame") is not None)
    assert browser.find_element(By.ID, "status").text.startswith(f"heat map of {top1}: gradcam")
    state = browser.execute_script("""
        const c = document.getElementById('heat'), v = document.getElementById('video');
        v.currentTime = 1.0;
        const alpha = c.getContext('2d').getImageData(0, 0, c.width, c.height).data
          .filter((_, i) => i % 4 === 3).reduce((a, b) => a + b, 0);
        return {w: c.width, h: c.height, vw: v.clientWidth, vh: v.clientHeight, alpha: alpha,
                hot: explanation.maps.flat(2).some((x) => x > 0.05), frames: explanation.frames};
    """)
    assert state["frames"] == 30 and (state["w"], state["h"]) == (state["vw"], state["vh"])
    assert (state["alpha"] > 0) == state["hot"]  # drawn where the model looked
    time.sleep(0.5)  # the loop follows the player: frame 1.0 s x 20 fps
    assert browser.find_element(By.ID, "heat").get_attribute("data-frame") == "20"
    browser.find_element(By.ID, "heatmap").click()
    assert not browser.find_element(By.ID, "heat").is_displayed()


def test_camera_mode_streams_the_fake_camera_and_shows_the_servers_steps(server, tmp_path):
    """Chromium's fake camera plays a synthetic clip; the page sends its frames to
    ``/api/camera`` and shows the top actions of the steps the server answers."""
    url, _ = server
    clip = write_y4m(tmp_path / "camera.y4m", synthetic_frames(50, (160, 120)))
    driver = chrome("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={clip}")
    try:
        driver.get(url)
        WebDriverWait(driver, 30).until(
            lambda d: "classes" in d.find_element(By.ID, "model").text)
        driver.find_element(By.ID, "camera").click()
        WebDriverWait(driver, 120).until(lambda d: d.execute_script(
            "return window.cameraStep && window.cameraStep.index >= 2"))
        shown = driver.execute_script("""
            const s = window.cameraStep;
            return {top1: document.getElementById('top1').textContent, step: s,
                    status: document.getElementById('status').textContent,
                    bars: [...document.querySelectorAll('#bars .name span:first-child')]
                      .map((e) => e.textContent)};""")
        step = shown["step"]
        assert shown["top1"] == step["top"][0]["label"] and shown["top1"] in CLASSES
        assert shown["bars"] == [t["label"] for t in step["top"]]
        assert shown["status"].startswith("camera: ") and "frames sent" in shown["status"]
        sent = int(shown["status"].split()[1])
        assert sent > step["last_frame"]  # the steps cover frames the page sent
        driver.find_element(By.ID, "camera").click()
        assert driver.find_element(By.ID, "camera").text == "Use the camera"
    finally:
        driver.quit()
