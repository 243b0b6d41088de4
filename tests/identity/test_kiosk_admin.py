"""Registering kiosks in the admin: the token is shown once, only its hash is kept (and never
shown), a kiosk is disabled or enabled at once, and a new token replaces the old one.

Who may: HR (and superusers) register and change kiosks; an auditor cannot see them.
"""

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse
from PIL import Image

from identity import roles, verification
from identity.models import Kiosk

pytestmark = pytest.mark.django_db

LIST = reverse("admin:identity_kiosk_changelist")
ADD = reverse("admin:identity_kiosk_add")
TOKEN = re.compile(r"kiosk_[A-Za-z0-9_-]{40,}")
ONCE = "Copy it now: it will not be shown again."


def jpeg() -> bytes:
    """A whole, real JPEG (grey): the request checks judge frames by their content."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, "JPEG")
    return buffer.getvalue()


JPEG = jpeg()


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def tokens_in(response) -> list[str]:
    return [token for message in messages_of(response) for token in TOKEN.findall(message)]


def registered(name: str = "Front door", **fields) -> tuple[Kiosk, str]:
    kiosk = Kiosk(name=name, **fields)
    token = kiosk.new_token()
    kiosk.save()
    return kiosk, token


def act(client, action: str, *kiosks: Kiosk):
    return client.post(LIST, {"action": action, "_selected_action": [kiosk.pk for kiosk in kiosks]})


@pytest.fixture
def staff_in(django_user_model):
    def make(username: str, group: str):
        user = django_user_model.objects.create_user(username, password="a-long-password-1", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        return user

    return make


def test_adding_a_kiosk_shows_its_token_once_and_keeps_only_its_hash(admin_client, admin_user):
    response = admin_client.post(
        ADD, {"name": "Front door", "location": "Lobby, ground floor", "is_active": "on"}, follow=True
    )

    kiosk = Kiosk.objects.get(name="Front door")
    content = response.content.decode()
    [token] = TOKEN.findall(content)
    assert ONCE in content
    assert Kiosk.objects.for_token(token) == kiosk
    assert kiosk.token_hash == Kiosk.hash_token(token) != token
    assert (kiosk.location, kiosk.is_active, kiosk.created_by) == ("Lobby, ground floor", True, admin_user)
    assert kiosk.token_hash not in content
    # Once: after the page that showed it, neither the list nor the kiosk's page shows it again.
    for page in (admin_client.get(LIST), admin_client.get(reverse("admin:identity_kiosk_change", args=[kiosk.pk]))):
        assert token not in page.content.decode()
        assert kiosk.token_hash not in page.content.decode()


def test_changing_a_kiosk_keeps_its_token(admin_client):
    kiosk, token = registered(location="Lobby")

    response = admin_client.post(
        reverse("admin:identity_kiosk_change", args=[kiosk.pk]),
        {"name": "Front door", "location": "Hall", "is_active": "on"},
    )

    assert response.status_code == 302
    assert tokens_in(response) == []
    assert Kiosk.objects.for_token(token).location == "Hall"


def test_the_list_shows_name_location_enabled_and_last_seen(admin_client):
    registered("Front door", location="Lobby")
    registered("Loading bay", location="Warehouse", is_active=False)

    response = admin_client.get(LIST)

    assert response.context["cl"].list_display == ["action_checkbox", "name", "location", "enabled", "last_seen_at"]
    content = response.content.decode()
    assert "Lobby" in content and "Warehouse" in content
    assert [kiosk.name for kiosk in response.context["cl"].result_list] == ["Front door", "Loading bay"]


def test_disabling_a_kiosk_refuses_its_next_check(admin_client):
    kiosk, token = registered()

    response = act(admin_client, "disable", kiosk)

    assert "1 kiosk disabled: their checks are refused from now on." in messages_of(response)
    check = verification.Check(mode="kiosk", frames=[JPEG], kiosk=Kiosk.objects.for_token(token))
    with pytest.raises(verification.Refusal) as refusal:
        verification.check_request(check, max_frame_bytes=10**6)
    assert (refusal.value.message, refusal.value.http_status) == (verification.KIOSK_DISABLED, 403)


def test_enabling_a_kiosk_lets_it_verify_again(admin_client):
    # Liveness off: a check without a challenge (identity.liveness) passes the request's checks.
    kiosk, token = registered(is_active=False, liveness_required=False)

    response = act(admin_client, "enable", kiosk)

    assert "1 kiosk enabled: they can verify again." in messages_of(response)
    check = verification.Check(mode="kiosk", frames=[JPEG], kiosk=Kiosk.objects.for_token(token))
    assert verification.check_request(check, max_frame_bytes=10**6) is None  # no refusal; 1:N claims nobody


def test_a_new_token_replaces_the_old_one_and_is_shown_once(admin_client):
    kiosk, old = registered()

    response = act(admin_client, "new_token", kiosk)

    [new] = tokens_in(response)
    assert new != old
    assert Kiosk.objects.for_token(new) == kiosk
    assert Kiosk.objects.for_token(old) is None
    shown = admin_client.get(LIST).content.decode()  # the message, on the page after the action
    assert new in shown and ONCE in shown
    assert new not in admin_client.get(LIST).content.decode()


def test_kiosks_are_never_deleted_in_the_admin_only_disabled(admin_client):
    kiosk, _ = registered()

    response = admin_client.post(reverse("admin:identity_kiosk_delete", args=[kiosk.pk]), {"post": "yes"})

    assert response.status_code == 403
    assert Kiosk.objects.filter(pk=kiosk.pk).exists()
    assert "delete_selected" not in admin_client.get(LIST).content.decode()


def test_hr_registers_kiosks(client, staff_in):
    client.force_login(staff_in("hana", roles.HR))

    response = client.post(ADD, {"name": "Side door", "location": "", "is_active": "on"})

    assert response.status_code == 302
    assert len(tokens_in(response)) == 1


def test_an_auditor_cannot_see_or_register_kiosks(client, staff_in):
    registered()
    client.force_login(staff_in("audrey", roles.AUDITOR))

    assert client.get(LIST).status_code == 403
    assert client.post(ADD, {"name": "Side door", "is_active": "on"}).status_code == 403
    assert Kiosk.objects.count() == 1
