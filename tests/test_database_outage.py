"""frid_site.outages: while the database does not answer, every request gets a 503 that says
nothing was recorded and to try again, never a 500; the first request after it is back works."""

import pytest
from django.db import connection
from django.urls import reverse

from frid_site.outages import DATABASE_DOWN
from identity.models import Employee, Kiosk, VerificationAttempt
from tests.database_outage import database_outage
from tests.identity.api_actors import jpeg, token_client, upload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kiosk_client():
    kiosk = Kiosk(name="Front door", liveness_required=False)
    token = kiosk.new_token()
    kiosk.save()
    return token_client(token)


def test_a_kiosk_check_while_the_database_is_down_is_answered_503_in_words(kiosk_client):
    with database_outage(connection.settings_dict):
        response = kiosk_client.post(reverse("api-verify"), {"image": upload(jpeg())}, format="multipart")
    assert response.status_code == 503
    assert response.json() == {"detail": DATABASE_DOWN}
    assert response["Retry-After"] == "30"
    assert not VerificationAttempt.objects.exists()  # as the answer says: nothing was recorded


def test_an_admin_page_while_the_database_is_down_says_so_on_a_page(admin_client):
    with database_outage(connection.settings_dict):
        response = admin_client.get(reverse("admin:identity_employee_changelist"))
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "FRID cannot reach its database" in page and "nothing was recorded" in page


def test_requests_are_answered_again_once_the_database_is_back(admin_client, kiosk_client):
    Employee.objects.create(employee_number="E1", name="Ann Example")
    with database_outage(connection.settings_dict):
        assert admin_client.get(reverse("admin:identity_employee_changelist")).status_code == 503
    page = admin_client.get(reverse("admin:identity_employee_changelist"))
    assert page.status_code == 200 and "Ann Example" in page.content.decode()
    # A check with no frames is refused (400) and audited: attempts are recorded again.
    assert kiosk_client.post(reverse("api-verify"), {}, format="multipart").status_code == 400
    assert VerificationAttempt.objects.count() == 1
