"""Purging captured frames (identity.tasks.purge_expired_captures, hourly by beat, and
`manage.py purge_captures` in the foreground): frames older than FRID_CAPTURE_RETENTION_DAYS go,
newer ones stay, and the attempts they belonged to stay exactly as they were."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.forms.models import model_to_dict
from django.utils import timezone

from identity import tasks
from identity.models import AttemptCapture, VerificationAttempt

pytestmark = pytest.mark.django_db

JPEG = b"\xff\xd8\xff\xe0" + b"frame" * 20


def attempt_with_frames(age: timedelta, frames: int = 2) -> VerificationAttempt:
    """An attempt made ``age`` ago with its captured frames, as the verify flow records them."""
    created_at = timezone.now() - age
    attempt = VerificationAttempt.objects.create(
        mode=VerificationAttempt.Mode.KIOSK, decision=VerificationAttempt.Decision.NOT_RECOGNISED,
        reason="Not recognised.", distance=0.7, threshold=0.5, frames=frames, created_at=created_at,
    )
    for index in range(frames):
        AttemptCapture.objects.create(attempt=attempt, index=index, image=JPEG, created_at=created_at)
    return attempt


def attempts_as_stored() -> list[dict]:
    return [model_to_dict(attempt) for attempt in VerificationAttempt.objects.order_by("pk")]


def test_it_deletes_the_frames_older_than_the_retention_period_and_keeps_the_newer(settings):
    settings.FRID_CAPTURE_RETENTION_DAYS = 30
    old = attempt_with_frames(timedelta(days=30, minutes=1))
    recent = attempt_with_frames(timedelta(days=29, hours=23))

    deleted = tasks.purge_expired_captures()

    assert deleted == 2
    assert not AttemptCapture.objects.filter(attempt=old).exists()
    assert list(AttemptCapture.objects.filter(attempt=recent).values_list("index", flat=True)) == [0, 1]


def test_the_attempts_of_purged_frames_stay_exactly_as_they_were():
    attempt_with_frames(timedelta(days=400), frames=3)
    attempt_with_frames(timedelta(days=1))
    before = attempts_as_stored()

    tasks.purge_expired_captures()

    assert AttemptCapture.objects.count() == 2
    assert attempts_as_stored() == before


def test_it_follows_the_configured_retention(settings):
    settings.FRID_CAPTURE_RETENTION_DAYS = 1
    attempt_with_frames(timedelta(days=2))
    attempt_with_frames(timedelta(hours=12))

    assert tasks.purge_expired_captures() == 2
    assert AttemptCapture.objects.count() == 2


def test_nothing_to_purge_deletes_nothing():
    attempt_with_frames(timedelta(days=1))

    assert tasks.purge_expired_captures() == 0
    assert AttemptCapture.objects.count() == 2


def test_the_command_purges_in_the_foreground_and_says_how_many_frames_went(settings):
    settings.FRID_CAPTURE_RETENTION_DAYS = 30
    attempt_with_frames(timedelta(days=31), frames=3)
    attempt_with_frames(timedelta(days=1))
    before = attempts_as_stored()
    output = StringIO()

    call_command("purge_captures", stdout=output)

    assert output.getvalue().strip() == "Deleted 3 captured frames older than 30 days; the attempts are kept."
    assert AttemptCapture.objects.count() == 2
    assert attempts_as_stored() == before


def test_beat_runs_the_purge_every_hour():
    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-captures"]

    assert (entry["task"], entry["schedule"]) == ("identity.tasks.purge_expired_captures", 3600.0)
    assert tasks.purge_expired_captures.name == entry["task"]
