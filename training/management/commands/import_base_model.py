from django.core.management.base import BaseCommand

from training.model_store import import_base_version


class Command(BaseCommand):
    help = "Import dlib's face recognition ResNet into the model store as the base model version."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Import again even if it is there.")

    def handle(self, *args, force=False, **options):
        version, imported = import_base_version(force=force)
        state = "active" if version.is_active else "not active"
        if imported:
            self.stdout.write(self.style.SUCCESS(
                f"Imported {version.name} ({state}, threshold {version.threshold}) to {version.path}"
            ))
        else:
            self.stdout.write(f"{version.name} is already imported ({state}) at {version.path}")
