"""Personal check-in (1:1) in a real browser: the logged-in employee verifies that the face at the
camera is theirs; /api/v1/verify/ answers through a real verify worker.

Who may use it: any logged-in user linked to an employee, and only as that employee; the
anonymous are sent to the login page; an account linked to no employee is told to ask HR.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from identity.models import AttendanceEvent, Employee, VerificationAttempt
from tests.identity.browser import (  # noqa: F401 (browser_allowed, verify_worker: fixtures)
    browser_allowed,
    camera_browser,
    check,
    enroll,
    keep_screenshot,
    people_with_two_photos,
    verify_worker,
    write_y4m,
)

PASSWORD = "a-long-password-1"


def log_in(page, username: str) -> None:
    """Through the login page, as a person would: the check-in page sends them there first."""
    page.goto(reverse("check-in"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**" + reverse("check-in"))
    page.locator("#start-button:enabled").wait_for()


def test_the_anonymous_are_sent_to_the_login_page(client):
    response = client.get(reverse("check-in"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('check-in')}"


def test_an_account_linked_to_no_employee_is_refused_and_told_to_ask_hr(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitor", password=PASSWORD))

    response = client.get(reverse("check-in"))

    assert response.status_code == 403
    assert b"Your account is not linked to an employee: ask HR" in response.content
    assert b"verify.js" not in response.content


def test_the_page_claims_the_employee_logged_in_and_sets_the_csrf_cookie(client, django_user_model):
    user = django_user_model.objects.create_user("ann", password=PASSWORD)
    Employee.objects.create(employee_number="E7", name="Ann Example", user=user)
    client.force_login(user)

    response = client.get(reverse("check-in"))

    assert response.status_code == 200
    assert response.context["verify_config"]["employeeNumber"] == "E7"
    assert response.context["verify_config"]["mode"] == "personal"
    assert "csrftoken" in response.cookies  # the script sends it back in X-CSRFToken


@pytest.mark.slow
def test_the_employee_is_verified_with_their_own_face_and_refused_with_someone_elses(
    verify_worker, live_server, browser_allowed, faces_dir, django_user_model, tmp_path, settings
):
    settings.FRID_LIVENESS_FOR_CHECK_IN = False  # still photos: liveness is tested in test_liveness_browser.py
    (ann_enrolled, ann_other), (bob_enrolled, bob_other) = people_with_two_photos(faces_dir, 2)
    ann = enroll("E1", ann_enrolled)
    enroll("E2", bob_enrolled)
    ann.user = django_user_model.objects.create_user("ann", password=PASSWORD)
    ann.save()

    with camera_browser(write_y4m(tmp_path / "ann.y4m", ann_other), live_server.url) as page:
        log_in(page, "ann")
        state = check(page)
        text = page.inner_text("#answer")
        keep_screenshot(page, tmp_path, "check-in-verified")

    assert state == "verified", text
    event = AttendanceEvent.objects.get()
    assert (event.employee, event.direction) == (ann, "in")
    assert f"checked in {timezone.localtime(event.occurred_at):%H:%M}" in text

    # Bob, enrolled as another employee, at Ann's logged-in computer.
    with camera_browser(write_y4m(tmp_path / "bob.y4m", bob_other), live_server.url) as page:
        log_in(page, "ann")
        state = check(page)
        text = page.inner_text("#answer")
        keep_screenshot(page, tmp_path, "check-in-someone-elses-face")

    assert state == "not_recognised", text
    assert f"This face is not {ann.name}'s" in text
    assert AttendanceEvent.objects.count() == 1  # still only Ann's own check-in
    refused = VerificationAttempt.objects.exclude(decision=VerificationAttempt.Decision.VERIFIED).get()
    assert refused.claimed_employee == ann
