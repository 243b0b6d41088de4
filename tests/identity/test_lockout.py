"""Lockout (identity.lockout): 5 failed attempts within 3 minutes for one claimed employee number,
one account or one kiosk, and that subject's checks are refused for 15 minutes: audited, answered
429 in the same words whoever is locked out and whether or not the claimed number is anyone's, and
never sent to a verify worker. HR lifts a lockout in the admin (the lift is recorded); an auditor
reads the list; nobody else sees it.

Failures come through the API with a stand-in for the verify worker (its answers are what a real
worker sends: a frame without a face, or a face nobody enrolled is near), or are written into the
audit with a past time, the way the lockout reads them; time moves by writing attempts in the past
or by asking lockout_of about a later moment, never by waiting.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from identity import lockout, roles, tasks, verification
from identity.models import AttemptCapture, Kiosk, LockoutLift, VerificationAttempt
from tests.identity.api_actors import actors, jpeg, token_client, upload, user_in  # noqa: F401 (actors: a fixture)
from training.models import ModelVersion

VERIFY_URL = reverse("api-verify")
LOCKOUTS_URL = reverse("admin:identity_lockoutlift_changelist")
LIFT_URL = reverse("admin:identity_lockoutlift_lift")
Decision = VerificationAttempt.Decision
Mode = VerificationAttempt.Mode
Kind = LockoutLift.Subject
NO_FACE = "No face was found in the frame. Look at the camera."


class StandInWorker:
    """Answers for the verify worker: every frame without a face (a rejection, the person's
    failure), or with a face nobody enrolled is near (not recognised)."""

    def __init__(self, version: ModelVersion):
        self.version = version
        self.checks = 0
        self.face = False

    def __call__(self, frames, *args, **kwargs) -> dict:
        self.checks += 1
        frame = {"faces": 1, "problem": "", "embedding": [0.01] * 128, "quality": {}, "box": [0, 0, 10, 10]} \
            if self.face else {"faces": 0, "problem": NO_FACE, "embedding": None, "quality": None, "box": None}
        return {"version": self.version.pk, "frames": [frame for _ in frames]}


@pytest.fixture
def worker(db, monkeypatch, settings) -> StandInWorker:
    ModelVersion.objects.filter(is_active=True).update(is_active=False)  # the run's imported base, if any
    version = ModelVersion.objects.create(name="stand-in", file="stand-in.keras", sha256="0" * 64, threshold=0.5,
                                          is_active=True)
    stand_in = StandInWorker(version)
    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", stand_in)
    # The stand-in's frames are no challenge's answer: liveness is tested on its own.
    settings.FRID_LIVENESS_FOR_CHECK_IN = False
    return stand_in


@pytest.fixture
def kiosk_client(actors, worker):
    if hasattr(Kiosk, "liveness_required"):
        Kiosk.objects.filter(pk=actors.kiosk.pk).update(liveness_required=False)
    return actors.client("kiosk")


def post(client, frames: int = 1, **fields):
    data = {"image": [upload(jpeg(), f"frame{index}.jpg") for index in range(frames)], **fields}
    return client.post(VERIFY_URL, data, format="multipart", REMOTE_ADDR="10.0.0.7")


def hr_client(username: str):
    """Another HR account (HR may claim any number), so that only the claimed number adds up."""
    user = user_in(roles.HR, username, is_staff=True)
    return token_client(Token.objects.create(user=user).key)


def failures_in_the_past(minutes_ago: list[float], **who) -> None:
    now = timezone.now()
    for minutes in minutes_ago:
        VerificationAttempt.objects.create(decision=Decision.NOT_RECOGNISED, created_at=now - timedelta(minutes=minutes),
                                           **who)


def assert_locked_out(response, worker: StandInWorker, checks_before: int) -> VerificationAttempt:
    assert response.status_code == 429, response.content
    attempt = VerificationAttempt.objects.order_by("-pk").first()
    assert response.json() == {"detail": verification.LOCKED_OUT.format(minutes=15), "decision": "locked_out",
                               "attempt_id": attempt.pk}
    assert (attempt.decision, attempt.http_status) == (Decision.LOCKED_OUT, 429)
    assert worker.checks == checks_before, "a locked-out check was sent to the verify worker"
    return attempt


# --- When it locks --------------------------------------------------------------------------------


def test_five_rejected_checks_lock_a_kiosk_out_and_four_do_not(actors, kiosk_client, worker):
    for _ in range(4):
        assert post(kiosk_client).status_code == 200
    fifth = post(kiosk_client)
    assert fifth.status_code == 200 and fifth.json()["decision"] == "rejected"
    assert worker.checks == 5

    attempt = assert_locked_out(post(kiosk_client, frames=2), worker, 5)
    assert (attempt.mode, attempt.kiosk_id, attempt.frames, attempt.client_address) == (
        Mode.KIOSK, actors.kiosk.pk, 2, "10.0.0.7")
    assert not AttemptCapture.objects.filter(attempt=attempt).exists()  # no frame of a locked-out check is kept


def test_five_failures_lock_an_account_out_whatever_numbers_it_claims(actors, worker):
    hr = actors.client("hr")
    worker.face = True  # not recognised: the stand-in's face is nobody's
    for number in ("E1", "E2"):
        assert post(hr, employee_number=number).json()["decision"] == "not_recognised"
    for number in ("E404", "E405", "E406"):  # refused claims count too: guessing numbers is what this stops
        assert post(hr, employee_number=number).status_code == 404

    assert_locked_out(post(hr, employee_number="E2"), worker, 2)
    # The numbers themselves were tried once each: another HR account still checks E2.
    assert post(hr_client("hugo"), employee_number="E2").status_code == 200
    assert worker.checks == 3


def test_five_failures_lock_a_claimed_number_out_whoever_claims_it(actors, worker):
    for index in range(5):
        assert post(hr_client(f"hr{index}"), employee_number="E1").json()["decision"] == "rejected"
    other = hr_client("hugo")
    assert_locked_out(post(other, employee_number="E1"), worker, 5)
    assert post(other, employee_number="E2").status_code == 200  # the account is not locked out


def test_the_employee_locked_out_of_their_own_number_is_refused_on_the_check_in_page_too(actors, worker):
    employee = actors.client("employee")
    for _ in range(5):
        post(employee)  # no number sent: the page's check claims the account's own
    attempt = assert_locked_out(post(employee), worker, 5)
    assert (attempt.claimed_number, attempt.user_id) == ("E1", actors.employee_user.pk)


def test_failures_spread_over_more_than_three_minutes_do_not_lock(actors, kiosk_client, worker):
    failures_in_the_past([3.5, 2, 1.5, 1], kiosk=actors.kiosk, mode=Mode.KIOSK)
    assert post(kiosk_client).status_code == 200  # the fifth failure, 3.5 minutes after the first
    assert post(kiosk_client).status_code == 200  # the sixth: the last five within 2 minutes
    assert_locked_out(post(kiosk_client), worker, 2)


def test_busy_answers_verified_checks_and_bad_requests_are_not_failures(actors, kiosk_client, worker, monkeypatch):
    for decision, status in [(Decision.BUSY, 503), (Decision.VERIFIED, 200), (Decision.REFUSED, 400),
                             (Decision.REJECTED, 503)]:  # 503 rejected: no model version, not their doing
        for _ in range(5):
            VerificationAttempt.objects.create(mode=Mode.KIOSK, kiosk=actors.kiosk, decision=decision,
                                               http_status=status)
    assert post(kiosk_client).status_code == 200


def test_a_refusal_for_a_lockout_is_not_a_failure_itself(actors):
    subject = lockout.Subject(Kind.KIOSK, str(actors.kiosk.pk))
    failures_in_the_past([10, 10, 10, 10, 10], kiosk=actors.kiosk, mode=Mode.KIOSK)
    for minutes in (9, 8, 7, 6, 5):  # knocking on while locked out
        VerificationAttempt.objects.create(mode=Mode.KIOSK, kiosk=actors.kiosk, decision=Decision.LOCKED_OUT,
                                           http_status=429, created_at=timezone.now() - timedelta(minutes=minutes))
    found = lockout.lockout_of(subject)
    assert found is not None and found.failures == 5
    assert lockout.lockout_of(subject, now=found.until + timedelta(seconds=1)) is None


# --- How long it lasts ----------------------------------------------------------------------------


def test_the_lockout_ends_fifteen_minutes_after_the_last_failure(actors, kiosk_client, worker):
    failures_in_the_past([15.5, 15.4, 15.3, 15.2, 15.1], kiosk=actors.kiosk, mode=Mode.KIOSK)
    assert post(kiosk_client).status_code == 200  # ended 0.1 minutes ago


def test_the_lockout_lasts_until_then(actors, kiosk_client, worker):
    failures_in_the_past([14.5, 14.4, 14.3, 14.2, 14.1], kiosk=actors.kiosk, mode=Mode.KIOSK)
    assert_locked_out(post(kiosk_client), worker, 0)


def test_lockout_of_says_when_it_began_and_ends(actors):
    failures_in_the_past([2, 1.5, 1, 0.5, 0], user=actors.hr, mode=Mode.PERSONAL)
    subject = lockout.Subject(Kind.ACCOUNT, str(actors.hr.pk))
    found = lockout.lockout_of(subject)
    assert found.failures == 5
    assert found.until - found.since == timedelta(minutes=2 + 15)
    assert lockout.lockout_of(subject, now=found.until - timedelta(seconds=1)) == found
    assert lockout.lockout_of(subject, now=found.until) is None


def test_the_numbers_come_from_the_settings(actors, kiosk_client, worker, settings):
    settings.FRID_LOCKOUT_FAILURES = 2
    settings.FRID_LOCKOUT_WINDOW_MINUTES = 1
    settings.FRID_LOCKOUT_MINUTES = 60
    failures_in_the_past([50, 49.5], kiosk=actors.kiosk, mode=Mode.KIOSK)
    response = post(kiosk_client)
    assert response.status_code == 429
    assert response.json()["detail"] == verification.LOCKED_OUT.format(minutes=60)


# --- What it says ---------------------------------------------------------------------------------


def test_the_lockout_says_the_same_for_an_enrolled_number_an_unknown_one_and_a_kiosk(actors, kiosk_client, worker):
    enrolled, unknown = hr_client("hugo"), hr_client("hana")
    for _ in range(5):
        post(enrolled, employee_number="E1")  # rejected frames
        post(unknown, employee_number="E404")  # refused: nobody has it
        post(kiosk_client)
    # New accounts claim them, so that it is the numbers (and the kiosk) that are locked out.
    answers = [post(hr_client("ivan"), employee_number="E1"), post(hr_client("jane"), employee_number="E404"),
               post(kiosk_client)]

    assert {answer.status_code for answer in answers} == {429}
    assert len({(answer.json()["detail"], answer.json()["decision"]) for answer in answers}) == 1
    assert len({tuple(sorted(answer.json())) for answer in answers}) == 1
    detail = answers[0].json()["detail"]
    assert "E1" not in detail and "E404" not in detail and "enrol" not in detail.lower()


def test_an_employee_claiming_another_number_learns_nothing_of_who_is_enrolled(actors, worker):
    employee = actors.client("employee")
    colleague, nobody = post(employee, employee_number="E2"), post(employee, employee_number="E404")
    assert (colleague.status_code, colleague.json()["detail"]) == (nobody.status_code, nobody.json()["detail"])
    assert colleague.status_code == 403
    assert worker.checks == 0


def test_the_locked_out_check_is_audited_with_what_was_claimed(actors, worker):
    failures_in_the_past([1] * 5, mode=Mode.PERSONAL, claimed_number="E404")
    hr = actors.client("hr")
    attempt = assert_locked_out(post(hr, employee_number="E404", direction="in"), worker, 0)
    assert (attempt.mode, attempt.user_id, attempt.claimed_number, attempt.frames) == (
        Mode.PERSONAL, actors.hr.pk, "E404", 1)
    assert attempt.reason == verification.LOCKED_OUT.format(minutes=15)
    listed = hr.get(reverse("api-attempts"), {"decision": "locked_out"}).json()
    assert [row["id"] for row in listed["results"]] == [attempt.pk]


# --- HR lifts it ----------------------------------------------------------------------------------


def test_hr_sees_the_lockouts_and_lifts_one_and_the_next_check_goes_through(actors, kiosk_client, worker):
    failures_in_the_past([1] * 5, kiosk=actors.kiosk, mode=Mode.KIOSK)
    failures_in_the_past([1] * 5, mode=Mode.PERSONAL, claimed_number="E404")
    browser = actors.page_client("hr")

    page = browser.get(LOCKOUTS_URL).content.decode()
    assert "kiosk Main entrance" in page
    assert "employee number E404: nobody has this number" in page
    assert page.count('class="button lift-lockout"') == 2

    response = browser.post(LIFT_URL, {"subject": Kind.KIOSK, "key": actors.kiosk.pk})
    assert response.status_code == 302 and response.url == LOCKOUTS_URL
    lift = LockoutLift.objects.get()
    assert (lift.subject, lift.key, lift.lifted_by_id, lift.failures) == (Kind.KIOSK, str(actors.kiosk.pk),
                                                                        actors.hr.pk, 5)
    assert timezone.now() - lift.lifted_at < timedelta(minutes=1)

    answer = post(kiosk_client)
    assert answer.status_code == 200 and worker.checks == 1
    page = browser.get(LOCKOUTS_URL).content.decode()
    assert page.count('class="button lift-lockout"') == 1  # E404 is still locked out
    assert '<td class="field-lifted_by_shown">harriet</td>' in page  # who lifted the kiosk's, recorded


def test_after_a_lift_earlier_failures_no_longer_count(actors, kiosk_client, worker):
    failures_in_the_past([1] * 5, kiosk=actors.kiosk, mode=Mode.KIOSK)
    lockout.lift(lockout.Subject(Kind.KIOSK, str(actors.kiosk.pk)), by=actors.hr)
    for _ in range(4):
        assert post(kiosk_client).status_code == 200
    assert post(kiosk_client).status_code == 200
    assert post(kiosk_client).status_code == 429  # five new failures


def test_lifting_a_lockout_that_is_over_records_nothing(actors):
    browser = actors.page_client("hr")
    response = browser.post(LIFT_URL, {"subject": Kind.EMPLOYEE, "key": "E1"}, follow=True)
    assert "already over" in response.content.decode()
    assert not LockoutLift.objects.exists()


def test_an_auditor_reads_the_lockouts_but_may_not_lift_them(actors):
    failures_in_the_past([1] * 5, kiosk=actors.kiosk, mode=Mode.KIOSK)
    auditor = actors.page_client("auditor")
    page = auditor.get(LOCKOUTS_URL)
    assert page.status_code == 200
    assert "kiosk Main entrance" in page.content.decode() and "lift-lockout" not in page.content.decode()
    assert auditor.post(LIFT_URL, {"subject": Kind.KIOSK, "key": actors.kiosk.pk}).status_code == 403
    assert not LockoutLift.objects.exists()
    assert lockout.lockout_of(lockout.Subject(Kind.KIOSK, str(actors.kiosk.pk))) is not None


def test_an_employee_may_not_see_or_lift_lockouts(actors):
    failures_in_the_past([1] * 5, user=actors.employee_user, mode=Mode.PERSONAL)
    employee = actors.page_client("employee")  # not staff: the admin sends them to log in
    assert employee.get(LOCKOUTS_URL).status_code == 302
    assert employee.post(LIFT_URL, {"subject": Kind.ACCOUNT, "key": actors.employee_user.pk}).status_code == 302
    assert not LockoutLift.objects.exists()


def test_lifts_are_read_only_in_the_admin(actors):
    failures_in_the_past([1] * 5, kiosk=actors.kiosk, mode=Mode.KIOSK)
    lift = lockout.lift(lockout.Subject(Kind.KIOSK, str(actors.kiosk.pk)), by=actors.hr)
    browser = actors.page_client("hr")
    assert browser.get(reverse("admin:identity_lockoutlift_add")).status_code == 403
    assert browser.post(reverse("admin:identity_lockoutlift_delete", args=[lift.pk]), {"post": "yes"}).status_code == 403
    assert LockoutLift.objects.filter(pk=lift.pk).exists()
