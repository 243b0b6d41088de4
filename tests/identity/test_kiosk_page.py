"""The kiosk page in a real browser (Debian's chromium through Playwright), its camera a y4m
video made from a real LFW photo; /api/v1/verify/ answers through a real verify worker.

The kiosk page holds no data: anyone may open it, and only the kiosk's token (kept in the
browser's localStorage) lets it verify. The face alone says who is checking in.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from identity.models import AttendanceEvent, Employee, Kiosk, VerificationAttempt
from tests.identity.browser import (  # noqa: F401 (browser_allowed, verify_worker: fixtures)
    browser_allowed,
    camera_browser,
    check,
    enroll,
    keep_screenshot,
    people_with_two_photos,
    stranger_photo,
    verify_worker,
    write_y4m,
)


def registered_kiosk(**options) -> tuple[Kiosk, str]:
    kiosk = Kiosk(name="Front door", **options)
    token = kiosk.new_token()
    kiosk.save()
    return kiosk, token


def set_up_kiosk(page, token: str) -> None:
    page.goto(reverse("kiosk"))
    page.fill("#kiosk-token", token)
    page.click("#kiosk-setup-form button[type=submit]")
    page.locator("#start-button:enabled").wait_for()


def answer_text(page) -> str:
    return page.inner_text("#answer")


@pytest.fixture
def grey_camera(tmp_path) -> Path:
    return write_y4m(tmp_path / "grey.y4m", None, frames=2)


# --- Setting up the kiosk, refusals (no worker needed) -----------------------------------------


def test_the_kiosk_page_is_open_to_anyone_and_holds_no_data(client, db):
    Employee.objects.create(employee_number="E1", name="Ann Example")

    response = client.get(reverse("kiosk"))

    assert response.status_code == 200
    assert b"Ann Example" not in response.content and b"E1" not in response.content
    assert b'id="verify-config"' in response.content


def test_the_setup_form_keeps_the_token_in_the_browser(live_server, browser_allowed, grey_camera, tmp_path):
    _, token = registered_kiosk()

    with camera_browser(grey_camera, live_server.url) as page:
        page.goto(reverse("kiosk"))
        assert page.is_visible("#kiosk-setup") and not page.is_visible("#start-button")
        page.fill("#kiosk-token", "not-a-token")
        page.click("#kiosk-setup-form button[type=submit]")
        refused = page.inner_text("#kiosk-setup-error")
        keep_screenshot(page, tmp_path, "kiosk-setup-refuses-a-malformed-token")
        set_up_kiosk(page, token)
        stored = page.evaluate("window.localStorage.getItem('frid.kioskToken')")
        page.reload()
        page.locator("#start-button:enabled").wait_for()  # straight to the camera: no setup again
        keep_screenshot(page, tmp_path, "kiosk-ready")
        setup_visible_after_reload = page.is_visible("#kiosk-setup")

    assert 'starts with "kiosk_"' in refused
    assert stored == token
    assert not setup_visible_after_reload


def test_an_unknown_token_gets_a_plain_answer(live_server, browser_allowed, grey_camera, tmp_path):
    with camera_browser(grey_camera, live_server.url) as page:
        set_up_kiosk(page, "kiosk_" + "x" * 43)
        state = check(page)
        text = answer_text(page)
        keep_screenshot(page, tmp_path, "kiosk-unknown-token")

    assert state == "refused"
    assert "This kiosk is not registered" in text
    assert "Change this kiosk's token" in text


def test_a_disabled_kiosk_is_told_so_and_the_refusal_is_audited(live_server, browser_allowed, grey_camera, tmp_path):
    kiosk, token = registered_kiosk(is_active=False)

    with camera_browser(grey_camera, live_server.url) as page:
        set_up_kiosk(page, token)
        state = check(page)
        text = answer_text(page)
        keep_screenshot(page, tmp_path, "kiosk-disabled")

    assert state == "refused"
    assert "This kiosk has been disabled by an administrator" in text
    attempt = VerificationAttempt.objects.get()
    assert (attempt.kiosk, attempt.decision) == (kiosk, VerificationAttempt.Decision.REFUSED)
    assert not AttendanceEvent.objects.exists()


def test_a_refused_camera_is_explained_in_plain_words(live_server, browser_allowed, grey_camera, tmp_path):
    _, token = registered_kiosk()

    with camera_browser(grey_camera, live_server.url, camera_allowed=False) as page:
        page.goto(reverse("kiosk"))
        page.fill("#kiosk-token", token)
        page.click("#kiosk-setup-form button[type=submit]")
        page.locator("#camera-message").wait_for()
        message = page.inner_text("#camera-message")
        keep_screenshot(page, tmp_path, "kiosk-camera-refused")
        start_disabled = page.is_disabled("#start-button")

    assert "Camera permission was refused" in message
    assert start_disabled


def test_when_no_verify_worker_answers_the_kiosk_says_it_is_busy(
    live_server, empty_broker, browser_allowed, grey_camera, settings, tmp_path
):
    settings.FRID_VERIFY_TIMEOUT_SECONDS = 1  # nobody consumes the verify queue: no answer ever comes
    _, token = registered_kiosk()

    with camera_browser(grey_camera, live_server.url) as page:
        set_up_kiosk(page, token)
        state = check(page)
        text = answer_text(page)
        keep_screenshot(page, tmp_path, "kiosk-busy")

    assert state == "busy"
    assert "Verification is busy" in text
    assert VerificationAttempt.objects.get().decision == VerificationAttempt.Decision.BUSY


# --- Real faces through a real verify worker ---------------------------------------------------


@pytest.mark.slow
def test_another_photo_of_an_employee_checks_them_in_and_a_stranger_is_not_recognised(
    verify_worker, live_server, browser_allowed, faces_dir, tmp_path
):
    (ann_enrolled, ann_other), (bob_enrolled, _) = people_with_two_photos(faces_dir, 2)
    ann = enroll("E1", ann_enrolled)
    enroll("E2", bob_enrolled)
    # Still photos: the liveness challenge is tested in test_liveness_browser.py.
    _, token = registered_kiosk(liveness_required=False)

    with camera_browser(write_y4m(tmp_path / "ann.y4m", ann_other), live_server.url) as page:
        set_up_kiosk(page, token)
        state = check(page)
        text = answer_text(page)
        keep_screenshot(page, tmp_path, "kiosk-verified")
        event = AttendanceEvent.objects.get()
        direction_before_switch = event.direction
        # She meant to leave: one tap on the switch.
        page.click("#switch-button")
        page.get_by_text("checked out").wait_for()
        switched_text = answer_text(page)
        keep_screenshot(page, tmp_path, "kiosk-switched-to-check-out")

    assert state == "verified", text
    assert (event.employee, direction_before_switch) == (ann, "in")
    assert ann.name in text
    time = f"{timezone.localtime(event.occurred_at):%H:%M}"
    assert f"checked in {time}" in text
    assert "Switch to check-out" in text
    event.refresh_from_db()
    assert event.direction == "out"
    assert f"checked out {time}" in switched_text and "Switch to check-in" in switched_text

    with camera_browser(write_y4m(tmp_path / "stranger.y4m", stranger_photo(faces_dir)), live_server.url) as page:
        set_up_kiosk(page, token)
        state = check(page)
        text = answer_text(page)
        keep_screenshot(page, tmp_path, "kiosk-not-recognised")

    assert state == "not_recognised", text
    assert "Not recognised" in text
    assert AttendanceEvent.objects.count() == 1  # still only Ann's
    assert VerificationAttempt.objects.filter(decision=VerificationAttempt.Decision.NOT_RECOGNISED).count() == 1
