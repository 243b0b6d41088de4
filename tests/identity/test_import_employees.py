"""The import_employees command and identity.bulk_import, on small folders of real LFW photos."""

import io
import shutil
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from identity import bulk_import, tasks
from identity.models import Employee, FaceTemplate
from tests.identity.conftest import celery_pointed_at, embedded_by
from training.models import ModelVersion

# All four photos are accepted by the enrollment rules; Abdullatif_Sener_0002 is a real LFW photo
# that shows two people (checked with training.faces when these tests were written).
ACCEPTED = ["Aaron_Peirsol/Aaron_Peirsol_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0002.jpg",
            "Aaron_Sorkin/Aaron_Sorkin_0001.jpg", "Abel_Pacheco/Abel_Pacheco_0001.jpg"]
TWO_FACES = "Abdullatif_Sener/Abdullatif_Sener_0002.jpg"


def copy_photo(faces_dir: Path, relative: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(faces_dir / "lfw" / relative, target)  # copyfile: LFW's files are read-only
    return target


@pytest.fixture
def hr_user(django_user_model):
    return django_user_model.objects.create_user("hr", password="not-used")


@pytest.fixture
def employee_folders(tmp_path, faces_dir):
    """Four employee folders: three people with good photos, one two-face photo, a text file and
    a file over the size limit (the limit is lowered to 50 kB by the tests that use it)."""
    folder = tmp_path / "photos"
    for relative in ACCEPTED + [TWO_FACES]:
        copy_photo(faces_dir, relative, folder / relative)
    (folder / "Aaron_Sorkin" / "notes.txt").write_text("Aaron prefers the morning shift.\n")
    (folder / "Abel_Pacheco" / "huge.jpg").write_bytes(
        (faces_dir / "lfw" / ACCEPTED[3]).read_bytes() + bytes(60_000)
    )
    (folder / "Abel_Pacheco" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return folder


def run_command(*arguments) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("import_employees", *map(str, arguments), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


@pytest.mark.slow
def test_it_imports_one_employee_per_folder_and_reports_every_problem(
    employee_folders, base_model_version, hr_user, settings
):
    settings.FRID_MAX_UPLOAD_BYTES = 50_000

    output, _ = run_command(employee_folders, "--consent-recorded-by", "hr")

    employees = {employee.employee_number: employee for employee in Employee.objects.all()}
    assert sorted(employees) == ["Aaron_Peirsol", "Aaron_Sorkin", "Abdullatif_Sener", "Abel_Pacheco"]
    assert employees["Abdullatif_Sener"].name == "Abdullatif Sener"
    assert all(employee.consent_recorded_by == hr_user for employee in employees.values())
    assert all(employee.consent_recorded_at is not None for employee in employees.values())
    ready = FaceTemplate.objects.filter(status=FaceTemplate.Status.READY)
    assert sorted(template.employee.employee_number for template in ready) == [
        "Aaron_Peirsol", "Aaron_Peirsol", "Aaron_Sorkin", "Abel_Pacheco"
    ]
    assert all(template.model_version == base_model_version for template in ready)
    rejected = FaceTemplate.objects.get(status=FaceTemplate.Status.REJECTED)
    assert rejected.employee.employee_number == "Abdullatif_Sener"
    assert "shows 2 faces" in rejected.reason
    # The text file and the oversized file never became templates.
    assert FaceTemplate.objects.count() == 5
    assert "Employees created: 4; existing employees given new photos: 0." in output
    assert "Photos: 7 found, 4 enrolled, 1 rejected, 2 unreadable." in output
    assert ("- Abdullatif_Sener/Abdullatif_Sener_0002.jpg (employee Abdullatif_Sener): This photo shows 2 faces"
            in output)
    assert "- Aaron_Sorkin/notes.txt (employee Aaron_Sorkin): This file is not a photo" in output
    assert "- Abel_Pacheco/huge.jpg (employee Abel_Pacheco): The file is 0.1 MB; photos up to 0 MB" in output


@pytest.mark.slow
def test_it_reads_employees_csv_adds_photos_to_existing_employees_and_flags_duplicates(
    tmp_path, faces_dir, base_model_version, hr_user
):
    existing = Employee.objects.create(employee_number="E1", name="Aaron Peirsol", department="Swimming")
    folder = tmp_path / "hr-export"
    copy_photo(faces_dir, ACCEPTED[0], folder / "photos" / "peirsol-1.jpg")
    copy_photo(faces_dir, ACCEPTED[1], folder / "photos" / "peirsol-2.jpg")
    copy_photo(faces_dir, ACCEPTED[2], folder / "photos" / "sorkin.jpg")
    (folder / "employees.csv").write_text(
        "\ufeffEmployee_Number,Name,Email,Department,Photo\n"  # as spreadsheets save it: BOM, capitals
        "E1,Someone Else,,,photos/peirsol-1.jpg\n"
        "E2,Aaron Sorkin,aaron@example.com,Writing,photos/sorkin.jpg\n"
        "E2,Aaron Sorkin,aaron@example.com,Writing,../outside.jpg\n"
        "E3,Not Aaron,not-an-email,Writing,photos/sorkin.jpg\n"
        "E4,Same Face As E1,,,photos/peirsol-2.jpg\n"
    )

    summary = bulk_import.import_folder(folder, hr_user)

    existing.refresh_from_db()
    assert (existing.name, existing.department) == ("Aaron Peirsol", "Swimming")  # details kept
    assert existing.consent_recorded_by == hr_user
    assert existing.templates.get().status == FaceTemplate.Status.READY
    created = Employee.objects.get(employee_number="E2")
    assert (created.name, created.email, created.department) == ("Aaron Sorkin", "aaron@example.com", "Writing")
    assert not Employee.objects.filter(employee_number="E3").exists()
    assert (summary.employees_created, summary.employees_updated, summary.photos_enrolled) == (2, 1, 3)
    assert [(outcome.photo, outcome.employee_number) for outcome in summary.unreadable] == [
        ("employees.csv line 4 (../outside.jpg)", "E2"),
        ("employees.csv line 5 (photos/sorkin.jpg)", "E3"),
    ]
    assert "leads outside the folder" in summary.unreadable[0].reason
    assert "not-an-email is not an email address" in summary.unreadable[1].reason
    # Two photos of one man under two numbers: HR is warned once (about whichever photo the batch
    # embedded second).
    assert [(outcome.employee_number, outcome.reason[:33]) for outcome in summary.possible_duplicates] in (
        [("E4", "looks like Aaron Peirsol (E1), di")],
        [("E1", "looks like Same Face As E1 (E4), ")],
    )


@pytest.mark.slow
def test_it_reports_progress_in_batches_and_stops_at_the_limit(
    employee_folders, base_model_version, hr_user, monkeypatch
):
    monkeypatch.setattr(bulk_import, "BATCH_SIZE", 2)
    seen = []

    summary = bulk_import.import_folder(
        employee_folders, hr_user, limit=5, progress=lambda progress: seen.append(progress.processed_photos)
    )

    # Sorted, the first five files are Aaron_Peirsol's two, Aaron_Sorkin's photo and notes.txt,
    # and Abdullatif_Sener's two-face photo.
    assert seen == [0, 2, 4, 5]
    assert (summary.total_photos, summary.photos_enrolled, len(summary.rejected), len(summary.unreadable)) == (
        5, 3, 1, 1
    )


def test_it_refuses_an_unknown_user_for_the_consent(employee_folders, db):
    with pytest.raises(CommandError, match="There is no user 'nobody'"):
        run_command(employee_folders, "--consent-recorded-by", "nobody")


def test_it_requires_the_user_who_recorded_consent(employee_folders, db):
    with pytest.raises(CommandError, match="--consent-recorded-by"):
        run_command(employee_folders)


def test_it_refuses_a_csv_without_the_employee_number_column(tmp_path, base_model_version, hr_user):
    (tmp_path / "employees.csv").write_text("number,name,photo\nE1,Ann,ann.jpg\n")
    with pytest.raises(CommandError, match="employees.csv has no column employee_number"):
        run_command(tmp_path, "--consent-recorded-by", "hr")
    assert not Employee.objects.exists()


def test_it_refuses_a_folder_without_photos(tmp_path, base_model_version, hr_user):
    (tmp_path / "empty-employee").mkdir()
    with pytest.raises(CommandError, match="holds no photos"):
        run_command(tmp_path, "--consent-recorded-by", "hr")


def test_it_refuses_to_import_without_an_active_model(employee_folders, hr_user):
    ModelVersion.objects.update(is_active=False)  # another test may have imported the base model
    with pytest.raises(CommandError, match="No active model version"):
        run_command(employee_folders, "--consent-recorded-by", "hr")
    assert not Employee.objects.exists()


def test_it_reports_photos_outside_employee_folders_without_importing_them(tmp_path, faces_dir):
    copy_photo(faces_dir, ACCEPTED[0], tmp_path / "loose.jpg")
    copy_photo(faces_dir, ACCEPTED[2], tmp_path / "E7" / "photo.jpg")

    entries = bulk_import.read_folder(tmp_path)

    assert [(entry.label, entry.employee_number, bool(entry.problem)) for entry in entries] == [
        ("E7/photo.jpg", "E7", False),
        ("loose.jpg", "", True),
    ]


# --- Batches handed to the embedding workers (--on-workers) ----------------------------------------


def outcomes() -> dict[str, tuple[str, str]]:
    """Every template's (status, reason), by the photo's original file name."""
    return {template.original_filename: (template.status, template.reason) for template in FaceTemplate.objects.all()}


@pytest.mark.slow
def test_on_workers_two_worker_processes_share_the_batches_and_the_outcomes_are_as_in_one_process(
    employee_folders, base_model_version, hr_user, workers, settings, monkeypatch, tmp_path
):
    from tests.identity.test_tasks import FIRST_TASK_TIMEOUT_SECONDS

    settings.FRID_MAX_UPLOAD_BYTES = 50_000
    monkeypatch.setattr(bulk_import, "BATCH_SIZE", 1)  # five templates: five batches to share
    in_one_process, _ = run_command(employee_folders, "--consent-recorded-by", "hr")
    expected = outcomes()
    Employee.objects.all().delete()
    first, second = workers.start_sharing(2, "embeddings", tmp_path, 2 * FIRST_TASK_TIMEOUT_SECONDS)

    on_workers, _ = run_command(employee_folders, "--consent-recorded-by", "hr", "--on-workers")

    assert on_workers == in_one_process  # the same report, line for line
    assert outcomes() == expected
    ids = set(FaceTemplate.objects.values_list("pk", flat=True))
    by_first, by_second = embedded_by(workers.worker_log(first)), embedded_by(workers.worker_log(second))
    assert by_first | by_second == ids  # every photo embedded by a worker, none by this process
    assert by_first and by_second, f"one worker did everything: {sorted(by_first)} and {sorted(by_second)}"


@pytest.mark.slow
def test_on_workers_with_no_worker_consuming_the_queue_the_import_embeds_the_photos_itself(
    employee_folders, base_model_version, hr_user, empty_broker, transactional_db, settings, caplog
):
    settings.FRID_MAX_UPLOAD_BYTES = 50_000
    settings.FRID_IMPORT_WORKER_PATIENCE_SECONDS = 0

    output, _ = run_command(employee_folders, "--consent-recorded-by", "hr", "--on-workers")

    assert "Photos: 7 found, 4 enrolled, 1 rejected, 2 unreadable." in output
    assert not FaceTemplate.objects.filter(status=FaceTemplate.Status.PENDING).exists()
    assert "No embedding worker finished a photo of this import" in caplog.text
    # The batch was sent: a worker that takes it later finds nothing pending and changes nothing.
    assert empty_broker.client().llen("embeddings") == 1
    before = outcomes()
    assert tasks.embed_templates(list(FaceTemplate.objects.values_list("pk", flat=True))) == {"processed": []}
    assert outcomes() == before


@pytest.mark.slow
def test_on_workers_with_the_broker_unreachable_the_import_embeds_each_batch_at_once(
    employee_folders, base_model_version, hr_user, transactional_db, settings, caplog
):
    settings.FRID_MAX_UPLOAD_BYTES = 50_000
    settings.FRID_IMPORT_WORKER_PATIENCE_SECONDS = 0  # had a batch counted as sent, this would say so

    with celery_pointed_at("redis://127.0.0.1:1/0"):  # nothing listens on port 1
        output, _ = run_command(employee_folders, "--consent-recorded-by", "hr", "--on-workers")

    assert "Photos: 7 found, 4 enrolled, 1 rejected, 2 unreadable." in output
    assert "could not queue templates" in caplog.text
    assert "No embedding worker finished" not in caplog.text
    assert not FaceTemplate.objects.filter(status=FaceTemplate.Status.PENDING).exists()


@pytest.mark.slow
def test_on_workers_a_worker_killed_mid_batch_loses_no_photo_and_the_import_finishes(
    employee_folders, base_model_version, hr_user, workers, settings, monkeypatch, tmp_path
):
    from tests.identity.test_tasks import FIRST_TASK_TIMEOUT_SECONDS

    settings.FRID_MAX_UPLOAD_BYTES = 50_000
    settings.FRID_IMPORT_WORKER_PATIENCE_SECONDS = 3600  # only a worker may finish the photos here
    monkeypatch.setattr(bulk_import, "BATCH_SIZE", 1)
    (first,) = workers.start_sharing(1, "embeddings", tmp_path, FIRST_TASK_TIMEOUT_SECONDS)
    finished: list = []

    def run_import() -> None:
        try:
            finished.append(bulk_import.import_folder(employee_folders, hr_user, send=tasks.send_import_batch))
        finally:
            connection.close()  # this thread's own connection to the test database

    importing = threading.Thread(target=run_import)
    importing.start()
    # The first task in a fresh worker spends seconds loading TensorFlow after counting its attempt.
    workers.wait_for(lambda: FaceTemplate.objects.filter(attempts__gt=0).exists(), FIRST_TASK_TIMEOUT_SECONDS,
                     "the first batch's task to start")
    workers.kill(first)
    killed = set(FaceTemplate.objects.filter(attempts__gt=0).values_list("pk", flat=True))
    assert FaceTemplate.objects.filter(pk__in=killed, status=FaceTemplate.Status.PENDING).count() == len(killed), (
        "the kill landed after the task had finished"
    )

    # The next worker's requeue at start hands the killed batch's photos out again.
    second = workers.start("embeddings", log_path=tmp_path / "second.log")
    workers.wait_for(lambda: not importing.is_alive(), 2 * FIRST_TASK_TIMEOUT_SECONDS, "the import to finish")

    (summary,) = finished
    assert (summary.photos_enrolled, len(summary.rejected), len(summary.unreadable), summary.still_pending) == (
        4, 1, 2, 0
    )
    assert not FaceTemplate.objects.filter(status=FaceTemplate.Status.PENDING).exists()
    assert killed <= embedded_by(workers.worker_log(second))
