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

import pytest
from test_serve import tiny_checkpoint

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


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, Path]]:
    """``(url, checkpoint)`` of a ``mict serve`` on a free local port."""
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
    port = free_port()
    process = mict("serve", "--checkpoint", str(checkpoint), "--port", str(port),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url, checkpoint
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
        print(err)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1100,880"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_page_shows_mict_predicts_top1(server, browser, make_video, tmp_path):
    url, checkpoint = server
    video = make_video(tmp_path / "drive.webm", 60, size=(320, 240), fourcc="VP80", fps=20)
    predicted = subprocess.run([sys.executable, "-m", "mictnet.cli", "predict", str(video),
                                "--checkpoint", str(checkpoint), "--json"],
                               capture_output=True, text=True, check=True)
    [record] = json.loads(predicted.stdout)

    browser.get(url)
    WebDriverWait(browser, 30).until(
        lambda d: "classes" in d.find_element(By.ID, "model").text)
    browser.find_element(By.ID, "file").send_keys(str(video))
    top1 = WebDriverWait(browser, 120).until(
        lambda d: d.find_element(By.ID, "top1").text or False)
    assert top1 == record["labels"][0]
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
