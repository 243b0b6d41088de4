"""A zip import in a real browser at 1280x800, with a real worker and real LFW photos: the consent
tick is checked before the zip is sent (the chosen zip stays), then the finished report lists the
employees created, each linked, and the rejected photo with its reason, without any table
overflowing. Screenshots in the test's folder (and $FRID_SCREENSHOT_DIR)."""

import pytest
from django.urls import reverse

from identity import admin_imports, roles
from identity.models import BulkImport, Employee
from tests.identity.browser import (  # noqa: F401 (browser_allowed: a fixture)
    browser_allowed,
    camera_browser,
    overflowing_tables,
    write_y4m,
)
from tests.identity.screenshots import screenshot
from tests.identity.test_bulk_import_admin import PHOTOS, zip_of
from tests.identity.test_home_page import user_in

pytestmark = pytest.mark.slow

# Covers the worker's start and its first task importing TensorFlow and loading the network on a
# busy two-core machine: an upper bound, never a measurement.
IMPORT_TIMEOUT_MS = 240_000
PASSWORD = "a-long-password-1"  # user_in's


def test_hr_imports_a_zip_and_reads_who_was_created_and_which_photo_was_rejected(
    live_server, browser_allowed, workers, base_model_version, django_user_model, faces_dir, tmp_path
):
    user_in(django_user_model, "hr", roles.HR, is_staff=True)
    archive = tmp_path / "new-hires.zip"
    archive.write_bytes(zip_of({name: (faces_dir / "lfw" / source).read_bytes() for name, source in PHOTOS.items()}))
    workers.start()
    camera = write_y4m(tmp_path / "grey.y4m", None, frames=2)

    with camera_browser(camera, live_server.url) as page:
        page.goto("/admin/login/")
        page.fill("#id_username", "hr")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.goto("/admin/identity/bulkimport/add/")
        page.set_input_files("#id_archive", str(archive))
        page.click("#import-button")
        consent_problem = page.inner_text(".field-consent [data-client-check]")
        still_chosen = page.evaluate("document.getElementById('id_archive').files.length")
        add_url = page.url
        screenshot(page, tmp_path, "bulk-import-consent-missing")
        page.check("#id_consent")
        page.click("#import-button")
        page.wait_for_selector("#import-report", timeout=IMPORT_TIMEOUT_MS)
        created = page.locator("#created-employees tbody a").all_inner_texts()
        rejected = page.locator("#rejected-photos tbody tr").all_inner_texts()
        overflowing = overflowing_tables(page)
        screenshot(page, tmp_path, "bulk-import-report")
        page.click("#created-employees >> text=Aaron Sorkin")
        page.wait_for_load_state()
        employee_page = page.url

    assert consent_problem == admin_imports.CONSENT_MISSING
    assert still_chosen == 1 and add_url.endswith("/add/")  # nothing was sent, nothing was lost
    assert BulkImport.objects.get().status == BulkImport.Status.DONE
    assert created == ["Aaron Peirsol", "Aaron Sorkin", "Abdullatif Sener"]
    assert len(rejected) == 1
    assert "Abdullatif_Sener/Abdullatif_Sener_0002.jpg" in rejected[0] and "2 faces" in rejected[0]
    assert overflowing == []
    assert Employee.objects.count() == 3
    sorkin = Employee.objects.get(employee_number="Aaron_Sorkin")
    assert employee_page == live_server.url + reverse("admin:identity_employee_change", args=[sorkin.pk])
