from django.conf import settings
from django.core.management.base import BaseCommand

from identity import tasks


class Command(BaseCommand):
    help = (
        "Delete the captured frames of verification attempts older than FRID_CAPTURE_RETENTION_DAYS, "
        "now, as the hourly periodic task does. The attempts themselves are kept."
    )

    def handle(self, *args, **options):
        deleted = tasks.purge_expired_captures()
        days = settings.FRID_CAPTURE_RETENTION_DAYS
        frames = "1 captured frame" if deleted == 1 else f"{deleted} captured frames"
        self.stdout.write(f"Deleted {frames} older than {days} days; the attempts are kept.")
