"""A face flagged as a possible duplicate: held out of search, shown on both employees, and HR's
decision (merge, keep both, delete) recorded.

Real LFW photos: two photos of Gerry Adams under two employee numbers, processed by the worker's
code (identity.enrollment.process_templates) in the test itself.
"""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from identity import duplicates, matching
from identity.models import AttendanceEvent, Employee, FaceTemplate, VerificationAttempt
from tests.identity.real_faces import enroll

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:identity_employee_changelist")


def change_url(employee: Employee) -> str:
    return reverse("admin:identity_employee_change", args=[employee.pk])


def review_url(template: FaceTemplate) -> str:
    return reverse("admin:identity_facetemplate_duplicate", args=[template.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def flagged(base_model_version, faces_dir):
    """Gerry Adams enrolled as E1, then again, a day later, as E2: E2's photo is flagged."""
    gerry = faces_dir / "lfw" / "Gerry_Adams"
    older = enroll("E1", gerry / "Gerry_Adams_0001.jpg")
    Employee.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=1))
    newer = Employee.objects.create(employee_number="E2", name="Gerald Adamson")
    template = FaceTemplate.objects.get(pk=enroll_unchecked(newer, gerry / "Gerry_Adams_0002.jpg").pk)
    assert (template.status, template.possible_duplicate_of_id) == ("ready", older.pk)
    return template


def enroll_unchecked(employee: Employee, photo) -> FaceTemplate:
    from identity import enrollment

    template = enrollment.add_photo(employee, photo.read_bytes(), photo.name)
    enrollment.process_templates([template.pk])
    return template


def decide(client, template: FaceTemplate, decision: str, **extra):
    return client.post(review_url(template), {"decision": decision, **extra}, follow=True)


def test_a_flagged_face_is_held_out_of_search_until_hr_keeps_both(flagged, base_model_version, admin_client):
    embedding = flagged.embedding

    held = matching.best_match(embedding, base_model_version, exclude_employee=flagged.possible_duplicate_of_id)
    assert held.employee is None and held.gallery_size == 0
    assert matching.identify(embedding, base_model_version).nearest == flagged.possible_duplicate_of

    decide(admin_client, flagged, "keep_both")

    kept = matching.best_match(embedding, base_model_version, exclude_employee=flagged.possible_duplicate_of_id)
    assert kept.employee == flagged.employee


def test_both_employees_show_the_warning_with_what_to_do(flagged, admin_client):
    older, newer = flagged.possible_duplicate_of, flagged.employee

    pages = {employee.employee_number: admin_client.get(change_url(employee)).content.decode()
             for employee in (older, newer)}
    listing = admin_client.get(LIST_URL).content.decode()

    assert f'A photo of <a href="{change_url(newer)}">{newer}</a> looks like this employee.' in pages["E1"]
    assert f'A photo of this employee looks like <a href="{change_url(older)}">{older}</a>.' in pages["E2"]
    for page in pages.values():
        assert "It is not used for recognition until you decide" in page
        assert f'href="{review_url(flagged)}?next=' in page
    assert f'⚠ Possible duplicate of <a href="{change_url(older)}">{older.name}</a>' in listing
    assert f'⚠ Possible duplicate of <a href="{change_url(newer)}">{newer.name}</a>' in listing


def test_the_review_page_says_what_each_choice_does(flagged, admin_client):
    page = admin_client.get(review_url(flagged)).content.decode()

    newer, older = flagged.employee, flagged.possible_duplicate_of
    assert f"{newer}'s 1 photo moves to {older}, the older record." in page
    assert "has no attendance and no verification attempts, so the record is then deleted." in page
    for choice in ("merge", "keep_both", "delete"):
        assert f'name="decision" value="{choice}"' in page


def test_keeping_both_records_who_decided_and_when(flagged, admin_client, admin_user):
    response = decide(admin_client, flagged, "keep_both", next=LIST_URL)

    flagged.refresh_from_db()
    assert flagged.duplicate_decision == FaceTemplate.DuplicateDecision.DIFFERENT_PEOPLE
    assert flagged.duplicate_decided_by == admin_user
    assert timezone.now() - flagged.duplicate_decided_at < timedelta(minutes=1)
    assert response.redirect_chain[-1][0] == LIST_URL
    assert f"Recorded: {flagged.employee} and {flagged.possible_duplicate_of} are different people. " \
           "1 photo is used for recognition again." in messages_of(response)
    page = admin_client.get(change_url(flagged.employee)).content.decode()
    assert f"Different people: both kept (by {admin_user.username}," in page
    assert "Review and decide" not in page


def test_merging_moves_the_photos_onto_the_older_record_and_deletes_a_newer_one_without_history(
    flagged, admin_client, admin_user
):
    older, newer = flagged.possible_duplicate_of, flagged.employee
    account = User.objects.create_user("gerry")
    Employee.objects.filter(pk=newer.pk).update(user=account)

    response = decide(admin_client, flagged, "merge")

    assert not Employee.objects.filter(pk=newer.pk).exists()
    template = FaceTemplate.objects.get(pk=flagged.pk)
    assert template.employee == older and older.templates.count() == 2
    assert (template.duplicate_decision, template.duplicate_decided_by) == ("same_person", admin_user)
    assert Employee.objects.get(pk=older.pk).user == account
    assert response.redirect_chain[-1][0] == change_url(older)
    assert messages_of(response) == [
        f"Merged: 1 photo of {newer} now belongs to {older}. {newer} had no attendance or verification "
        f"attempts, so the record was deleted. Its login now belongs to {older}."
    ]
    assert LogEntry.objects.filter(object_id=str(older.pk), change_message__startswith="Merged").exists()


def test_merging_keeps_a_newer_record_with_attendance_deactivated_with_its_history(flagged, admin_client):
    older, newer = flagged.possible_duplicate_of, flagged.employee
    attempt = VerificationAttempt.objects.create(mode="kiosk", decision="verified", matched_employee=newer)
    AttendanceEvent.objects.create(employee=newer, direction="in", occurred_at=timezone.now(), attempt=attempt)

    response = decide(admin_client, flagged, "merge")

    newer.refresh_from_db()
    assert not newer.is_active
    assert newer.attendance_events.count() == 1 and not newer.templates.exists()
    assert FaceTemplate.objects.get(pk=flagged.pk).employee == older
    assert (
        f"{newer} was kept, deactivated, with its 1 attendance event and 1 verification attempt: they stay "
        "on that record." in messages_of(response)[0]
    )


def test_deleting_a_flagged_photo_removes_it_and_logs_who(flagged, admin_client, admin_user):
    response = decide(admin_client, flagged, "delete")

    assert not FaceTemplate.objects.filter(pk=flagged.pk).exists()
    assert f"The photo Gerry_Adams_0002.jpg of {flagged.employee} was deleted." in messages_of(response)
    entry = LogEntry.objects.get(object_id=str(flagged.pk))
    assert (entry.user, entry.is_deletion()) == (admin_user, True)


def test_a_second_decision_on_the_same_photo_is_refused_in_plain_words(flagged, admin_client):
    decide(admin_client, flagged, "keep_both")

    response = decide(admin_client, flagged, "delete")

    assert FaceTemplate.objects.filter(pk=flagged.pk).exists()
    assert messages_of(response) == [str(duplicates.AlreadyDecided())]


def test_staff_who_may_only_look_cannot_decide(flagged, client):
    viewer = User.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(codename__in=["view_employee", "view_facetemplate"]))
    client.force_login(viewer)

    assert client.get(review_url(flagged)).status_code == 200
    for decision in ("merge", "keep_both", "delete"):
        assert client.post(review_url(flagged), {"decision": decision}).status_code == 403
    flagged.refresh_from_db()
    assert flagged.duplicate_decision == FaceTemplate.DuplicateDecision.UNDECIDED
