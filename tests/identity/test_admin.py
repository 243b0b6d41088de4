"""HR enrollment in the admin: employees, consent, photos, and the templates made from them.

No task is sent here: uploads run under django_capture_on_commit_callbacks(execute=False) and each
test runs the worker's code (enrollment.process_templates) itself.
"""

import io
import re
import subprocess
import sys
from datetime import timedelta

import numpy
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from PIL import Image

from identity import enrollment, roles
from training import engine, faces
from identity.forms import CONSENT_REQUIRED_MESSAGE
from identity.models import Employee, FaceTemplate, VerificationAttempt

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:identity_employee_add")
LIST_URL = reverse("admin:identity_employee_changelist")
TEMPLATES_URL = reverse("admin:identity_facetemplate_changelist")


def change_url(employee: Employee) -> str:
    return reverse("admin:identity_employee_change", args=[employee.pk])


def chip_url(template: FaceTemplate) -> str:
    return reverse("identity:template-chip", args=[template.pk])


def template_url(template: FaceTemplate) -> str:
    return reverse("admin:identity_facetemplate_change", args=[template.pk])


def photo_url(template: FaceTemplate) -> str:
    return reverse("admin:identity_facetemplate_photo", args=[template.pk])


def original_url(template: FaceTemplate) -> str:
    return reverse("admin:identity_facetemplate_original", args=[template.pk])


def templates_named(page: str) -> list[str]:
    """The file names the page shows for its photos."""
    return re.findall(r'<span class="photo-file-name">([^<]*)</span>', page)


def stored_template(data: bytes, filename: str, **fields) -> FaceTemplate:
    """A template of a new employee, its photo stored as an upload would be (not processed)."""
    employee = Employee.objects.create(employee_number="E9", name="Dee")
    template = enrollment.add_photo(employee, data, filename)
    if fields:
        FaceTemplate.objects.filter(pk=template.pk).update(**fields)
        template.refresh_from_db()
    return template


def is_amber(pixel) -> bool:
    """The colour face boxes are drawn in (identity.previews.BOX_COLOUR), give or take JPEG's loss."""
    red, green, blue = pixel
    return red > 200 and 140 < green < 240 and blue < 100


@pytest.fixture
def lfw_photo(faces_dir):
    def photo(name: str, number: int) -> bytes:
        return (faces_dir / "lfw" / name / f"{name}_{number:04d}.jpg").read_bytes()

    return photo


def upload(data: bytes, filename: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(filename, data, content_type="image/jpeg")


def employee_form(employee: Employee | None = None, **fields) -> dict:
    """The POST data of the employee page, with the templates inline left as they are."""
    templates = list(employee.templates.order_by("-created_at")) if employee else []
    data = {
        "employee_number": "E100",
        "name": "Ada Example",
        "email": "ada@example.com",
        "department": "Operations",
        "is_active": "on",
        "consent": "on",
        "templates-TOTAL_FORMS": str(len(templates)),
        "templates-INITIAL_FORMS": str(len(templates)),
        "templates-MIN_NUM_FORMS": "0",
        "templates-MAX_NUM_FORMS": "1000",
    }
    for index, template in enumerate(templates):
        data[f"templates-{index}-id"] = str(template.pk)
        data[f"templates-{index}-employee"] = str(employee.pk)
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def add_employee(client, django_capture_on_commit_callbacks, **fields):
    with django_capture_on_commit_callbacks(execute=False):
        return client.post(ADD_URL, employee_form(**fields))


def process_all() -> None:
    """Act as the background worker."""
    enrollment.process_templates(list(FaceTemplate.objects.values_list("pk", flat=True)))


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def encoded(format: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 150)).save(buffer, format)
    return buffer.getvalue()


def side_by_side(left: bytes, right: bytes) -> bytes:
    both = numpy.hstack([numpy.array(Image.open(io.BytesIO(data)).convert("RGB")) for data in (left, right)])
    buffer = io.BytesIO()
    Image.fromarray(both).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- Adding photos ------------------------------------------------------------------------------


def test_adding_an_employee_with_two_photos_keeps_two_pending_templates(
    admin_client, admin_user, lfw_photo, django_capture_on_commit_callbacks
):
    photos = [upload(lfw_photo("Gerry_Adams", 1), "gerry-1.jpg"), upload(lfw_photo("Gerry_Adams", 6), "gerry-6.jpg")]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(ADD_URL, employee_form(photos=photos))

    employee = Employee.objects.get(employee_number="E100")
    # HR is taken to the employee's page to watch the photos being checked, not to the list.
    assert response.status_code == 302
    assert response.url == change_url(employee)
    assert list(employee.templates.values_list("status", flat=True)) == ["pending", "pending"]
    assert len(callbacks) == 1  # one embedding task for both photos, sent once the upload commits
    assert employee.consent_recorded_by == admin_user
    assert sorted(employee.templates.values_list("original_filename", flat=True)) == ["gerry-1.jpg", "gerry-6.jpg"]
    assert "2 photos received: they are being checked. This page shows the results as they come." in messages_of(
        response
    )
    with employee.templates.get(source_image__contains="gerry-6").source_image.open("rb") as stored:
        assert stored.read() == lfw_photo("Gerry_Adams", 6)


def test_the_change_page_shows_progress_while_photos_are_pending(
    admin_client, lfw_photo, django_capture_on_commit_callbacks
):
    photo = upload(lfw_photo("Gerry_Adams", 1), "a.jpg")
    add_employee(admin_client, django_capture_on_commit_callbacks, photos=[photo])
    employee = Employee.objects.get()

    page = admin_client.get(change_url(employee)).content.decode()

    assert '<span id="enrollment-pending">1</span> photo being checked' in page
    assert 'id="enrollment-progress-config"' in page
    assert reverse("identity:employee-templates", args=[employee.pk]) in page
    assert "Being checked…" in page


def test_processed_photos_show_on_the_change_page_as_ready_thumbnails(
    admin_client, base_model_version, lfw_photo, django_capture_on_commit_callbacks
):
    photos = [upload(lfw_photo("Gerry_Adams", 1), "gerry-1.jpg"), upload(lfw_photo("Gerry_Adams", 6), "gerry-6.jpg")]
    add_employee(admin_client, django_capture_on_commit_callbacks, photos=photos)
    process_all()
    employee = Employee.objects.get()

    page = admin_client.get(change_url(employee)).content.decode()

    templates = list(employee.templates.all())
    assert [template.status for template in templates] == ["ready", "ready"]
    for template in templates:
        assert f'src="{chip_url(template)}"' in page
        good = '<span class="reading reading-good">good</span>'
        assert f"<li>sharpness {template.quality['sharpness']} {good}</li>" in page
    assert page.count("Ready: this face is used for recognition.") == 2
    assert sorted(templates_named(page)) == ["gerry-1.jpg", "gerry-6.jpg"]
    assert str(base_model_version) in page
    assert "enrollment-progress" not in page.replace("enrollment-progress-config", "")  # nothing pending
    chip = admin_client.get(chip_url(templates[0]))
    assert chip["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(b"".join(chip.streaming_content))).size == (150, 150)


def test_a_rejected_photo_with_two_faces_shows_its_name_and_the_photo_with_both_faces_boxed(
    admin_client, base_model_version, lfw_photo, django_capture_on_commit_callbacks
):
    two_faces = side_by_side(lfw_photo("Zhang_Yimou", 1), lfw_photo("Gerry_Adams", 6))
    add_employee(admin_client, django_capture_on_commit_callbacks, photos=[upload(two_faces, "group.jpg")])
    process_all()
    template = FaceTemplate.objects.get()

    pages = [admin_client.get(url).content.decode() for url in (change_url(template.employee), template_url(template))]
    photo = admin_client.get(photo_url(template) + "?side=large")

    assert (template.status, template.original_filename) == ("rejected", "group.jpg")
    assert len(template.found_boxes) == 2
    for page in pages:  # the employee page and the photo's own page
        assert escape(engine.SEVERAL_FACES_REASON.format(count=2)) in page
        assert templates_named(page) == ["group.jpg"]
        assert f'src="{photo_url(template)}?side=small"' in page
        assert f'href="{original_url(template)}"' in page
    assert photo["Content-Type"] == "image/jpeg"
    shown = numpy.array(Image.open(io.BytesIO(photo.content)).convert("RGB")).astype(int)
    assert shown.shape[:2] == (250, 500)  # the photo at its own size: the boxes are where they were found
    for left, top, right, bottom in template.found_boxes:
        middle = (top + bottom) // 2
        assert is_amber(shown[middle, left + 1]) and is_amber(shown[middle, right - 2])
        assert not is_amber(shown[middle, (left + right) // 2])  # the face itself is left as it was


def test_the_original_file_is_a_download_with_its_own_name(admin_client, lfw_photo):
    template = stored_template(lfw_photo("Gerry_Adams", 1), "IMG 0042.jpg")

    response = admin_client.get(original_url(template))

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="IMG 0042.jpg"'
    assert {"private", "no-store"} <= set(response["Cache-Control"].split(", "))
    assert b"".join(response.streaming_content) == lfw_photo("Gerry_Adams", 1)


def test_uploaded_photos_are_shown_only_with_their_own_permission(client, lfw_photo):
    template = stored_template(lfw_photo("Gerry_Adams", 1), "gerry.jpg")
    user = User.objects.create_user("reception", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_employee", "view_facetemplate"]))
    client.force_login(user)

    page = client.get(change_url(template.employee)).content.decode()

    assert templates_named(page) == ["gerry.jpg"]  # the file name, but not the photo
    assert photo_url(template) not in page
    assert client.get(photo_url(template)).status_code == 403
    assert client.get(original_url(template)).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_facetemplate_photo"))
    client.force_login(User.objects.get(pk=user.pk))  # a fresh user: permissions are cached
    assert photo_url(template) in client.get(change_url(template.employee)).content.decode()
    assert client.get(photo_url(template)).status_code == 200


def test_a_file_that_is_no_image_shows_its_name_and_no_photo(admin_client):
    template = stored_template(b"%PDF-1.4 this is a contract", "contract.jpg")

    page = admin_client.get(change_url(template.employee)).content.decode()

    assert templates_named(page) == ["contract.jpg"]
    assert "not an image: nothing to show" in page
    assert admin_client.get(photo_url(template)).status_code == 404


# --- Checking files as they arrive -------------------------------------------------------------


def test_a_text_file_renamed_jpg_is_refused_at_once_in_the_workers_words(
    admin_client, django_capture_on_commit_callbacks
):
    text = b"Dear HR, please find my photo attached."
    with pytest.raises(faces.NotAnImage) as worker:
        faces.decode_image(text)

    response = add_employee(admin_client, django_capture_on_commit_callbacks, photos=[upload(text, "me.jpg")])

    assert response.status_code == 200  # the form again, nothing received
    worker_words = str(worker.value).removeprefix("This file ")
    assert escape(f"me.jpg {worker_words}") in response.content.decode()
    assert not FaceTemplate.objects.exists()


def test_photos_in_other_formats_the_worker_reads_are_let_in(admin_client, django_capture_on_commit_callbacks):
    photos = [upload(encoded(format), f"photo.{format.lower()}") for format in ("PNG", "TIFF", "WEBP", "PPM")]

    response = add_employee(admin_client, django_capture_on_commit_callbacks, photos=photos)

    assert response.status_code == 302
    assert sorted(FaceTemplate.objects.values_list("original_filename", flat=True)) == [
        "photo.png", "photo.ppm", "photo.tiff", "photo.webp"
    ]


# --- Plain words -------------------------------------------------------------------------------


def test_a_whole_photo_too_small_for_a_face_says_so_and_what_size_works(
    admin_client, base_model_version, lfw_photo, django_capture_on_commit_callbacks
):
    tiny = Image.open(io.BytesIO(lfw_photo("Gerry_Adams", 1))).resize((40, 40))
    add_employee(admin_client, django_capture_on_commit_callbacks, photos=[upload(jpeg(tiny), "tiny.jpg")])
    process_all()

    template = FaceTemplate.objects.get()

    assert template.reason == (
        "The photo is only 40×40 pixels, too small to find a face in. Use a photo of at least 250×250 "
        "pixels, where the face is at least 80 pixels across."
    )
    assert escape(template.reason) in admin_client.get(change_url(template.employee)).content.decode()


def test_quality_figures_read_good_borderline_or_poor(admin_client):
    template = stored_template(b"\xff\xd8\xff", "soft.jpg", status="rejected", reason="The face is too small.")
    FaceTemplate.objects.filter(pk=template.pk).update(quality={
        "face_size": 70, "sharpness": 12.5, "brightness": 120.0, "yaw": 24.0, "pitch": 3.0, "roll": 1.0,
    })

    page = admin_client.get(change_url(template.employee)).content.decode()

    assert '<li>face 70 px <span class="reading reading-poor">poor</span></li>' in page
    assert '<li>sharpness 12.5 <span class="reading reading-borderline">borderline</span></li>' in page
    assert '<li>brightness 120.0 <span class="reading reading-good">good</span></li>' in page
    assert (
        '<li>pose yaw 24.0°, pitch 3.0°, roll 1.0° <span class="reading reading-borderline">borderline</span></li>'
        in page
    )


def test_a_photo_without_consent_is_refused_with_a_clear_message(
    admin_client, lfw_photo, django_capture_on_commit_callbacks
):
    response = add_employee(
        admin_client,
        django_capture_on_commit_callbacks,
        consent=None,
        photos=[upload(lfw_photo("Gerry_Adams", 1), "a.jpg")],
    )

    assert response.status_code == 200
    assert escape(CONSENT_REQUIRED_MESSAGE) in response.content.decode()
    assert not Employee.objects.exists()
    assert not FaceTemplate.objects.exists()


def test_an_employee_without_photos_can_be_added_without_consent(admin_client, django_capture_on_commit_callbacks):
    response = add_employee(admin_client, django_capture_on_commit_callbacks, consent=None)

    assert response.url == LIST_URL
    assert Employee.objects.get().consent_recorded_at is None


def test_an_empty_or_too_large_photo_gets_an_error_naming_the_file(
    admin_client, settings, django_capture_on_commit_callbacks
):
    settings.FRID_MAX_UPLOAD_BYTES = 1_000_000
    noise = numpy.random.default_rng(3).integers(0, 256, size=(1200, 1200, 3), dtype=numpy.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=95)
    large = buffer.getvalue()
    assert len(large) > 1_050_000  # so that it shows as more than "1.0 MB"
    response = add_employee(
        admin_client,
        django_capture_on_commit_callbacks,
        photos=[upload(b"", "blank.jpg"), upload(large, "holiday.jpg")],
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "blank.jpg is empty. Choose the photo again." in page
    assert f"holiday.jpg is {len(large) / 1e6:.1f} MB; photos up to 1 MB are accepted." in page
    assert not FaceTemplate.objects.exists()


def test_adding_photos_to_an_existing_employee_keeps_the_templates_already_there(
    admin_client, lfw_photo, django_capture_on_commit_callbacks
):
    photo = upload(lfw_photo("Gerry_Adams", 1), "a.jpg")
    add_employee(admin_client, django_capture_on_commit_callbacks, photos=[photo])
    employee = Employee.objects.get()
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(
            change_url(employee), employee_form(employee, photos=[upload(lfw_photo("Gerry_Adams", 2), "b.jpg")])
        )

    assert response.status_code == 302
    assert response.url == change_url(employee)
    assert employee.templates.count() == 2
    assert "1 photo received: it is being checked. This page shows the results as they come." in messages_of(response)


def test_hr_can_delete_a_template_from_the_employee_page(admin_client, lfw_photo, django_capture_on_commit_callbacks):
    photos = [upload(lfw_photo("Gerry_Adams", 1), "a.jpg"), upload(lfw_photo("Gerry_Adams", 2), "b.jpg")]
    add_employee(admin_client, django_capture_on_commit_callbacks, photos=photos)
    employee = Employee.objects.get()
    data = employee_form(employee)
    deleted = int(data["templates-0-id"])
    data["templates-0-DELETE"] = "on"

    response = admin_client.post(change_url(employee), data)

    assert response.url == LIST_URL  # no photo sent: back to the list as usual
    assert list(employee.templates.values_list("pk", flat=True)) == [int(data["templates-1-id"])]
    assert not FaceTemplate.objects.filter(pk=deleted).exists()


# --- Consent -----------------------------------------------------------------------------------


def test_unticking_consent_clears_the_record_and_warns_about_the_photos_kept(admin_client, admin_user):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    employee.record_consent(admin_user)

    response = admin_client.post(
        change_url(employee), employee_form(employee, employee_number="E1", name="Bo", consent=None)
    )

    employee.refresh_from_db()
    assert employee.consent_recorded_at is None and employee.consent_recorded_by is None
    withdrawn = "Consent withdrawn: no new photo will be accepted."
    assert any(message.startswith(withdrawn) for message in messages_of(response))


def test_the_consent_checkbox_starts_ticked_and_the_banner_goes_once_consent_is_recorded(admin_client, admin_user):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    banner = 'class="consent-note"'
    assert banner in admin_client.get(change_url(employee)).content.decode()
    assert banner in admin_client.get(ADD_URL).content.decode()
    employee.record_consent(admin_user)

    page = admin_client.get(change_url(employee)).content.decode()

    assert re.search(r'<input type="checkbox" name="consent"[^>]* checked', page)
    assert f"by {admin_user.username}." in page
    assert banner not in page


# --- The embedding stays out of every page -----------------------------------------------------


def test_the_embedding_never_appears_in_any_admin_page(
    admin_client, base_model_version, lfw_photo, django_capture_on_commit_callbacks
):
    photo = upload(lfw_photo("Gerry_Adams", 1), "a.jpg")
    add_employee(admin_client, django_capture_on_commit_callbacks, photos=[photo])
    process_all()
    template = FaceTemplate.objects.get()
    assert template.status == "ready"
    values = [f"{value:.4f}"[:7] for value in template.embedding[:8]]

    responses = [
        admin_client.get(url)
        for url in (
            change_url(template.employee),
            TEMPLATES_URL,
            reverse("admin:identity_facetemplate_change", args=[template.pk]),
            LIST_URL,
        )
    ]

    assert [response.status_code for response in responses] == [200, 200, 200, 200]
    for page in (response.content.decode() for response in responses):
        assert "embedding" not in page.lower()
        assert not any(value in page for value in values)


# --- The staff-only views ----------------------------------------------------------------------


@pytest.fixture
def ready_template(base_model_version, lfw_photo):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    template = FaceTemplate(employee=employee)
    template.source_image.save("bo.jpg", ContentFile(lfw_photo("Gerry_Adams", 1)), save=False)
    template.save()
    enrollment.process_templates([template.pk])
    template.refresh_from_db()
    return template


def test_the_chip_view_refuses_anonymous_users_and_non_staff(client, ready_template):
    anonymous = client.get(chip_url(ready_template))
    assert anonymous.status_code == 302
    assert anonymous.url.startswith(reverse("admin:login"))

    client.force_login(User.objects.create_user("clerk", is_staff=False))
    not_staff = client.get(chip_url(ready_template))
    assert not_staff.status_code == 302
    assert not_staff.url.startswith(reverse("admin:login"))


def test_the_chip_view_needs_the_permission_to_view_face_templates(client, ready_template):
    user = User.objects.create_user("reception", is_staff=True)
    client.force_login(user)
    assert client.get(chip_url(ready_template)).status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="view_facetemplate"))
    client.force_login(User.objects.get(pk=user.pk))  # a fresh user: permissions are cached
    response = client.get(chip_url(ready_template))
    assert response.status_code == 200
    assert {"private", "no-store"} <= set(response["Cache-Control"].split(", "))
    with ready_template.chip.open("rb") as chip:
        assert b"".join(response.streaming_content) == chip.read()


def test_a_template_without_a_chip_has_no_face_image(admin_client):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    template = FaceTemplate.objects.create(employee=employee, source_image="faces/1/x.jpg")
    assert admin_client.get(chip_url(template)).status_code == 404


def test_the_status_endpoint_counts_templates_and_says_when_the_worker_is_late(admin_client, client):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    fresh = FaceTemplate.objects.create(employee=employee, source_image="faces/1/a.jpg")
    rejected = FaceTemplate.objects.create(
        employee=employee, source_image="faces/1/b.jpg", status="rejected", reason="No."
    )
    url = reverse("identity:employee-templates", args=[employee.pk])

    assert admin_client.get(url).json() == {
        "pending": 1,
        "ready": 0,
        "rejected": 1,
        "waiting_for_worker": False,
        "templates": [{"id": fresh.pk, "status": "pending"}, {"id": rejected.pk, "status": "rejected"}],
    }
    FaceTemplate.objects.filter(pk=fresh.pk).update(queued_at=timezone.now() - timedelta(seconds=61))
    assert admin_client.get(url).json()["waiting_for_worker"] is True
    assert client.get(url).status_code == 302  # anonymous


def test_a_template_that_waited_long_shows_waiting_for_the_background_worker(admin_client):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    FaceTemplate.objects.create(
        employee=employee, source_image="faces/1/a.jpg", queued_at=timezone.now() - timedelta(minutes=5)
    )

    page = admin_client.get(change_url(employee)).content.decode()

    assert '<p id="enrollment-waiting" class="template-waiting">' in page  # not hidden
    assert "Waiting for the background worker: no worker has taken this photo yet." in page


# --- Lists and actions -------------------------------------------------------------------------


def test_the_employee_list_counts_photos_and_says_who_is_not_enrolled_yet(admin_client, ready_template):
    employee = Employee.objects.create(employee_number="E7", name="Cy", department="Kitchen")
    for status in ("pending", "rejected", "rejected"):
        FaceTemplate.objects.create(employee=employee, source_image="faces/1/a.jpg", status=status)
    FaceTemplate.objects.create(employee=ready_template.employee, source_image="faces/1/b.jpg", status="rejected")

    response = admin_client.get(LIST_URL)

    rows = response.context["cl"].result_list
    counts = {row.name: (row.ready_count, row.pending_count, row.rejected_count) for row in rows}
    assert counts == {"Bo": (1, 0, 1), "Cy": (0, 1, 2)}
    page = response.content.decode()
    assert '<td class="field-photo_counts">1 ready, 1 rejected</td>' in page
    assert (
        '<td class="field-photo_counts"><span class="not-enrolled">not enrolled yet</span> '
        "(1 being checked, 2 rejected)</td>"
        in page
    )


def test_empty_cells_show_one_dash_style(admin_client):
    employee = Employee.objects.create(employee_number="E1", name="Bo")  # no department
    template = FaceTemplate.objects.create(employee=employee, source_image="faces/1/a.jpg")  # pending: nothing yet

    pages = [admin_client.get(url).content.decode() for url in (LIST_URL, TEMPLATES_URL, template_url(template))]

    cells = [re.findall(r'<(?:td class="field-(\w+)[^"]*"|div class="(readonly)")>([^<]*)</', page) for page in pages]
    empty = {value for page in cells for *_, value in page if not value.strip("\xa0 ") or value in "-–—"}
    assert empty == {"—"}
    assert ("department_name", "", "—") in cells[0] and ("listed_duplicate", "", "—") in cells[1]
    assert ("", "readonly", "—") in cells[2]  # Django's own empty value (no model version yet)


def test_the_employee_list_filters_by_consent_and_by_having_a_ready_photo(admin_client, admin_user, ready_template):
    without = Employee.objects.create(employee_number="E2", name="Cy")
    ready_template.employee.record_consent(admin_user)

    def listed(query: str) -> set[str]:
        return {e.employee_number for e in admin_client.get(LIST_URL + query).context["cl"].result_list}

    assert listed("?consent=yes") == {"E1"}
    assert listed("?consent=no") == {without.employee_number}
    assert listed("?ready_photo=yes") == {"E1"}
    assert listed("?ready_photo=no") == {"E2"}
    assert listed("?q=cy") == {"E2"}


def test_the_deactivate_action_stops_recognising_employees_and_reactivate_undoes_it(admin_client):
    chosen = Employee.objects.create(employee_number="E1", name="Bo")
    other = Employee.objects.create(employee_number="E2", name="Cy")

    response = admin_client.post(LIST_URL, {"action": "deactivate", "_selected_action": [chosen.pk]}, follow=True)

    assert list(Employee.objects.active()) == [other]
    assert "1 employee deactivated: no longer recognised." in messages_of(response)
    admin_client.post(LIST_URL, {"action": "reactivate", "_selected_action": [chosen.pk]})
    assert Employee.objects.active().count() == 2


def test_the_record_consent_action_records_who_and_leaves_earlier_records_alone(admin_client, admin_user):
    earlier = timezone.now() - timedelta(days=3)
    already = Employee.objects.create(employee_number="E1", name="Bo", consent_recorded_at=earlier)
    new = Employee.objects.create(employee_number="E2", name="Cy")

    response = admin_client.post(
        LIST_URL, {"action": "record_consent", "_selected_action": [already.pk, new.pk]}, follow=True
    )

    already.refresh_from_db()
    new.refresh_from_db()
    assert already.consent_recorded_at == earlier
    assert new.consent_recorded_by == admin_user
    assert "Consent recorded for 1 employee." in messages_of(response)


def test_a_second_employee_with_the_first_ones_face_is_flagged_as_a_possible_duplicate(
    admin_client, base_model_version, lfw_photo, django_capture_on_commit_callbacks
):
    photo = upload(lfw_photo("Gerry_Adams", 1), "a.jpg")
    add_employee(admin_client, django_capture_on_commit_callbacks, photos=[photo])
    process_all()
    first = Employee.objects.get()
    add_employee(
        admin_client,
        django_capture_on_commit_callbacks,
        employee_number="E200",
        name="Gerald Adamson",
        photos=[upload(lfw_photo("Gerry_Adams", 2), "b.jpg")],
    )
    process_all()
    second = Employee.objects.get(employee_number="E200")
    template = second.templates.get()

    page = admin_client.get(change_url(second)).content.decode()
    listing = admin_client.get(LIST_URL).content.decode()

    assert template.possible_duplicate_of == first
    link = f'<a href="{change_url(first)}">{first}</a>'
    assert f"⚠ Possible duplicate of {link} (distance {template.duplicate_distance:.3f})." in page
    assert f"⚠ Possible duplicate of <a href=\"{change_url(first)}\">{first.name}</a>" in listing


def test_the_retry_action_puts_a_rejected_template_back_to_pending(admin_client, django_capture_on_commit_callbacks):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    rejected = FaceTemplate.objects.create(
        employee=employee, source_image="faces/1/a.jpg", status="rejected", reason="No face was found."
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            TEMPLATES_URL, {"action": "retry_templates", "_selected_action": [rejected.pk]}, follow=True
        )

    rejected.refresh_from_db()
    assert (rejected.status, rejected.reason) == ("pending", "")
    assert len(callbacks) == 1
    assert "1 photo sent to be checked again." in messages_of(response)


def test_the_employee_retry_action_sends_only_rejected_photos_again(admin_client, django_capture_on_commit_callbacks):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    rejected = FaceTemplate.objects.create(employee=employee, source_image="faces/1/a.jpg", status="rejected")
    pending = FaceTemplate.objects.create(employee=employee, source_image="faces/1/b.jpg")
    queued_at = pending.queued_at

    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(
            LIST_URL, {"action": "retry_rejected_photos", "_selected_action": [employee.pk]}, follow=True
        )

    assert FaceTemplate.objects.get(pk=rejected.pk).status == "pending"
    assert FaceTemplate.objects.get(pk=pending.pk).queued_at == queued_at
    assert "1 rejected photo sent to be checked again." in messages_of(response)


def test_face_templates_cannot_be_added_or_edited_in_the_admin(admin_client):
    employee = Employee.objects.create(employee_number="E1", name="Bo")
    template = FaceTemplate.objects.create(employee=employee, source_image="faces/1/a.jpg")

    assert admin_client.get(reverse("admin:identity_facetemplate_add")).status_code == 403
    page = admin_client.get(reverse("admin:identity_facetemplate_change", args=[template.pk])).content.decode()
    assert 'name="_save"' not in page
    assert "Being checked…" in page


def test_the_face_template_list_filters_by_status_and_searches_by_employee(admin_client):
    bo = Employee.objects.create(employee_number="E1", name="Bo")
    cy = Employee.objects.create(employee_number="E2", name="Cy")
    FaceTemplate.objects.create(employee=bo, source_image="faces/1/a.jpg", status="rejected", reason="Too dark.")
    FaceTemplate.objects.create(employee=cy, source_image="faces/2/a.jpg")

    def listed(query: str) -> list[str]:
        return [t.employee.name for t in admin_client.get(TEMPLATES_URL + query).context["cl"].result_list]

    assert listed("?status__exact=rejected") == ["Bo"]
    assert listed("?q=E2") == ["Cy"]


def test_the_web_code_never_loads_tensorflow():
    # Web processes stay small and start fast: only workers and commands load the network.
    script = (
        "import sys, django; django.setup(); import frid_site.urls, frid_site.wsgi, identity.admin, "
        "identity.admin_imports, identity.views; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, check=True)


# --- Where a template came from ----------------------------------------------------------------


def hr_user() -> User:
    """A staff user with the HR group's permissions (not a superuser: no delete permission)."""
    user = User.objects.create_user("hana", is_staff=True)
    for permission in roles.GROUP_PERMISSIONS[roles.HR]:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)


def test_each_template_says_where_it_came_from_and_hr_may_delete_the_automatic_ones(client, lfw_photo):
    photo = stored_template(lfw_photo("Gerry_Adams", 1), "hr.jpg", status="rejected", reason="No.")
    attempt = VerificationAttempt.objects.create(mode="kiosk", decision="verified")
    # As identity.template_updates makes them: no photo kept, only the face.
    automatic = FaceTemplate.objects.create(employee=photo.employee, source="capture", from_attempt=attempt)
    client.force_login(hr_user())

    pages = [client.get(url).content.decode() for url in (change_url(photo.employee), TEMPLATES_URL)]

    attempt_url = reverse("admin:identity_verificationattempt_change", args=[attempt.pk])
    attempt_link = f'automatic, from <a href="{attempt_url}">'
    for page in pages:
        assert attempt_link in page and "HR photo" in page
        assert f'href="{reverse("admin:identity_facetemplate_delete", args=[automatic.pk])}"' in page
    delete = "admin:identity_facetemplate_delete"
    assert client.get(reverse(delete, args=[photo.pk])).status_code == 403
    assert client.post(reverse(delete, args=[automatic.pk]), {"post": "yes"}).status_code == 302
    assert list(FaceTemplate.objects.values_list("pk", flat=True)) == [photo.pk]
