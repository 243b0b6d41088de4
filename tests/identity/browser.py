"""Real-browser helpers for the page tests: a fake camera made from a real photo, Debian's chromium
driven by Playwright (never `playwright install`: .ci/run installs the chromium package instead),
LFW people to enroll, and a verify worker.

What we learned making the camera: a y4m written here in limited-range BT.601 YUV 4:2:0
reproduces the photo almost exactly; chromium loops the file, so a few identical frames do.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy
import pytest
from PIL import Image

from tests.identity.real_faces import (  # noqa: F401 (re-exported for the page tests; verify_worker: a fixture)
    PATIENT_TIMEOUT_SECONDS,
    enroll,
    people_with_two_photos,
    stranger_photo,
    usable,
    verify_worker,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# Kept after the run (var/ is ignored by git), so that people can look at what the pages showed.
SCREENSHOTS_DIR = PROJECT_ROOT / "var" / "test" / "screenshots"

FRAME_WIDTH, FRAME_HEIGHT = 640, 480
# An LFW photo is 250x250 with a face about 100 px wide; a webcam at arm's length sees one about
# twice as wide, and the whole photo must still fit in the 480 px height.
PHOTO_SCALE = min(2.0, FRAME_HEIGHT / 250)
NEUTRAL_GREY = (128, 128, 128)


def camera_frame(photo: Path | None) -> numpy.ndarray:
    """A 640x480 RGB frame: the photo scaled up in the middle, on its own edge colour (plain
    grey without a photo)."""
    if photo is None:
        return numpy.full((FRAME_HEIGHT, FRAME_WIDTH, 3), NEUTRAL_GREY, dtype=numpy.uint8)
    image = Image.open(photo).convert("RGB")
    size = (round(image.width * PHOTO_SCALE), round(image.height * PHOTO_SCALE))
    picture = numpy.asarray(image.resize(size, Image.Resampling.LANCZOS))
    edge = numpy.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]]).mean(axis=0)
    frame = numpy.empty((FRAME_HEIGHT, FRAME_WIDTH, 3), dtype=numpy.uint8)
    frame[:] = edge.round().astype(numpy.uint8)
    top, left = (FRAME_HEIGHT - size[1]) // 2, (FRAME_WIDTH - size[0]) // 2
    frame[top:top + size[1], left:left + size[0]] = picture
    return frame


def yuv420(frame: numpy.ndarray) -> bytes:
    """Y, then Cb and Cr averaged over 2x2 blocks: limited-range BT.601, as y4m's C420jpeg means."""
    red, green, blue = (frame[..., channel].astype(numpy.float64) / 255 for channel in range(3))
    luma = 16 + 65.481 * red + 128.553 * green + 24.966 * blue
    blue_difference = 128 - 37.797 * red - 74.203 * green + 112.0 * blue
    red_difference = 128 + 112.0 * red - 93.786 * green - 18.214 * blue

    def quarter(plane: numpy.ndarray) -> numpy.ndarray:
        height, width = plane.shape
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = [luma, quarter(blue_difference), quarter(red_difference)]
    return b"".join(numpy.clip(plane.round(), 0, 255).astype(numpy.uint8).tobytes() for plane in planes)


def write_y4m(path: Path, photo: Path | None, frames: int = 10) -> Path:
    """A y4m video of ``frames`` identical 640x480 frames of ``photo`` (for chromium's fake camera)."""
    header = f"YUV4MPEG2 W{FRAME_WIDTH} H{FRAME_HEIGHT} F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n".encode()
    picture = yuv420(camera_frame(photo))
    with open(path, "wb") as video:
        video.write(header)
        for _ in range(frames):
            video.write(b"FRAME\n" + picture)
    return path


def launch_arguments(video: Path, camera_allowed: bool = True) -> list[str]:
    arguments = [
        "--no-sandbox",  # chromium refuses to start as root with its sandbox
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    if camera_allowed:
        arguments.append("--use-fake-ui-for-media-stream")  # accepts the camera prompt
    return arguments


@contextmanager
def camera_browser(video: Path, base_url: str, viewport: dict | None = None, camera_allowed: bool = True) -> Iterator:
    """A chromium page whose camera shows ``video``, allowed to use it on ``base_url`` (or, with
    ``camera_allowed=False``, refused as by a person who says no to the browser's prompt)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium).",
                    pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=launch_arguments(video, camera_allowed)
        )
        try:
            context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800}, base_url=base_url)
            if camera_allowed:
                context.grant_permissions(["camera"], origin=base_url)
            yield context.new_page()
        finally:
            browser.close()


def keep_screenshot(page, folder: Path, name: str) -> Path:
    """Save a screenshot in the test's folder and a copy under var/test/screenshots/."""
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENSHOTS_DIR / path.name)
    return path


# --- The pages' checks: real faces, a real verify worker ---------------------------------------

# An upper bound for a slow two-core machine, never a measurement: the worker is warm before the check.
SETTLED_STATES = ["verified", "not_recognised", "rejected", "refused", "busy"]
ANSWER_TIMEOUT_MS = (PATIENT_TIMEOUT_SECONDS + 30) * 1000


def check(page) -> str:
    """Press the start button and wait for the answer; its data-state."""
    page.click("#start-button")
    # A selector, not wait_for_function: that one evaluates a string, which the pages' CSP forbids.
    settled = ", ".join(f'#answer[data-state="{state}"]' for state in SETTLED_STATES)
    page.wait_for_selector(settled, state="attached", timeout=ANSWER_TIMEOUT_MS)
    return page.get_attribute("#answer", "data-state")


@pytest.fixture
def browser_allowed(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
    plain synchronous code."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


# A table "overflows" when it is wider than the box that holds it: at 1280 px its last columns
# are cut off or need a sideways scroll. Django's admin wraps results in div.results.
OVERFLOWING_TABLES_SCRIPT = """
() => Array.from(document.querySelectorAll('table')).filter(table => {
    const box = table.parentElement.getBoundingClientRect();
    return table.getBoundingClientRect().right > Math.min(box.right, window.innerWidth) + 1;
}).map(table => table.id || table.className || table.parentElement.className || 'table')
"""


def overflowing_tables(page) -> list[str]:
    """The tables on the page wider than their container or the window (their id or class)."""
    return page.evaluate(OVERFLOWING_TABLES_SCRIPT)
