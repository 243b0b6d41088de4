"""Importing employees from a zip in the admin: the upload's checks, the task, the progress page."""

import io
import json
import random
import zipfile

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from identity import admin_imports, bulk_import, tasks
from identity.models import BulkImport, Employee, FaceTemplate
from tests.identity.conftest import embedded_by

PHOTOS = {
    # Inside a top folder, as zipping a folder makes it; the two-face photo is a real LFW one.
    "new-hires/Aaron_Peirsol/Aaron_Peirsol_0001.jpg": "Aaron_Peirsol/Aaron_Peirsol_0001.jpg",
    "new-hires/Aaron_Sorkin/Aaron_Sorkin_0001.jpg": "Aaron_Sorkin/Aaron_Sorkin_0001.jpg",
    "new-hires/Abdullatif_Sener/Abdullatif_Sener_0002.jpg": "Abdullatif_Sener/Abdullatif_Sener_0002.jpg",
}


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def media_in_tmp_path(request, settings, tmp_path):
    if "workers" in request.fixturenames:
        return  # worker processes read the photos from the run's own MEDIA_ROOT
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def photos_zip(faces_dir) -> bytes:
    files = {name: (faces_dir / "lfw" / source).read_bytes() for name, source in PHOTOS.items()}
    files["__MACOSX/new-hires/._Aaron_Sorkin"] = b"\x00\x05\x16\x07"  # what macOS's Archive Utility adds
    return zip_of(files)


def table(page: str, table_id: str) -> str:
    """The HTML of the page's table with this id."""
    start = page.index(f'<table id="{table_id}"')
    return page[start:page.index("</table>", start)]


def upload(client, data: bytes, consent: bool = True, name: str = "new-hires.zip"):
    form = {"archive": SimpleUploadedFile(name, data, content_type="application/zip")}
    if consent:
        form["consent"] = "on"
    return client.post(reverse("admin:identity_bulkimport_add"), form)


@pytest.mark.slow
def test_an_uploaded_zip_is_imported_by_the_task_and_its_page_shows_the_outcome(
    admin_client, admin_user, photos_zip, base_model_version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(admin_client, photos_zip)

    bulk = BulkImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:identity_bulkimport_change", args=[bulk.pk])
    assert (bulk.status, bulk.created_by) == (BulkImport.Status.QUEUED, admin_user)
    assert len(callbacks) == 1  # the task is sent once the row is committed

    tasks.run_bulk_import(bulk.pk)  # what the worker runs

    bulk.refresh_from_db()
    assert bulk.status == BulkImport.Status.DONE
    assert (bulk.total_photos, bulk.processed_photos, bulk.enrolled_photos, bulk.rejected_photos,
            bulk.employees_created) == (3, 3, 2, 1, 3)
    assert bulk.percent_done == 100
    assert sorted(Employee.objects.values_list("employee_number", flat=True)) == [
        "Aaron_Peirsol", "Aaron_Sorkin", "Abdullatif_Sener"
    ]
    assert all(employee.consent_recorded_by == admin_user for employee in Employee.objects.all())
    assert FaceTemplate.objects.filter(status=FaceTemplate.Status.READY).count() == 2
    page = admin_client.get(reverse("admin:identity_bulkimport_change", args=[bulk.pk])).content.decode()
    assert '<strong id="import-status">done</strong>' in page
    assert '<td data-count="enrolled_photos">2</td>' in page
    assert '<td data-count="employees_created">3</td>' in page
    created = table(page, "created-employees")
    for employee in Employee.objects.all():
        assert f'<a href="{reverse("admin:identity_employee_change", args=[employee.pk])}">{employee.name}</a>' in created
    rejected = table(page, "rejected-photos")
    template = FaceTemplate.objects.get(status=FaceTemplate.Status.REJECTED)
    assert (f'<a href="{reverse("admin:identity_facetemplate_change", args=[template.pk])}">'
            "Abdullatif_Sener/Abdullatif_Sener_0002.jpg</a>") in rejected
    assert "This photo shows 2 faces" in rejected
    assert "setTimeout(poll" not in page  # finished: the page no longer refreshes itself
    progress = admin_client.get(reverse("admin:identity_bulkimport_progress", args=[bulk.pk])).json()
    assert progress == {
        "status": "done", "percent_done": 100, "total_photos": 3, "processed_photos": 3, "enrolled_photos": 2,
        "rejected_photos": 1, "employees_created": 3, "finished": True,
    }


def test_a_running_import_page_polls_its_progress(admin_client, db):
    bulk = BulkImport.objects.create(archive="imports/x.zip", status=BulkImport.Status.RUNNING,
                                     total_photos=8, processed_photos=2)

    page = admin_client.get(reverse("admin:identity_bulkimport_change", args=[bulk.pk])).content.decode()

    assert '<progress id="import-progress" max="100" value="25">' in page
    assert reverse("admin:identity_bulkimport_progress", args=[bulk.pk]) in page
    assert "setTimeout(poll, 2000)" in page
    assert '<meta http-equiv="refresh" content="2">' in page


def test_the_progress_endpoint_is_for_staff_only(client, django_user_model, db):
    bulk = BulkImport.objects.create(archive="imports/x.zip")
    client.force_login(django_user_model.objects.create_user("visitor", password="not-used"))

    response = client.get(reverse("admin:identity_bulkimport_progress", args=[bulk.pk]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("name", ["../evil.jpg", "photos/../../evil.jpg", "/etc/cron.d/evil", "C:\\evil.jpg"])
def test_it_refuses_a_zip_with_paths_outside_its_folder(admin_client, name, db):
    response = upload(admin_client, zip_of({"E1/ok.jpg": b"x", name: b"x"}))

    assert response.status_code == 200
    assert "names a file outside its own folder" in response.content.decode()
    assert not BulkImport.objects.exists()


def test_it_refuses_a_zip_that_unpacks_to_more_than_the_limit(admin_client, settings, db):
    settings.FRID_MAX_IMPORT_BYTES = 500_000  # a zip may unpack to twice that
    bomb = zip_of({"E1/zeros.jpg": bytes(1_500_000)})
    assert len(bomb) < 10_000  # zeros compress to almost nothing: the header's size is what counts

    response = upload(admin_client, bomb)

    assert "The zip unpacks to 1.5 MB; up to 1 MB is accepted" in response.content.decode()
    assert not BulkImport.objects.exists()


def test_it_refuses_a_zip_over_the_limit_stating_the_zip_and_photo_limits_from_the_settings(
    admin_client, settings, db
):
    settings.FRID_MAX_IMPORT_BYTES = 2_000
    settings.FRID_MAX_UPLOAD_BYTES = 1_500
    large = zip_of({"E1/photo.jpg": random.Random(0).randbytes(3_000)})  # noise does not compress
    assert len(large) > 2_000

    page = upload(admin_client, large).content.decode()

    assert (f"The zip is {len(large) / 1e3:.3g} kB; zips up to 2 kB are accepted (each photo in it up to 1.5 kB). "
            "Split it into several zips.") in page
    assert not BulkImport.objects.exists()


def test_the_help_text_states_one_rule_for_photos_and_zips_from_the_settings(admin_client, settings, db):
    settings.FRID_MAX_IMPORT_BYTES = 1_500_000_000
    settings.FRID_MAX_UPLOAD_BYTES = 15_000_000

    page = admin_client.get(reverse("admin:identity_bulkimport_add")).content.decode()

    assert "Each photo up to 15 MB (as on an employee's page); the zip up to 1.5 GB and 20,000 files." in page
    assert 'data-archive-limit="1500000000"' in page  # what the page checks before sending


def test_it_refuses_a_zip_with_too_many_files(admin_client, monkeypatch, db):
    monkeypatch.setattr(bulk_import, "MAX_ARCHIVE_MEMBERS", 3)

    response = upload(admin_client, zip_of({f"E1/{number}.jpg": b"x" for number in range(4)}))

    assert "The zip holds 4 files; up to 3 are accepted" in response.content.decode()


def test_it_refuses_a_file_that_is_not_a_zip(admin_client, db):
    response = upload(admin_client, b"%PDF-1.4 not a zip", name="photos.zip")

    assert "This file is not a zip archive" in response.content.decode()
    assert not BulkImport.objects.exists()


def test_it_refuses_an_upload_without_confirmed_consent_and_says_to_choose_the_zip_again(admin_client, db):
    response = upload(admin_client, zip_of({"E1/photo.jpg": b"x"}), consent=False)

    page = response.content.decode()
    assert response.status_code == 200
    assert not BulkImport.objects.exists()
    assert admin_imports.CONSENT_MISSING in page
    assert admin_imports.CHOOSE_AGAIN in page


def test_a_form_refused_before_any_zip_was_chosen_does_not_ask_to_choose_it_again(admin_client, db):
    page = admin_client.post(reverse("admin:identity_bulkimport_add"), {}).content.decode()

    assert admin_imports.CONSENT_MISSING in page
    assert admin_imports.CHOOSE_AGAIN not in page


def test_the_import_form_asks_for_consent_before_the_zip_and_has_one_import_button(admin_client, db):
    page = admin_client.get(reverse("admin:identity_bulkimport_add")).content.decode()

    assert page.index('name="consent"') < page.index('name="archive"')
    assert '<input type="submit" value="Import" class="default" name="_save" id="import-button">' in page
    assert 'name="_addanother"' not in page and 'name="_continue"' not in page
    assert "identity/bulk_import.js" in page  # consent and size checked before the zip is sent


@pytest.mark.slow
def test_with_imports_on_workers_the_zips_photos_are_embedded_by_the_embedding_workers(
    admin_user, photos_zip, base_model_version, workers, settings, tmp_path
):
    from tests.identity.test_tasks import FIRST_TASK_TIMEOUT_SECONDS

    settings.FRID_BULK_IMPORT_ON_WORKERS = True
    settings.FRID_IMPORT_WORKER_PATIENCE_SECONDS = 3600  # only the worker may embed them here
    (worker,) = workers.start_sharing(1, "embeddings", tmp_path, FIRST_TASK_TIMEOUT_SECONDS)
    bulk = BulkImport(created_by=admin_user)
    bulk.archive.save("new-hires.zip", ContentFile(photos_zip))

    tasks.run_bulk_import(bulk.pk)  # what the bulk worker runs

    bulk.refresh_from_db()
    assert bulk.status == BulkImport.Status.DONE
    assert (bulk.total_photos, bulk.processed_photos, bulk.enrolled_photos, bulk.rejected_photos) == (3, 3, 2, 1)
    assert embedded_by(workers.worker_log(worker)) == set(FaceTemplate.objects.values_list("pk", flat=True))


def test_a_redelivered_import_is_marked_interrupted_instead_of_importing_twice(db):
    bulk = BulkImport.objects.create(archive="imports/x.zip", status=BulkImport.Status.RUNNING,
                                     total_photos=10, processed_photos=3)

    tasks.run_bulk_import(bulk.pk)

    bulk.refresh_from_db()
    assert bulk.status == BulkImport.Status.FAILED
    assert bulk.error.startswith("The import was interrupted (the background worker stopped) after 3 of 10 photos.")


def test_an_archive_that_cannot_be_imported_marks_the_import_failed_in_plain_words(admin_user, base_model_version):
    bulk = BulkImport(created_by=admin_user)
    bulk.archive.save("staff.zip", ContentFile(zip_of({"employees.csv": b"number,name,photo\nE1,Ann,ann.jpg\n"})))

    tasks.run_bulk_import(bulk.pk)

    bulk.refresh_from_db()
    assert bulk.status == BulkImport.Status.FAILED
    assert bulk.error.startswith("employees.csv has no column employee_number.")
    assert bulk.finished_at is not None
    assert not Employee.objects.exists()


def test_it_marks_the_import_failed_when_the_broker_is_down(monkeypatch, db):
    def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("Connection refused")

    monkeypatch.setattr(tasks.run_bulk_import, "apply_async", unreachable)
    bulk = BulkImport.objects.create(archive="imports/x.zip")

    assert tasks.send_bulk_import(bulk.pk) is False

    bulk.refresh_from_db()
    assert bulk.status == BulkImport.Status.FAILED
    assert bulk.error == bulk_import.BROKER_DOWN_ERROR


def test_the_import_list_offers_an_import_from_a_zip_page_with_a_consent_checkbox(admin_client, db):
    add_url = reverse("admin:identity_bulkimport_add")

    listing = admin_client.get(reverse("admin:identity_bulkimport_changelist")).content.decode()
    page = admin_client.get(add_url).content.decode()

    assert f'<a href="{add_url}" class="addlink">Import employees from a zip</a>' in listing
    assert "<h1>Import employees from a zip</h1>" in page
    assert 'type="checkbox" name="consent"' in page
    assert 'type="file" name="archive"' in page


def test_a_finished_import_lists_its_employees_and_photos_with_links_to_their_pages(admin_client, db):
    ann = Employee.objects.create(employee_number="E1", name="Ann Archer")
    gone = Employee.objects.create(employee_number="E2", name="Gus Gone")
    bob = Employee.objects.create(employee_number="E3", name="Bob Brown")
    ready = FaceTemplate.objects.create(employee=ann, source_image="faces/1/ann.jpg")
    rejected = FaceTemplate.objects.create(employee=ann, source_image="faces/1/two.jpg", status="rejected")
    summary = bulk_import.ImportSummary(
        total_photos=4, processed_photos=4,
        created_employees=[bulk_import.EmployeeOutcome(person.pk, person.employee_number, person.name)
                           for person in (ann, gone)],
        updated_employees=[bulk_import.EmployeeOutcome(bob.pk, "E3", "Bob Brown")],
        enrolled=[bulk_import.PhotoOutcome("E1/ann.jpg", "E1", "", ann.pk, ready.pk)],
        rejected=[bulk_import.PhotoOutcome("E1/two.jpg", "E1", "This photo shows 2 faces.", ann.pk, rejected.pk)],
        unreadable=[bulk_import.PhotoOutcome("E2/notes.txt", "E2", "This file is not a photo.", gone.pk),
                    bulk_import.PhotoOutcome("employees.csv line 3", "", "The name is missing. Fill it in.")],
    )
    bulk = BulkImport.objects.create(archive="imports/x.zip", status=BulkImport.Status.DONE,
                                     report=json.dumps(summary.to_document()))
    gone.delete()

    page = admin_client.get(reverse("admin:identity_bulkimport_change", args=[bulk.pk])).content.decode()

    created = table(page, "created-employees")
    assert f'<a href="{reverse("admin:identity_employee_change", args=[ann.pk])}">Ann Archer</a>' in created
    assert "Gus Gone (deleted since)" in created
    assert "0: not enrolled yet, add a photo" in created  # Gus's only file was not a photo
    assert "Bob Brown" in table(page, "updated-employees") and "Bob Brown" not in created
    rejected_row = table(page, "rejected-photos")
    assert f'<a href="{reverse("admin:identity_facetemplate_change", args=[rejected.pk])}">E1/two.jpg</a>' in rejected_row
    assert "This photo shows 2 faces." in rejected_row
    unreadable = table(page, "unreadable-photos")
    assert "E2/notes.txt" in unreadable and "This file is not a photo." in unreadable
    assert "employees.csv line 3" in unreadable and "<td>—</td>" in unreadable  # the row named nobody


def test_an_import_reported_in_plain_text_before_reports_were_kept_as_data_still_shows_it(admin_client, db):
    bulk = BulkImport.objects.create(archive="imports/x.zip", status=BulkImport.Status.DONE,
                                     report="Employees created: 1; existing employees given new photos: 0.")

    page = admin_client.get(reverse("admin:identity_bulkimport_change", args=[bulk.pk])).content.decode()

    assert '<pre class="import-report">Employees created: 1; existing employees given new photos: 0.</pre>' in page


def test_a_zip_of_one_employee_folder_is_not_taken_for_a_wrapping_folder(tmp_path):
    archive = io.BytesIO(zip_of({"E1/photo.jpg": b"x", "E1/other.jpg": b"y"}))

    root = bulk_import.extract_archive(archive, tmp_path)

    assert root == tmp_path
    assert (tmp_path / "E1" / "other.jpg").read_bytes() == b"y"


def test_a_damaged_member_stops_the_unpacking_in_plain_words(tmp_path):
    data = bytearray(zip_of({"E1/photo.jpg": b"a face, or so it says " * 50}))
    # Past the 30-byte local header and the 12-byte name: in the compressed bytes, which still
    # inflate, to something whose CRC no longer matches.
    data[50:54] = b"\xff\xff\xff\xff"

    with pytest.raises(bulk_import.ImportProblem, match="E1/photo.jpg in the zip cannot be unpacked"):
        bulk_import.extract_archive(io.BytesIO(bytes(data)), tmp_path)
