"""The employee list and the employee page in a real browser at 1280x800, a laptop screen: a ready
employee, one whose photo shows two faces, and a possible duplicate. Full-page screenshots are
kept (the test's folder, var/test/screenshots/, and $FRID_SCREENSHOT_DIR when set) and no
table may be wider than its container.

Real LFW photos, processed by the worker's code in the test itself (no worker is needed), all
before the browser starts: the ORM called while Playwright's loop runs opens a connection of its
own, left open at the end.
"""

import io
import time
from pathlib import Path

import numpy
from django.urls import reverse
from PIL import Image

from identity import enrollment
from identity.models import Employee, FaceTemplate
from tests.identity.browser import (  # noqa: F401 (browser_allowed: a fixture)
    browser_allowed,
    camera_browser,
    overflowing_tables,
    write_y4m,
)
from tests.identity.screenshots import screenshot

PASSWORD = "a-long-password-1"


def add_photo(employee: Employee, data: bytes, filename: str) -> FaceTemplate:
    template = enrollment.add_photo(employee, data, filename)
    enrollment.process_templates([template.pk])
    template.refresh_from_db()
    return template


def side_by_side(*photos: Path) -> bytes:
    """Two real faces in one photo, as a group photo would show them."""
    both = numpy.hstack([numpy.asarray(Image.open(photo).convert("RGB")) for photo in photos])
    buffer = io.BytesIO()
    Image.fromarray(both).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_the_employee_pages_fit_a_laptop_screen(
    live_server, browser_allowed, base_model_version, faces_dir, django_user_model, tmp_path
):
    lfw = faces_dir / "lfw"
    hr = django_user_model.objects.create_superuser("hr", "hr@example.com", PASSWORD)
    ready = employee("E1001", "Serena Williams", "Operations", hr)
    add_photo(ready, (lfw / "Serena_Williams" / "Serena_Williams_0001.jpg").read_bytes(), "serena-portrait.jpg")
    group = employee("E1002", "Zhang Yimou", "Design", hr)
    several = add_photo(group, side_by_side(lfw / "Zhang_Yimou" / "Zhang_Yimou_0001.jpg",
                                            lfw / "Gerry_Adams" / "Gerry_Adams_0006.jpg"), "team-outing-2026.jpg")
    # Gerry Adams twice, under two numbers: a possible duplicate, shown on both employees.
    first = employee("E1003", "Gerry Adams", "Operations", hr)
    add_photo(first, (lfw / "Gerry_Adams" / "Gerry_Adams_0001.jpg").read_bytes(), "gerry-adams.jpg")
    twice = employee("E1004", "Gerald Adamson", "Operations", hr)
    duplicate = add_photo(twice, (lfw / "Gerry_Adams" / "Gerry_Adams_0002.jpg").read_bytes(), "new-starter.jpg")
    assert several.status == "rejected" and len(several.found_boxes) == 2
    assert duplicate.possible_duplicate_of == first
    pages = {
        "employee-ready": employee_url(ready),
        "employee-rejected-several-faces": employee_url(group),
        "photo-page-several-faces": reverse("admin:identity_facetemplate_change", args=[several.pk]),
        "employee-duplicate": employee_url(twice),
        "employee-resembled": employee_url(first),
        "duplicate-review": reverse("admin:identity_facetemplate_duplicate", args=[duplicate.pk]),
        "employee-list": reverse("admin:identity_employee_changelist"),
        "photo-list": reverse("admin:identity_facetemplate_changelist"),
    }
    camera = write_y4m(tmp_path / "grey.y4m", None, frames=2)

    with camera_browser(camera, live_server.url, viewport={"width": 1280, "height": 800}) as page:
        page.goto(reverse("admin:login"))
        page.fill("#id_username", "hr")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(live_server.url + reverse("admin:index"))
        seen = {name: look_at(page, name, url, tmp_path) for name, url in pages.items()}
        page.goto(pages["employee-list"])
        warnings = page.locator(".field-duplicate .duplicate-warning").all_inner_texts()

    assert {name: view["overflowing"] for name, view in seen.items()} == {name: [] for name in pages}
    assert {name: view["photos"] for name, view in seen.items() if name.startswith("employee-")} == {
        "employee-ready": 1, "employee-rejected-several-faces": 1, "employee-duplicate": 1,
        "employee-resembled": 1, "employee-list": 0,
    }
    assert seen["employee-ready"]["banner"] == ""
    assert "until you decide" in seen["employee-duplicate"]["banner"]
    assert "until you decide" in seen["employee-resembled"]["banner"]
    assert sorted(warnings) == ["⚠ Possible duplicate of Gerald Adamson", "⚠ Possible duplicate of Gerry Adams"]


def employee(number: str, name: str, department: str, hr) -> Employee:
    person = Employee.objects.create(employee_number=number, name=name, department=department)
    person.record_consent(hr)
    return person


def employee_url(person: Employee) -> str:
    return reverse("admin:identity_employee_change", args=[person.pk])


def _wait_for_every_image(page, timeout_seconds: float = 30) -> None:
    # Polled from here: wait_for_function evaluates a string in the page, which the pages' CSP forbids.
    deadline = time.monotonic() + timeout_seconds
    while not page.evaluate("Array.from(document.images).every(image => image.complete)"):
        assert time.monotonic() < deadline, "the page's images did not load"
        page.wait_for_timeout(100)


def look_at(page, name: str, url: str, folder: Path) -> dict:
    """Open the page, wait for its photos, keep a full-page screenshot; what it shows."""
    page.goto(url)
    _wait_for_every_image(page)
    view = {
        "overflowing": overflowing_tables(page),
        # Uploaded photos that loaded (a broken one has no natural width).
        "photos": page.evaluate(
            "Array.from(document.querySelectorAll('img.source-photo')).filter(image => image.naturalWidth > 0).length"
        ),
        "banner": " ".join(page.locator(".duplicate-reviews").all_inner_texts()),
    }
    screenshot(page, folder, name)
    return view
