import argparse
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from identity import bulk_import, tasks


class Command(BaseCommand):
    help = (
        "Import employees and their photos from a folder: one sub-folder per employee (named by the "
        "employee number), or employees.csv with the columns employee_number,name,email,department,photo. "
        "Every photo is checked and embedded as an upload in the admin would be."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path, help="The folder of employee folders or with employees.csv.")
        parser.add_argument("--limit", type=_positive, help="Import only the first N photos.")
        parser.add_argument(
            "--consent-recorded-by", required=True, metavar="USERNAME",
            help="The user who collected every employee's consent to biometric processing (recorded on each).",
        )
        parser.add_argument(
            "--on-workers", action="store_true",
            help="Hand the batches of photos to the Celery workers on the embeddings queue (every worker "
                 "process, on every host, takes a share) instead of embedding them in this process. "
                 "If no worker takes them, the import embeds them itself.",
        )

    def handle(self, *args, **options):
        user = self._user(options["consent_recorded_by"])
        bar = tqdm(desc="Importing photos", unit="photo", file=sys.stderr, disable=None, mininterval=1)

        def show_progress(summary: bulk_import.ImportSummary) -> None:
            bar.total = summary.total_photos
            bar.update(summary.processed_photos - bar.n)

        try:
            summary = bulk_import.import_folder(
                options["folder"], user, limit=options["limit"], progress=show_progress,
                send=tasks.send_import_batch if options["on_workers"] else None,
            )
        except bulk_import.ImportProblem as problem:
            raise CommandError(str(problem)) from problem
        finally:
            bar.close()
        self.stdout.write(summary.report())

    def _user(self, username: str):
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist as error:
            raise CommandError(
                f"There is no user {username!r}. Name the user who recorded the employees' consent "
                "(create one with `manage.py createsuperuser`)."
            ) from error


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number
