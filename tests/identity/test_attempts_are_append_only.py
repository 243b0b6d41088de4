"""A verification attempt is an audit record: it cannot be changed or deleted through the admin
(no change or delete permission, superusers included; POSTs refused), through the ORM (save,
delete, QuerySet update and delete raise), nor with raw SQL (the trigger of migration 0003)."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.forms.models import model_to_dict
from django.urls import reverse

from identity.models import VerificationAttempt

pytestmark = pytest.mark.django_db

LIST = reverse("admin:identity_verificationattempt_changelist")


@pytest.fixture
def attempt() -> VerificationAttempt:
    return VerificationAttempt.objects.create(
        mode=VerificationAttempt.Mode.KIOSK,
        decision=VerificationAttempt.Decision.NOT_RECOGNISED,
        reason="Not recognised. If you work here, ask HR to check your enrollment.",
        distance=0.61,
        threshold=0.48,
        frames=3,
    )


def as_stored(attempt: VerificationAttempt) -> dict:
    return model_to_dict(VerificationAttempt.objects.get(pk=attempt.pk))


# --- The admin ----------------------------------------------------------------------------------


def test_the_admin_gives_nobody_the_right_to_add_change_or_delete_an_attempt(rf, admin_user, attempt):
    from django.contrib import admin

    model_admin = admin.site._registry[VerificationAttempt]
    request = rf.get(LIST)
    request.user = admin_user  # a superuser, who holds every permission

    assert model_admin.has_view_permission(request, attempt) is True
    assert model_admin.has_add_permission(request) is False
    assert model_admin.has_change_permission(request, attempt) is False
    assert model_admin.has_delete_permission(request, attempt) is False


def test_the_admin_shows_an_attempt_without_a_save_or_delete_button(admin_client, attempt):
    response = admin_client.get(reverse("admin:identity_verificationattempt_change", args=[attempt.pk]))

    assert response.status_code == 200
    content = response.content.decode()
    assert 'name="_save"' not in content
    assert 'class="deletelink"' not in content
    assert reverse("admin:identity_verificationattempt_delete", args=[attempt.pk]) not in content


def test_the_admin_refuses_a_post_that_changes_an_attempt(admin_client, attempt):
    before = as_stored(attempt)

    response = admin_client.post(
        reverse("admin:identity_verificationattempt_change", args=[attempt.pk]),
        {"decision": "verified", "reason": "", "mode": "kiosk"},
    )

    assert response.status_code == 403
    assert as_stored(attempt) == before


def test_the_admin_refuses_to_delete_an_attempt(admin_client, attempt):
    delete_page = reverse("admin:identity_verificationattempt_delete", args=[attempt.pk])

    response = admin_client.post(delete_page, {"post": "yes"})

    assert response.status_code == 403
    assert VerificationAttempt.objects.filter(pk=attempt.pk).exists()


def test_the_admin_has_no_bulk_delete_for_attempts(admin_client, attempt):
    assert "delete_selected" not in admin_client.get(LIST).content.decode()

    admin_client.post(LIST, {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"})

    assert VerificationAttempt.objects.filter(pk=attempt.pk).exists()


def test_the_admin_refuses_to_add_an_attempt(admin_client):
    response = admin_client.post(
        reverse("admin:identity_verificationattempt_add"), {"mode": "kiosk", "decision": "verified"}
    )

    assert response.status_code == 403
    assert not VerificationAttempt.objects.exists()


# --- The ORM ------------------------------------------------------------------------------------


def test_saving_a_changed_attempt_raises(attempt):
    before = as_stored(attempt)
    attempt.decision = VerificationAttempt.Decision.VERIFIED

    with pytest.raises(TypeError, match="append-only"):
        attempt.save()
    assert as_stored(attempt) == before


def test_deleting_an_attempt_raises(attempt):
    with pytest.raises(TypeError, match="append-only"):
        attempt.delete()
    assert VerificationAttempt.objects.filter(pk=attempt.pk).exists()


def test_updating_attempts_in_bulk_raises(attempt):
    before = as_stored(attempt)

    with pytest.raises(TypeError, match="append-only"):
        VerificationAttempt.objects.filter(pk=attempt.pk).update(decision="verified")
    attempt.decision = "verified"
    # bulk_update raises inside a transaction of its own, which is then rolled back.
    with pytest.raises(TypeError, match="append-only"), transaction.atomic():
        VerificationAttempt.objects.bulk_update([attempt], ["decision"])
    assert as_stored(attempt) == before


def test_deleting_attempts_in_bulk_raises(attempt):
    with pytest.raises(TypeError, match="append-only"):
        VerificationAttempt.objects.all().delete()
    assert VerificationAttempt.objects.filter(pk=attempt.pk).exists()


# --- The database itself ------------------------------------------------------------------------


def test_the_database_refuses_an_update_in_raw_sql(attempt):
    before = as_stored(attempt)

    # In its own transaction (a savepoint): the error rolls it back and the test database stays usable.
    with pytest.raises(DatabaseError, match="verification attempts are append-only: UPDATE is not allowed"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE identity_verificationattempt SET decision = 'verified' WHERE id = %s", [attempt.pk])

    assert as_stored(attempt) == before


def test_the_database_refuses_a_delete_in_raw_sql(attempt):
    with pytest.raises(DatabaseError, match="verification attempts are append-only: DELETE is not allowed"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM identity_verificationattempt WHERE id = %s", [attempt.pk])

    assert VerificationAttempt.objects.filter(pk=attempt.pk).exists()


def test_the_database_still_accepts_new_attempts(attempt):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO identity_verificationattempt (created_at, mode, decision, reason, direction, frames, "
            "quality, http_status) VALUES (now(), 'kiosk', 'busy', '', '', 0, '[]', 503)"
        )

    assert VerificationAttempt.objects.count() == 2
