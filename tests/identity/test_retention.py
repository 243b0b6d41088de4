"""Retention (identity.retention and its periodic tasks): rejected enrollment photos and finished
bulk-import zips are deleted once past their periods, and the rows stay as a record without the
files; everything younger, still in use, or of another kind is left alone. Timestamps are set in
the past; nothing waits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.utils import timezone

from identity import retention, tasks
from identity.models import BulkImport, Employee, FaceTemplate

pytestmark = pytest.mark.django_db

REJECTED, READY, PENDING = FaceTemplate.Status.REJECTED, FaceTemplate.Status.READY, FaceTemplate.Status.PENDING
DONE, FAILED, RUNNING, QUEUED = (BulkImport.Status.DONE, BulkImport.Status.FAILED, BulkImport.Status.RUNNING,
                                 BulkImport.Status.QUEUED)


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FRID_REJECTED_PHOTO_RETENTION_DAYS = 30
    settings.FRID_IMPORT_ZIP_RETENTION_DAYS = 1
    return settings.MEDIA_ROOT


@pytest.fixture
def employee() -> Employee:
    return Employee.objects.create(employee_number="E1", name="Eve Example")


def photo(employee: Employee, status: str, days_ago: float, lfw_bytes: bytes, **fields) -> FaceTemplate:
    template = FaceTemplate(employee=employee, status=status, original_filename="eve.jpg",
                            reason="Several faces were found." if status == REJECTED else "", **fields)
    template.source_image.save("eve.jpg", ContentFile(lfw_bytes), save=False)
    template.save()
    FaceTemplate.objects.filter(pk=template.pk).update(processed_at=timezone.now() - timedelta(days=days_ago))
    return template


@pytest.fixture
def lfw_bytes(faces_dir) -> bytes:
    first = sorted(path for path in (faces_dir / "lfw").iterdir() if path.is_dir())[0]
    return sorted(first.glob("*.jpg"))[0].read_bytes()


def exists(name: str) -> bool:
    return bool(name) and (Path(django_settings.MEDIA_ROOT) / name).exists()


# --- Rejected photos ------------------------------------------------------------------------------


def test_a_rejected_photo_past_its_retention_period_is_deleted_and_its_row_kept_as_a_record(employee, lfw_bytes):
    old = photo(employee, REJECTED, 31, lfw_bytes, found_boxes=[[1, 2, 30, 40], [50, 2, 90, 40]],
                quality={"sharpness": 10.0})
    name = old.source_image.name
    assert exists(name)

    assert retention.purge_rejected_photos() == 1

    assert not exists(name)
    kept = FaceTemplate.objects.get(pk=old.pk)
    assert (kept.status, kept.original_filename, kept.reason) == (REJECTED, "eve.jpg", "Several faces were found.")
    assert not kept.source_image and not kept.chip
    assert (kept.found_boxes, kept.box, kept.landmarks, kept.quality) == (None, None, None, None)


def test_a_rejected_photo_within_its_retention_period_is_kept(employee, lfw_bytes):
    young = photo(employee, REJECTED, 29, lfw_bytes)

    assert retention.purge_rejected_photos() == 0

    assert exists(young.source_image.name)
    assert FaceTemplate.objects.get(pk=young.pk).source_image


def test_ready_and_pending_photos_are_never_deleted_however_old(employee, lfw_bytes):
    ready = photo(employee, READY, 400, lfw_bytes, embedding=[0.0] * 128,
                  model_version=_version())
    pending = photo(employee, PENDING, 400, lfw_bytes)

    assert retention.purge_rejected_photos() == 0

    assert exists(ready.source_image.name) and exists(pending.source_image.name)


def test_the_retention_period_is_a_setting(employee, lfw_bytes, settings):
    template = photo(employee, REJECTED, 3, lfw_bytes)
    settings.FRID_REJECTED_PHOTO_RETENTION_DAYS = 2

    assert retention.purge_rejected_photos() == 1
    assert not exists(template.source_image.name)


def test_a_rejected_photo_is_judged_by_when_it_was_rejected_not_uploaded(employee, lfw_bytes):
    # Uploaded long ago, rejected (checked again) yesterday: HR has not had its 30 days yet.
    template = photo(employee, REJECTED, 1, lfw_bytes)
    FaceTemplate.objects.filter(pk=template.pk).update(created_at=timezone.now() - timedelta(days=90))

    assert retention.purge_rejected_photos() == 0


def test_purging_twice_deletes_nothing_more(employee, lfw_bytes):
    photo(employee, REJECTED, 31, lfw_bytes)
    assert retention.purge_rejected_photos() == 1

    assert retention.purge_rejected_photos() == 0


def test_the_periodic_task_purges_rejected_photos_and_is_scheduled(employee, lfw_bytes):
    template = photo(employee, REJECTED, 31, lfw_bytes)

    assert tasks.purge_rejected_photos.apply().get() == 1

    assert not exists(template.source_image.name)
    entry = django_settings.CELERY_BEAT_SCHEDULE["purge-rejected-photos"]
    assert entry["task"] == "identity.tasks.purge_rejected_photos" and entry["schedule"] <= 24 * 3600


def _version():
    from training.models import ModelVersion

    return ModelVersion.objects.create(name="retention-test", file="x.keras", sha256="0" * 64, threshold=0.5)


# --- Bulk-import zips -----------------------------------------------------------------------------


def bulk(status: str, finished_days_ago: float | None) -> BulkImport:
    finished = timezone.now() - timedelta(days=finished_days_ago) if finished_days_ago is not None else None
    record = BulkImport(status=status, finished_at=finished, report='{"version": 1}')
    record.archive.save("photos.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18), save=False)
    record.save()
    return record


@pytest.mark.parametrize("status", [DONE, FAILED])
def test_a_finished_imports_zip_past_its_retention_period_is_deleted_and_the_import_kept(status):
    old = bulk(status, 2)
    name = old.archive.name
    assert exists(name)

    assert retention.purge_import_zips() == 1

    assert not exists(name)
    kept = BulkImport.objects.get(pk=old.pk)
    assert (kept.status, kept.report, bool(kept.archive)) == (status, '{"version": 1}', False)


def test_a_zip_finished_within_its_retention_period_is_kept():
    young = bulk(DONE, 0.5)

    assert retention.purge_import_zips() == 0
    assert exists(young.archive.name)


@pytest.mark.parametrize("status", [QUEUED, RUNNING])
def test_the_zip_of_an_import_not_finished_is_never_deleted(status):
    waiting = bulk(status, None)
    BulkImport.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=30))

    assert retention.purge_import_zips() == 0
    assert exists(waiting.archive.name)


def test_the_zip_retention_period_is_a_setting(settings):
    record = bulk(DONE, 2)
    settings.FRID_IMPORT_ZIP_RETENTION_DAYS = 3

    assert retention.purge_import_zips() == 0
    settings.FRID_IMPORT_ZIP_RETENTION_DAYS = 1
    assert retention.purge_import_zips() == 1
    assert not exists(record.archive.name)


def test_the_import_page_still_shows_an_import_whose_zip_was_deleted(admin_client):
    from django.urls import reverse

    record = bulk(DONE, 2)
    retention.purge_import_zips()

    assert admin_client.get(reverse("admin:identity_bulkimport_change", args=[record.pk])).status_code == 200


def test_the_periodic_task_purges_zips_and_is_scheduled():
    record = bulk(DONE, 2)

    assert tasks.purge_import_zips.apply().get() == 1

    assert not exists(record.archive.name)
    entry = django_settings.CELERY_BEAT_SCHEDULE["purge-import-zips"]
    assert entry["task"] == "identity.tasks.purge_import_zips" and entry["schedule"] <= 24 * 3600


def test_the_retention_settings_have_defaults():
    from frid_site import settings as defaults

    assert (defaults.FRID_REJECTED_PHOTO_RETENTION_DAYS, defaults.FRID_IMPORT_ZIP_RETENTION_DAYS) == (30, 1)


def test_the_employee_page_still_shows_a_rejected_photo_whose_file_was_deleted(employee, lfw_bytes, admin_client):
    from django.urls import reverse

    photo(employee, REJECTED, 31, lfw_bytes)
    retention.purge_rejected_photos()

    page = admin_client.get(reverse("admin:identity_employee_change", args=[employee.pk]))

    assert page.status_code == 200
    assert "Several faces were found." in page.content.decode()


def test_apply_retention_runs_every_purge_now(employee, lfw_bytes):
    from io import StringIO

    from django.core.management import call_command

    template = photo(employee, REJECTED, 31, lfw_bytes)
    record = bulk(DONE, 2)
    out = StringIO()

    call_command("apply_retention", stdout=out)

    assert not exists(template.source_image.name) and not exists(record.archive.name)
    assert "1 rejected photo(s) older than 30 days and 1 bulk-import zip(s)" in out.getvalue()


def test_checking_a_purged_rejected_photo_again_rejects_it_saying_the_photo_is_gone(
    employee, lfw_bytes, base_model_version
):
    from identity import enrollment

    template = photo(employee, REJECTED, 31, lfw_bytes)
    retention.purge_rejected_photos()

    enrollment.mark_for_retry([template.pk])
    enrollment.process_templates([template.pk])

    again = FaceTemplate.objects.get(pk=template.pk)
    assert (again.status, again.reason) == (REJECTED, "The uploaded photo is missing from storage. Upload it again.")
