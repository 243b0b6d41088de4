"""Active liveness (identity.liveness): the server's rules.

A kiosk with liveness on (the default) and personal check-in (FRID_LIVENESS_FOR_CHECK_IN, on by
default) ask POST /api/v1/verify/challenge/ for a random instruction and its nonce; the check sends
the frames taken while the person followed it, with the nonce. The server alone decides: the nonce
must be this kiosk's or user's, unused and unexpired (it is used up by the check); every frame one
usable face of one person; and the head's pose (from the landmarks) moving as asked, in order.

First the rule on hand-made poses, then the challenges through the API (no worker is needed: those
requests end before any frame is analysed), then real LFW faces analysed in this process exactly as
the verify worker analyses them (tasks.embed_frames, called here).
"""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from identity import liveness, tasks, verification
from identity.models import AttendanceEvent, Kiosk, LivenessChallenge, VerificationAttempt
from tests.identity.api_actors import actors, jpeg, token_client, upload  # noqa: F401 (actors: a fixture)
from tests.identity.real_faces import enroll
from tests.identity.turning_faces import Turn, head_turns

Decision = VerificationAttempt.Decision
KIOSK = VerificationAttempt.Mode.KIOSK
CHALLENGE_URL = reverse("api-verify-challenge")
VERIFY_URL = reverse("api-verify")
LEFT_THEN_RIGHT = ("left", "right")
FOLLOW_LEFT_THEN_RIGHT = (
    "Follow the instruction on the screen: turn your head to your left, then turn your head to your right. "
    "Move slowly while the frames are taken."
)


def poses(*yaws: float, pitches: tuple[float, ...] = ()) -> list[dict]:
    return [{"yaw": yaw, "pitch": pitches[index] if pitches else 0.0} for index, yaw in enumerate(yaws)]


# --- The rule: poses in, verdict out ------------------------------------------------------------


def test_a_still_head_fails_with_the_instruction_in_plain_words():
    verdict = liveness.judge(LEFT_THEN_RIGHT, poses(*[3.0] * 10))

    assert not verdict.passed
    assert verdict.reason == FOLLOW_LEFT_THEN_RIGHT
    assert verdict.record == "Asked: left, then right. left: not done (yaw moved at most 0° that way, 12° needed)."


def test_turning_left_then_right_passes_and_the_audit_says_how_far():
    # Left is the yaw rising (the face turns towards the right of the unmirrored picture).
    verdict = liveness.judge(LEFT_THEN_RIGHT, poses(0, 5, 14, 20, 8, -6, -10))

    assert verdict.passed and verdict.reason == ""
    # Left: 0 -> 14 at the third frame; right: 20 -> 8 at the fifth, counted from there on.
    assert verdict.record == "Asked: left, then right. left: yaw moved 14° by frame 3; right: yaw moved 12° by frame 5."


def test_the_movements_must_come_in_the_asked_order():
    right_then_left = poses(0, -14, -20, -5, 10)

    assert liveness.judge(("right", "left"), right_then_left).passed
    verdict = liveness.judge(LEFT_THEN_RIGHT, right_then_left)
    assert not verdict.passed
    assert "right: not done" in verdict.record


def test_a_small_movement_is_not_enough():
    assert not liveness.judge(LEFT_THEN_RIGHT, poses(0, 6, 11, 0, -10)).passed
    assert liveness.judge(LEFT_THEN_RIGHT, poses(0, 6, 12, 0, -10)).passed  # 12 degrees exactly


def test_looking_up_is_the_pitch_falling():
    frames = poses(0, 0, 0, 15, 15, 15, pitches=(0, -4, -11, -11, -11, -11))

    assert liveness.judge(("up", "left"), frames).passed
    assert not liveness.judge(("left", "up"), frames).passed  # looked up first, then turned


def test_the_challenges_are_drawn_at_random_and_each_includes_a_turn():
    drawn = {liveness.choose_steps() for _ in range(200)}

    assert len(drawn) > 1 and drawn <= set(liveness.CHALLENGES)
    assert all({"left", "right"} & set(steps) for steps in liveness.CHALLENGES)
    assert liveness.instruction(("up", "right")) == "Look up, then turn your head to your right"


# --- Challenges: issued, bound to who asked, single use, expiring ------------------------------


@pytest.fixture(autouse=True)
def no_worker_unless_asked(monkeypatch):
    """Frames reach a verify worker only in the tests that give one (``in_process_worker``)."""

    def contacted(frames):
        pytest.fail("the frames were sent to a verify worker; the request should have been refused first")

    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", contacted)


def post_check(client, frames: list[bytes], **fields):
    data = {"image": [upload(frame, f"frame{index}.jpg") for index, frame in enumerate(frames)], **fields}
    return client.post(VERIFY_URL, data, format="multipart")


def test_a_kiosk_is_given_a_challenge_to_follow(actors, settings):
    settings.FRID_LIVENESS_SECONDS = 15
    before = timezone.now()

    response = actors.client("kiosk").post(CHALLENGE_URL)

    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["required"] is True
    assert tuple(answer["steps"]) in liveness.CHALLENGES
    assert answer["instructions"] == liveness.instruction(answer["steps"])
    assert answer["step_instructions"] == [liveness.instruction([step]) for step in answer["steps"]]
    assert (answer["valid_seconds"], answer["frames"], answer["frame_interval_ms"]) == (15, 10, 300)
    challenge = LivenessChallenge.objects.get()
    # Only the nonce's hash is kept, with whom it was issued to.
    assert challenge.nonce_hash == LivenessChallenge.hash_nonce(answer["challenge"]) != answer["challenge"]
    assert (challenge.kiosk, challenge.user, challenge.steps, challenge.used_at) == (
        actors.kiosk, None, answer["steps"], None
    )
    assert timedelta(seconds=15) <= challenge.expires_at - before <= timedelta(seconds=16)
    assert answer["expires_at"] == challenge.expires_at.isoformat()


def test_a_kiosk_with_liveness_off_is_told_that_none_is_needed(actors):
    Kiosk.objects.filter(pk=actors.kiosk.pk).update(liveness_required=False)

    response = actors.client("kiosk").post(CHALLENGE_URL)

    assert (response.status_code, response.json()) == (200, {"required": False})
    assert not LivenessChallenge.objects.exists()


def test_a_disabled_kiosk_gets_no_challenge_and_the_refusal_is_audited(actors):
    Kiosk.objects.filter(pk=actors.kiosk.pk).update(is_active=False)

    response = actors.client("kiosk").post(CHALLENGE_URL)

    assert response.status_code == 403
    attempt = VerificationAttempt.objects.get()
    assert (attempt.decision, attempt.reason, attempt.kiosk) == (Decision.REFUSED, verification.KIOSK_DISABLED,
                                                                 actors.kiosk)
    assert response.json()["detail"] == verification.KIOSK_DISABLED
    assert not LivenessChallenge.objects.exists()


def test_personal_check_in_asks_for_liveness_unless_it_is_turned_off(actors, settings):
    settings.FRID_LIVENESS_FOR_CHECK_IN = True
    issued = actors.client("employee").post(CHALLENGE_URL)
    settings.FRID_LIVENESS_FOR_CHECK_IN = False
    not_needed = actors.client("employee").post(CHALLENGE_URL)

    assert issued.status_code == 201
    assert LivenessChallenge.objects.get().user == actors.employee_user
    assert (not_needed.status_code, not_needed.json()) == (200, {"required": False})


@pytest.mark.parametrize("role, status", [("auditor", 403), ("anonymous", 401)])
def test_only_those_who_may_verify_get_a_challenge(actors, role, status):
    assert actors.client(role).post(CHALLENGE_URL).status_code == status
    assert not LivenessChallenge.objects.exists()


def test_a_check_without_a_challenge_is_refused_where_liveness_is_on(actors):
    response = post_check(actors.client("kiosk"), [jpeg()] * 3)

    assert response.status_code == 400
    attempt = VerificationAttempt.objects.get()
    assert (attempt.decision, attempt.reason) == (Decision.REFUSED, liveness.CHALLENGE_NEEDED)
    assert attempt.liveness_passed is None


def test_a_nonce_is_good_for_one_check_only(actors, monkeypatch):
    def busy(frames):
        raise tasks.VerificationBusy()

    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", busy)
    nonce = actors.client("kiosk").post(CHALLENGE_URL).json()["challenge"]

    first = post_check(actors.client("kiosk"), [jpeg()] * 10, challenge=nonce)
    again = post_check(actors.client("kiosk"), [jpeg()] * 10, challenge=nonce)

    assert first.status_code == 503  # it reached the worker: the nonce was used
    assert LivenessChallenge.objects.get().used_at is not None
    assert (again.status_code, again.json()["detail"]) == (400, liveness.USED_CHALLENGE)
    busy_attempt, refused = VerificationAttempt.objects.order_by("pk")
    assert busy_attempt.liveness_reason.startswith("Asked: ") and "Not judged" in busy_attempt.liveness_reason
    assert (refused.decision, refused.reason) == (Decision.REFUSED, liveness.USED_CHALLENGE)


def test_an_expired_challenge_is_refused(actors, settings):
    settings.FRID_LIVENESS_SECONDS = 12
    nonce = actors.client("kiosk").post(CHALLENGE_URL).json()["challenge"]
    LivenessChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post_check(actors.client("kiosk"), [jpeg()] * 10, challenge=nonce)

    assert response.status_code == 400
    assert response.json()["detail"] == liveness.EXPIRED_CHALLENGE.format(seconds=12)
    assert LivenessChallenge.objects.get().used_at is None


def test_a_challenge_is_refused_from_anyone_but_who_it_was_issued_to(actors):
    other = Kiosk(name="Back door")
    other_token = other.new_token()
    other.save()
    nonce = actors.client("kiosk").post(CHALLENGE_URL).json()["challenge"]

    from_another_kiosk = post_check(token_client(other_token), [jpeg()] * 10, challenge=nonce)
    from_an_employee = post_check(actors.client("employee"), [jpeg()] * 10, challenge=nonce)
    made_up = post_check(actors.client("kiosk"), [jpeg()] * 10, challenge="not-a-nonce")

    for response in (from_another_kiosk, from_an_employee, made_up):
        assert (response.status_code, response.json()["detail"]) == (400, liveness.UNKNOWN_CHALLENGE)
    assert LivenessChallenge.objects.get().used_at is None  # still the kiosk's to use


@pytest.mark.parametrize("count", [3, 13])
def test_a_check_with_a_challenge_needs_six_to_twelve_frames(actors, count):
    nonce = actors.client("kiosk").post(CHALLENGE_URL).json()["challenge"]

    response = post_check(actors.client("kiosk"), [jpeg()] * count, challenge=nonce)

    assert response.status_code == 400
    assert response.json()["detail"] == liveness.WRONG_FRAME_COUNT.format(count=count, minimum=6, maximum=12)
    assert LivenessChallenge.objects.get().used_at is None  # refused before it was used


def test_challenges_past_use_are_deleted_as_new_ones_are_issued(actors):
    old = liveness.issue(kiosk=actors.kiosk, now=timezone.now() - timedelta(minutes=5))
    fresh = liveness.issue(kiosk=actors.kiosk)

    assert list(LivenessChallenge.objects.all()) == [fresh.challenge]
    assert old.challenge.pk != fresh.challenge.pk


def test_the_admin_turns_liveness_off_for_one_kiosk(admin_client, actors):
    url = reverse("admin:identity_kiosk_change", args=[actors.kiosk.pk])
    page = admin_client.get(url)
    assert b'name="liveness_required"' in page.content and b"checked" in page.content

    response = admin_client.post(url, {"name": actors.kiosk.name, "location": "", "is_active": "on"})

    assert response.status_code == 302
    assert not Kiosk.objects.get(pk=actors.kiosk.pk).liveness_required


# --- Real faces, analysed in this process as the verify worker analyses them --------------------


@pytest.fixture(scope="module")
def turns(faces_dir: Path, _imported_base_model) -> list[Turn]:
    """Two LFW people, each with photos whose estimated yaw spans 30 degrees or more."""
    return head_turns(faces_dir, _imported_base_model, count=2)


@pytest.fixture
def in_process_worker(monkeypatch, base_model_version, settings, tmp_path):
    """The verify worker's task run here, on the frames as they would be sent to it."""
    settings.MEDIA_ROOT = tmp_path / "media"

    def embed_here(frames: list[bytes]) -> dict:
        return tasks.embed_frames([base64.b64encode(frame).decode("ascii") for frame in frames])

    monkeypatch.setattr(tasks, "_embed_on_a_verify_worker", embed_here)


@pytest.fixture
def left_then_right(monkeypatch):
    """Every challenge asks: turn left, then right."""
    monkeypatch.setattr(liveness, "choose_steps", lambda: LEFT_THEN_RIGHT)


def liveness_kiosk(**fields) -> Kiosk:
    kiosk = Kiosk(name="Front door", **fields)
    kiosk.new_token()
    kiosk.save()
    return kiosk


def challenged_check(kiosk: Kiosk, photos: list[Path]) -> verification.Outcome:
    nonce = liveness.issue(kiosk=kiosk).nonce
    return tasks.verify(verification.Check(KIOSK, [photo.read_bytes() for photo in photos], kiosk=kiosk, nonce=nonce))


def turning_left_then_right(turn: Turn) -> list[Path]:
    """The head from its own right to its own left (the yaw rising), and back."""
    return [turn.low, turn.low, turn.middle, turn.high, turn.high, turn.middle, turn.low, turn.low]


@pytest.mark.slow
def test_a_still_photo_held_to_the_camera_fails(in_process_worker, left_then_right, turns):
    turn = turns[0]
    enroll("E1", turn.other)
    kiosk = liveness_kiosk()

    outcome = challenged_check(kiosk, [turn.middle] * 10)

    attempt = outcome.attempt
    assert (attempt.decision, attempt.reason) == (Decision.REJECTED, FOLLOW_LEFT_THEN_RIGHT)
    assert attempt.liveness_passed is False
    assert attempt.liveness_reason.startswith("Asked: left, then right. left: not done (yaw moved at most 0°")
    assert outcome.as_json()["employee"] is None and outcome.as_json()["liveness_passed"] is False
    assert attempt.matched_employee is None and not AttendanceEvent.objects.exists()


@pytest.mark.slow
def test_one_persons_photos_ordered_by_yaw_pass_as_a_head_turn(in_process_worker, left_then_right, turns):
    turn = turns[0]
    ann = enroll("E1", turn.other)
    enroll("E2", turns[1].other)
    kiosk = liveness_kiosk()

    outcome = challenged_check(kiosk, turning_left_then_right(turn))

    attempt = outcome.attempt
    assert attempt.decision == Decision.VERIFIED, (attempt.reason, attempt.liveness_reason, turn)
    assert attempt.matched_employee == ann and outcome.event.employee == ann
    assert attempt.liveness_passed is True and outcome.as_json()["liveness_passed"] is True
    assert attempt.liveness_reason.startswith("Asked: left, then right. left: yaw moved ")
    # The audit keeps each frame's pose, as the worker measured it.
    assert attempt.frames == 8 and all("yaw" in frame and "pitch" in frame for frame in attempt.quality)


@pytest.mark.slow
def test_the_same_turn_fails_a_challenge_that_asks_the_other_way_first(in_process_worker, monkeypatch, turns):
    monkeypatch.setattr(liveness, "choose_steps", lambda: ("right", "left"))
    turn = turns[0]
    enroll("E1", turn.other)

    outcome = challenged_check(liveness_kiosk(), turning_left_then_right(turn))

    assert outcome.attempt.decision == Decision.REJECTED
    assert outcome.attempt.reason.startswith("Follow the instruction on the screen: turn your head to your right, then")
    assert outcome.attempt.liveness_passed is False
    assert not AttendanceEvent.objects.exists()


@pytest.mark.slow
def test_frames_of_two_different_people_fail_even_when_they_turn_as_asked(in_process_worker, left_then_right, turns):
    ann, bob = turns
    enroll("E1", ann.other)
    enroll("E2", bob.other)

    # Ann's head on her own right, then Bob's on his own left: the pose moves as asked.
    outcome = challenged_check(liveness_kiosk(), [ann.low, ann.low, ann.low, bob.high, bob.high, bob.high, ann.low])

    attempt = outcome.attempt
    assert (attempt.decision, attempt.reason) == (Decision.REJECTED, verification.DIFFERENT_PEOPLE)
    assert attempt.liveness_passed is None and "Not judged" in attempt.liveness_reason
    assert not AttendanceEvent.objects.exists()


@pytest.mark.slow
def test_a_nonce_that_verified_someone_is_refused_the_second_time(in_process_worker, left_then_right, turns):
    turn = turns[0]
    enroll("E1", turn.other)
    kiosk = liveness_kiosk()
    nonce = liveness.issue(kiosk=kiosk).nonce
    frames = [photo.read_bytes() for photo in turning_left_then_right(turn)]

    first = tasks.verify(verification.Check(KIOSK, frames, kiosk=kiosk, nonce=nonce))
    replayed = tasks.verify(verification.Check(KIOSK, frames, kiosk=kiosk, nonce=nonce))

    assert first.attempt.decision == Decision.VERIFIED, first.attempt.reason
    assert (replayed.attempt.decision, replayed.attempt.reason) == (Decision.REFUSED, liveness.USED_CHALLENGE)
    assert AttendanceEvent.objects.count() == 1


@pytest.mark.slow
def test_a_kiosk_with_liveness_off_verifies_a_burst_as_before(in_process_worker, turns):
    turn = turns[0]
    ann = enroll("E1", turn.other)
    kiosk = liveness_kiosk(liveness_required=False)

    outcome = tasks.verify(verification.Check(KIOSK, [turn.middle.read_bytes()] * 3, kiosk=kiosk))

    attempt = outcome.attempt
    assert attempt.decision == Decision.VERIFIED and attempt.matched_employee == ann, attempt.reason
    assert (attempt.liveness_passed, attempt.liveness_reason) == (None, "")
    assert not LivenessChallenge.objects.exists()


@pytest.mark.slow
def test_at_personal_check_in_the_challenge_is_the_employees_own(in_process_worker, left_then_right, turns,
                                                                  django_user_model, settings):
    settings.FRID_LIVENESS_FOR_CHECK_IN = True
    turn = turns[0]
    ann = enroll("E1", turn.other)
    ann.user = django_user_model.objects.create_user("ann")
    ann.save()
    colleague = django_user_model.objects.create_user("colin")
    frames = [photo.read_bytes() for photo in turning_left_then_right(turn)]
    PERSONAL = VerificationAttempt.Mode.PERSONAL

    without = tasks.verify(verification.Check(PERSONAL, frames[:3], user=ann.user))  # a plain burst
    someone_elses = tasks.verify(verification.Check(PERSONAL, frames, user=ann.user,
                                                    nonce=liveness.issue(user=colleague).nonce))
    own = tasks.verify(verification.Check(PERSONAL, frames, user=ann.user, nonce=liveness.issue(user=ann.user).nonce))

    assert (without.attempt.decision, without.attempt.reason) == (Decision.REFUSED, liveness.CHALLENGE_NEEDED)
    assert (someone_elses.attempt.decision, someone_elses.attempt.reason) == (Decision.REFUSED,
                                                                              liveness.UNKNOWN_CHALLENGE)
    assert own.attempt.decision == Decision.VERIFIED, (own.attempt.reason, own.attempt.liveness_reason)
    assert (own.event.employee, own.attempt.liveness_passed) == (ann, True)
