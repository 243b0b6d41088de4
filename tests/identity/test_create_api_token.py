"""manage.py create_api_token USERNAME: prints the user's API token alone on its last line,
creating it the first time."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.urls import reverse

from identity import roles
from tests.identity.api_actors import token_client, user_in

pytestmark = pytest.mark.django_db


def create_api_token(username: str) -> list[str]:
    output = io.StringIO()
    call_command("create_api_token", username, stdout=output)
    return output.getvalue().splitlines()


def test_it_prints_the_users_token_alone_on_the_last_line():
    User.objects.create_user("harriet")
    lines = create_api_token("harriet")
    assert len(lines) == 2 and "harriet" in lines[0]
    assert lines[-1] == User.objects.get(username="harriet").auth_token.key


def test_it_prints_the_same_token_again():
    User.objects.create_user("harriet")
    assert create_api_token("harriet")[-1] == create_api_token("harriet")[-1]


def test_the_token_gives_what_the_users_role_allows():
    roles.ensure_groups()
    user_in(roles.AUDITOR, "audrey")
    client = token_client(create_api_token("audrey")[-1])
    assert client.get(reverse("api-attempts")).status_code == 200
    assert client.post(reverse("api-employees"), {"employee_number": "E9", "name": "X"}).status_code == 403


def test_it_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="There is no user 'nobody'"):
        create_api_token("nobody")
