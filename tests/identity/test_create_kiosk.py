"""manage.py create_kiosk NAME [--location L] [--no-liveness]: registers a kiosk and prints its token, shown once,
alone on the last line (scripts read it from there)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from identity.models import Kiosk

pytestmark = pytest.mark.django_db


def create_kiosk(*args: str) -> list[str]:
    output = io.StringIO()
    call_command("create_kiosk", *args, stdout=output)
    return output.getvalue().splitlines()


def test_it_registers_a_kiosk_and_prints_its_token_alone_on_the_last_line():
    lines = create_kiosk("Main entrance", "--location", "Lobby, ground floor")
    kiosk = Kiosk.objects.get()
    assert (kiosk.name, kiosk.location, kiosk.is_active) == ("Main entrance", "Lobby, ground floor", True)
    assert len(lines) == 2 and "Main entrance" in lines[0]
    token = lines[-1]
    assert token.startswith(Kiosk.TOKEN_PREFIX) and " " not in token
    assert Kiosk.objects.for_token(token) == kiosk
    assert kiosk.token_hash != token  # only its hash is kept
    assert kiosk.liveness_required  # the liveness challenge is on unless asked otherwise


def test_it_registers_a_kiosk_without_the_liveness_challenge_when_asked():
    create_kiosk("Staffed desk", "--no-liveness")
    assert Kiosk.objects.get().liveness_required is False


def test_the_printed_token_lets_the_kiosk_call_the_api():
    token = create_kiosk("Main entrance")[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    # The kiosk is let in (a 400 for no frames, not a 401 or 403).
    assert client.post(reverse("api-verify"), {}, format="multipart").status_code == 400


def test_each_kiosk_gets_its_own_token():
    assert create_kiosk("Main entrance")[-1] != create_kiosk("Back door")[-1]


def test_it_refuses_a_name_that_is_taken():
    create_kiosk("Main entrance")
    with pytest.raises(CommandError, match="already a kiosk named 'Main entrance'"):
        create_kiosk("Main entrance")
    assert Kiosk.objects.count() == 1


def test_it_refuses_an_empty_name():
    with pytest.raises(CommandError, match="Give the kiosk a name"):
        create_kiosk("  ")
    assert not Kiosk.objects.exists()
