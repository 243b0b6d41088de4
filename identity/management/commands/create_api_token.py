from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Print a user's API token (creating it the first time), alone on the last line. Send it as "
        "\"Authorization: Token <token>\"; the API allows what the user's role allows."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(options["username"])
        except User.DoesNotExist as error:
            raise CommandError(
                f"There is no user {options['username']!r}. Create the user first "
                "(in the admin, or with `manage.py createsuperuser`)."
            ) from error
        token, created = Token.objects.get_or_create(user=user)
        self.stdout.write(f"{'New' if created else 'Existing'} API token of {user.get_username()}:")
        self.stdout.write(token.key)
