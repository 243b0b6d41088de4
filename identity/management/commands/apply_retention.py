from django.conf import settings
from django.core.management.base import BaseCommand

from identity import tasks


class Command(BaseCommand):
    help = (
        "Delete now, as the hourly periodic tasks do, what FRID keeps no longer: captured frames older "
        "than FRID_CAPTURE_RETENTION_DAYS, rejected enrollment photos older than "
        "FRID_REJECTED_PHOTO_RETENTION_DAYS and finished bulk imports' zips older than "
        "FRID_IMPORT_ZIP_RETENTION_DAYS. Attempts, templates' rows and imports stay."
    )

    def handle(self, *args, **options):
        frames = tasks.purge_expired_captures()
        photos = tasks.purge_rejected_photos()
        zips = tasks.purge_import_zips()
        self.stdout.write(
            f"Deleted {frames} captured frame(s) older than {settings.FRID_CAPTURE_RETENTION_DAYS} days, "
            f"{photos} rejected photo(s) older than {settings.FRID_REJECTED_PHOTO_RETENTION_DAYS} days and "
            f"{zips} bulk-import zip(s) finished more than {settings.FRID_IMPORT_ZIP_RETENTION_DAYS} days ago; "
            "the records stay."
        )
