"""Active liveness in a real browser: the kiosk page in Debian's chromium (Playwright), its camera
a y4m video made from real LFW photos, its checks answered by a real verify worker.

What must be true: a still LFW photo fails the challenge; frames of one person turning as asked
pass; frames of two different people fail.

The challenge is made predictable here: the live server runs in this process, so the random draw
(identity.liveness.choose_steps) is replaced by "turn your head to your left, then to your right".
Chromium plays the video in a loop, so the head turn is a loop too: LFW has no videos, so one
person's photo with the head on their own right (low estimated yaw) for 0.6 s, then one of them
with the head on their own left (high yaw) for 0.6 s. The page takes 10 frames 0.3 s apart, so
wherever the loop is when it starts, they hold the head going one way and then the other (a turn to
the left, then to the right). The tests wait for the page's answer, never for a time.

What this proves, and what not: the server refuses a picture that does not move, and frames of
two people, whatever the page does; it accepts a turn made in the order asked. It does not prove
that a live person was there: a replayed video of the right movement (as here, where the "person"
is two photos), or any picture fed through a virtual camera, passes as long as it makes the
movements asked within the challenge's seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from identity import liveness, verification
from identity.models import AttendanceEvent, Kiosk, VerificationAttempt
from tests.identity.browser import (  # noqa: F401 (browser_allowed, verify_worker: fixtures)
    ANSWER_TIMEOUT_MS,
    FRAME_HEIGHT,
    FRAME_WIDTH,
    SETTLED_STATES,
    browser_allowed,
    camera_browser,
    camera_frame,
    enroll,
    keep_screenshot,
    verify_worker,
    write_y4m,
    yuv420,
)
from tests.identity.test_check_in_page import PASSWORD, log_in
from tests.identity.turning_faces import Turn, camera_jpeg, head_turns

Decision = VerificationAttempt.Decision
# 0.6 s of each photo at 30 frames a second.
SEGMENT_FRAMES = 18


@pytest.fixture(scope="module")
def turns(faces_dir: Path, _imported_base_model) -> list[Turn]:
    """Two LFW people whose photos, as camera frames, span 30 degrees of yaw or more."""
    return head_turns(faces_dir, _imported_base_model, count=2, frame=camera_jpeg)


@pytest.fixture
def left_then_right(monkeypatch):
    monkeypatch.setattr(liveness, "choose_steps", lambda: ("left", "right"))


def write_loop(path: Path, photos: list[Path]) -> Path:
    """A y4m video showing each photo in turn, SEGMENT_FRAMES frames each (chromium loops it)."""
    header = f"YUV4MPEG2 W{FRAME_WIDTH} H{FRAME_HEIGHT} F30:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n".encode()
    with open(path, "wb") as video:
        video.write(header)
        for photo in photos:
            picture = yuv420(camera_frame(photo))
            for _ in range(SEGMENT_FRAMES):
                video.write(b"FRAME\n" + picture)
    return path


def liveness_kiosk() -> str:
    """A kiosk as registered, liveness on (the default); its token."""
    kiosk = Kiosk(name="Front door")
    token = kiosk.new_token()
    kiosk.save()
    assert kiosk.liveness_required
    return token


def set_up_kiosk(page, token: str) -> None:
    page.goto(reverse("kiosk"))
    page.fill("#kiosk-token", token)
    page.click("#kiosk-setup-form button[type=submit]")
    page.locator("#start-button:enabled").wait_for()


def check_with_challenge(page, screenshot: tuple[Path, str] | None = None) -> tuple[str, str, str]:
    """Press the button; the instruction the page showed over the camera (a screenshot of it when
    asked: folder, name), the answer's state and text."""
    page.click("#start-button")
    page.locator("#challenge").wait_for(state="visible", timeout=ANSWER_TIMEOUT_MS)
    shown = page.inner_text("#challenge")
    if screenshot:
        keep_screenshot(page, *screenshot)
    # A selector, not a script: the pages' Content-Security-Policy forbids evaluating strings.
    settled = ", ".join(f'#answer[data-state="{state}"]' for state in SETTLED_STATES)
    page.locator(settled).wait_for(timeout=ANSWER_TIMEOUT_MS)
    return shown, page.get_attribute("#answer", "data-state"), page.inner_text("#answer")


@pytest.mark.slow
def test_a_still_photo_fails_the_challenge(
    verify_worker, live_server, browser_allowed, left_then_right, turns, tmp_path
):
    turn = turns[0]
    enroll("E1", turn.other)
    token = liveness_kiosk()

    with camera_browser(write_y4m(tmp_path / "still.y4m", turn.middle), live_server.url) as page:
        set_up_kiosk(page, token)
        shown, state, text = check_with_challenge(page)
        keep_screenshot(page, tmp_path, "liveness-still-photo-refused")

    assert "Turn your head to your left" in shown
    assert state == "rejected", text
    assert "Follow the instruction on the screen: turn your head to your left, then turn your head to your right." in text
    attempt = VerificationAttempt.objects.get()
    assert (attempt.decision, attempt.liveness_passed, attempt.frames) == (Decision.REJECTED, False, liveness.FRAMES)
    assert not AttendanceEvent.objects.exists()


@pytest.mark.slow
def test_the_same_person_turning_as_asked_passes(
    verify_worker, live_server, browser_allowed, left_then_right, turns, tmp_path
):
    turn = turns[0]
    ann = enroll("E1", turn.other)
    enroll("E2", turns[1].other)
    token = liveness_kiosk()

    with camera_browser(write_loop(tmp_path / "turn.y4m", [turn.low, turn.high]), live_server.url) as page:
        set_up_kiosk(page, token)
        shown, state, text = check_with_challenge(page, screenshot=(tmp_path, "liveness-challenge-shown"))
        keep_screenshot(page, tmp_path, "liveness-head-turn-verified")

    attempt = VerificationAttempt.objects.get()
    assert "Turn your head to your left, then turn your head to your right" in shown
    assert state == "verified", (text, attempt.liveness_reason, turn)
    assert ann.name in text and "checked in" in text
    assert (attempt.matched_employee, attempt.liveness_passed) == (ann, True)
    assert attempt.liveness_reason.startswith("Asked: left, then right. left: yaw moved ")
    assert AttendanceEvent.objects.get().employee == ann


@pytest.mark.slow
def test_frames_of_two_different_people_fail(
    verify_worker, live_server, browser_allowed, left_then_right, turns, tmp_path
):
    ann, bob = turns
    enroll("E1", ann.other)
    enroll("E2", bob.other)
    token = liveness_kiosk()

    # Ann's head on her own right, then Bob's on his own left: the pose moves as asked.
    with camera_browser(write_loop(tmp_path / "two.y4m", [ann.low, bob.high]), live_server.url) as page:
        set_up_kiosk(page, token)
        _, state, text = check_with_challenge(page)
        keep_screenshot(page, tmp_path, "liveness-two-people-refused")

    assert state == "rejected", text
    assert verification.DIFFERENT_PEOPLE.split(".")[0] in text
    attempt = VerificationAttempt.objects.get()
    assert (attempt.reason, attempt.liveness_passed) == (verification.DIFFERENT_PEOPLE, None)
    assert not AttendanceEvent.objects.exists()


@pytest.mark.slow
def test_personal_check_in_asks_for_the_challenge_too(
    verify_worker, live_server, browser_allowed, left_then_right, turns, django_user_model, settings, tmp_path
):
    settings.FRID_LIVENESS_FOR_CHECK_IN = True  # the default
    turn = turns[0]
    ann = enroll("E1", turn.other)
    ann.user = django_user_model.objects.create_user("ann", password=PASSWORD)
    ann.save()

    with camera_browser(write_y4m(tmp_path / "still.y4m", turn.middle), live_server.url) as page:
        log_in(page, "ann")
        _, still_state, still_text = check_with_challenge(page)
    with camera_browser(write_loop(tmp_path / "turn.y4m", [turn.low, turn.high]), live_server.url) as page:
        log_in(page, "ann")
        shown, state, text = check_with_challenge(page)
        keep_screenshot(page, tmp_path, "liveness-check-in-verified")

    assert still_state == "rejected" and "Follow the instruction on the screen" in still_text
    assert "Turn your head to your left" in shown
    assert state == "verified", text
    still, turned = VerificationAttempt.objects.order_by("pk")
    assert (still.liveness_passed, turned.liveness_passed) == (False, True)
    assert (turned.claimed_employee, AttendanceEvent.objects.get().employee) == (ann, ann)
