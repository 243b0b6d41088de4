from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from identity.models import Kiosk


class Command(BaseCommand):
    help = (
        "Register a kiosk (a shared verification device at an entrance) and print its secret token, "
        "alone on the last line so that scripts can read it. The token is shown only this once."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The kiosk's name, e.g. \"Main entrance\" (unique).")
        parser.add_argument("--location", default="", help="Where the kiosk stands.")
        parser.add_argument(
            "--no-liveness", action="store_true",
            help="Accept a check without the liveness challenge (turning the head as asked). Only where "
                 "staff watch the kiosk: a photo held up to the camera is refused only by the challenge.",
        )

    def handle(self, *args, **options):
        name = options["name"].strip()
        if not name:
            raise CommandError("Give the kiosk a name, e.g. `manage.py create_kiosk \"Main entrance\"`.")
        kiosk = Kiosk(name=name, location=options["location"], liveness_required=not options["no_liveness"])
        token = kiosk.new_token()
        try:
            with transaction.atomic():
                kiosk.save()
        except IntegrityError as error:  # the name is taken
            raise CommandError(
                f"There is already a kiosk named {name!r}. Choose another name, or give that kiosk a "
                "new token in the admin."
            ) from error
        self.stdout.write(
            f"Kiosk {name!r} registered. Its token is shown only this once: enter it on the kiosk's "
            "page (it is sent as \"Authorization: Token <token>\"):"
        )
        self.stdout.write(token)
