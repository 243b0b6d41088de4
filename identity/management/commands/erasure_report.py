"""``manage.py erasure_report EMPLOYEE_NUMBER``: prove that nothing of an employee's faces is left.

Exit status 0 when nothing is found, 1 when something is (each finding printed: where and what),
2 when FRID never knew the number (no employee has it and none was erased).

What counts as *theirs* (identity.erasure's docstring gives the reasons):

- FRID's own rows about them: face templates (HR's photos, automatic ones), their embeddings of
  every model version, frames captured during their attempts (those that claimed them, matched
  them, or found them nearest), attempts of theirs still holding distances or per-frame face
  figures, and other employees' photos still flagged as resembling them;
- anywhere in the database, every table and every column (information_schema, FRID's schema):
  bytea values whose SHA-256 is one of their photos', chips' or frames'; vectors equal to one of
  their embeddings (within 0.001, a copy, not a look-alike: two photos of one person lie 0.1 or more
  apart); text and JSON naming one of their stored files (faces/<id>/…, chips/<id>-…, or a name an
  erasure recorded); JSON lists of 128 numbers that are one of their embeddings;
- in FRID_DATA_DIR, MEDIA_ROOT and FRID_TRAINING_CACHE_DIR: files named for them, files an
  erasure deleted that are back, images (and photos inside zips) whose SHA-256 is one of theirs,
  and training caches holding one of their chips.

"Their photos, chips, frames and embeddings" are, for an employee not erased (or enrolled again
since), the ones FRID holds now; for an erased one, the digests and names their erasure record
kept (identity.models.Erasure, no biometrics). So after an erasure the scan finds exact copies
only: a different photo of the same person is a new photo, not a copy, and finding it would need
their face, which is what was erased.

Not scanned: the erasure records themselves (they hold the names and digests, by design), and the
embedded PostgreSQL's and Redis's own files (the database is read through SQL; PostgreSQL keeps a
deleted row's bytes in its files until the space is reused, and backups are out of FRID's reach).
"""

from django.core.management.base import BaseCommand, CommandError

from identity import erasure
from identity.models import Employee


class Command(BaseCommand):
    help = (
        "Scan the database (every table and column) and FRID's data, media and training-cache folders "
        "for an employee's photos, chips, frames and embeddings. Exits 1 when anything is found."
    )

    def add_arguments(self, parser):
        parser.add_argument("employee_number")

    def handle(self, *args, employee_number: str, **options):
        try:
            scan = erasure.scan(employee_number)
        except Employee.DoesNotExist as error:
            raise CommandError(str(error), returncode=2) from error
        self._describe(scan)
        if not scan.clean:
            raise CommandError(
                f"{len(scan.findings)} finding(s): biometric data of employee {employee_number} is still "
                "stored. Erase it (admin: the employee's page, \"Erase biometric data\") and scan again.",
                returncode=1,
            )

    def _describe(self, scan: erasure.Scan) -> None:
        write = self.stdout.write
        write(f"Erasure report for employee {scan.employee_number} (record id {', '.join(map(str, scan.employee_ids)) or 'gone'})")
        if scan.erasures:
            for record in scan.erasures:
                by = f" by {record.erased_by_name}" if record.erased_by_name else ""
                removed = "; ".join(erasure.in_words(record.removed))
                write(f"  erased {record.erased_at:%Y-%m-%d %H:%M:%S %Z}{by}: {removed or 'nothing was stored'}")
        else:
            write("  never erased")
        write(f"Scanned {scan.columns} columns in {scan.tables} tables and {scan.files} files in: "
              + ", ".join(str(folder) for folder in erasure.scanned_folders()))
        if scan.clean:
            write(self.style.SUCCESS("Nothing found: no photo, chip, frame or embedding of theirs is stored."))
            return
        write(self.style.ERROR(f"Found {len(scan.findings)}:"))
        for finding in scan.findings:
            write(f"  - {finding}")
