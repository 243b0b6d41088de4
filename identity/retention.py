"""How long FRID keeps what it no longer needs (the periodic tasks in identity.tasks run these).

- Captured frames of attempts: FRID_CAPTURE_RETENTION_DAYS (identity.verification.purge_expired_captures).
- Rejected enrollment photos: FRID_REJECTED_PHOTO_RETENTION_DAYS after they were rejected, the
  photo file goes, and with it what was measured on it (face boxes, landmarks, quality figures).
  The row stays, as a record for HR of what was uploaded and why it was refused (file name,
  reason, dates): it holds no face. Checking it again then says the photo is gone: upload it again.
- Bulk-import zips: FRID_IMPORT_ZIP_RETENTION_DAYS after the import finished (done or failed),
  the zip goes; the import's row and its report stay. Its photos are in the employees' templates.

Each function takes ``now`` so that tests pass past timestamps instead of waiting.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from identity.models import BulkImport, FaceTemplate

logger = logging.getLogger(__name__)


def expired_rejected_photos(now: datetime | None = None):
    """Rejected templates whose photo is still kept, rejected more than the retention period ago."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.FRID_REJECTED_PHOTO_RETENTION_DAYS)
    return (
        FaceTemplate.objects.filter(status=FaceTemplate.Status.REJECTED)
        .exclude(source_image="")
        .annotate(rejected_at=Coalesce("processed_at", "created_at"))
        .filter(rejected_at__lt=cutoff)
    )


def purge_rejected_photos(now: datetime | None = None) -> int:
    """Delete the files of rejected photos past their retention period (the rows stay, without
    the photo or anything measured on it). Returns how many photos were deleted."""
    deleted = 0
    for template in expired_rejected_photos(now).iterator():
        names = [file.name for file in (template.source_image, template.chip) if file]
        # Only a template still rejected and still holding its photo: HR may retry it meanwhile.
        cleared = FaceTemplate.objects.filter(
            pk=template.pk, status=FaceTemplate.Status.REJECTED, source_image=template.source_image.name
        ).update(source_image="", chip="", box=None, landmarks=None, quality=None, found_boxes=None)
        if cleared:
            for name in names:
                template.source_image.storage.delete(name)
            deleted += 1
    if deleted:
        logger.info("deleted %d rejected photos kept longer than %d days", deleted,
                    settings.FRID_REJECTED_PHOTO_RETENTION_DAYS)
    return deleted


def expired_import_zips(now: datetime | None = None):
    """Finished imports whose zip is still kept, finished more than the retention period ago."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.FRID_IMPORT_ZIP_RETENTION_DAYS)
    finished = Q(status__in=[BulkImport.Status.DONE, BulkImport.Status.FAILED])
    return BulkImport.objects.filter(finished, finished_at__lt=cutoff).exclude(archive="")


def purge_import_zips(now: datetime | None = None) -> int:
    """Delete the zips of finished imports past their retention period; the imports and their
    reports stay. Returns how many zips were deleted."""
    deleted = 0
    for bulk in expired_import_zips(now).iterator():
        name = bulk.archive.name
        if BulkImport.objects.filter(pk=bulk.pk, archive=name).update(archive=""):
            bulk.archive.storage.delete(name)
            deleted += 1
    if deleted:
        logger.info("deleted %d bulk-import zips kept longer than %d days", deleted,
                    settings.FRID_IMPORT_ZIP_RETENTION_DAYS)
    return deleted
