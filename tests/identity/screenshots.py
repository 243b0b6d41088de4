"""Full-page screenshots for the browser tests: in the test's folder and var/test/screenshots/
(browser.keep_screenshot), and also in $FRID_SCREENSHOT_DIR when it is set, for people who review
the pages from a run elsewhere (CI keeps that folder)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.identity.browser import keep_screenshot


def screenshot(page, folder: Path, name: str) -> Path:
    path = keep_screenshot(page, folder, name)
    extra = os.environ.get("FRID_SCREENSHOT_DIR", "").strip()
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(extra) / path.name)
    return path
