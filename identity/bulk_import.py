"""Onboarding many employees at once: a folder (or a zip of one) of their photos.

Two layouts are understood:

- one sub-folder per employee, named by the employee number, holding that employee's photos; the
  name is the folder name with underscores as spaces (LFW's ``Aaron_Eckhart`` works as is);
- a file ``employees.csv`` with the header ``employee_number,name,email,department,photo``, the
  photo path relative to the folder; several rows may name the same employee, one photo each.

Existing employees (same number) keep their details and get the new photos; others are created.
Every photo goes the way an upload in the admin goes (``enrollment.add_photo``, then
``enrollment.process_templates``, so the same rules accept or reject it), in batches of
BATCH_SIZE. By default this process embeds the batches itself (one network load, no task per
photo). Given ``send`` (``identity.tasks.send_import_batch``), it hands each batch to the embedding
workers instead and goes on reading the next ones while they work, so that every worker process
on the ``embeddings`` queue, on this host or others, takes a share. Files that are not usable
photos end up in the summary with the reason, never as a crash.

Zip archives (uploaded in the admin, run by the ``run_bulk_import`` task) are checked before
anything is unpacked: size, member count, total unpacked size, no paths that leave the folder.
An uploaded import keeps its summary as data (``ImportSummary.to_document``, in BulkImport.report)
so that its page can link every employee and photo it names.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import stat
import tempfile
import time
import zipfile
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from identity import enrollment
from identity.models import BulkImport, Employee, FaceTemplate
from training.models import ModelVersion

logger = logging.getLogger(__name__)

CSV_NAME = "employees.csv"
CSV_REQUIRED_COLUMNS = ("employee_number", "name", "photo")
CSV_OPTIONAL_COLUMNS = ("email", "department")
# One network call per batch: 32 chips fill the batch the embedder is fastest at.
BATCH_SIZE = 32
# Batches handed to the embedding workers and not finished yet, at most: enough to keep eight
# worker processes busy while this process reads the next photos, few enough that the progress
# shown is never far behind the work.
BATCHES_IN_FLIGHT = 8
# How often the import looks whether the workers finished a batch it handed them.
WORKER_POLL_SECONDS = 0.2

# Limits on uploaded zips. A zip of 1,000 phone photos is about 4 GB; HR imports smaller
# batches. Unpacked size and member count are checked before unpacking, against zip bombs.
# Each photo inside is held to FRID_MAX_UPLOAD_BYTES, as a photo added on an employee's page is.
MAX_ARCHIVE_MEMBERS = 20_000
# The shape of BulkImport.report as run_archive_import writes it (ImportSummary.to_document);
# a report of another shape (plain text, from before) is shown as it is.
REPORT_VERSION = 1
# What archivers add that is not the user's: macOS resource forks and Finder/Explorer files.
JUNK_NAMES = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"}

INTERRUPTED_ERROR = (
    "The import was interrupted (the background worker stopped) after {processed} of {total} photos. "
    "The employees and photos imported until then are kept. Upload a zip of the remaining photos "
    "to import the rest."
)
TIME_LIMIT_ERROR = (
    "The import took longer than the time limit and was stopped after {processed} of {total} photos. "
    "The employees and photos imported until then are kept. Split the rest into smaller zips."
)
UNEXPECTED_ERROR = (
    "The import stopped because of an unexpected error ({error}) after {processed} of {total} photos. "
    "The employees and photos imported until then are kept. Tell the system administrator."
)
NO_UPLOADER_ERROR = (
    "The account that uploaded this zip no longer exists, so nobody can be recorded as having "
    "collected the employees' consent. Upload the zip again."
)


class ImportProblem(ValueError):
    """The folder or archive cannot be imported at all; the message says why and what to do."""


# --- Limits, read from the settings when used (so that a changed setting is what pages say) -----


def photo_limit() -> int:
    """The largest photo accepted, inside a zip as on an employee's page."""
    return settings.FRID_MAX_UPLOAD_BYTES


def archive_limit() -> int:
    """The largest zip accepted."""
    return settings.FRID_MAX_IMPORT_BYTES


def unpacked_limit() -> int:
    """The most a zip may unpack to: photos barely compress, so twice the zip is generous."""
    return 2 * archive_limit()


def size_in_words(size: int) -> str:
    """A size as people read it, in decimal units as the limits are set: "15 MB", "2 GB", "1.5 MB"."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def limits_in_words() -> str:
    """The one size rule of an import, as help texts and errors state it."""
    return (
        f"Each photo up to {size_in_words(photo_limit())} (as on an employee's page); the zip up to "
        f"{size_in_words(archive_limit())} and {MAX_ARCHIVE_MEMBERS:,} files."
    )


@dataclass(frozen=True)
class PhotoEntry:
    """One photo to import, or one CSV row that cannot be (``problem`` says why)."""

    label: str  # how the report names it: its path relative to the folder, or the CSV row
    employee_number: str
    name: str
    email: str = ""
    department: str = ""
    path: Path | None = None
    problem: str = ""


@dataclass(frozen=True)
class PhotoOutcome:
    photo: str
    employee_number: str
    reason: str
    employee_id: int | None = None  # None for a row that names no employee we could make
    template_id: int | None = None  # None for a file that never became a template


@dataclass(frozen=True)
class EmployeeOutcome:
    """An employee the import created, or gave new photos to."""

    employee_id: int
    employee_number: str
    name: str


@dataclass
class ImportSummary:
    total_photos: int = 0
    processed_photos: int = 0
    created_employees: list[EmployeeOutcome] = field(default_factory=list)
    updated_employees: list[EmployeeOutcome] = field(default_factory=list)  # existing employees that got photos
    enrolled: list[PhotoOutcome] = field(default_factory=list)
    rejected: list[PhotoOutcome] = field(default_factory=list)  # refused by the enrollment rules
    unreadable: list[PhotoOutcome] = field(default_factory=list)  # not photos, unreadable, bad rows
    possible_duplicates: list[PhotoOutcome] = field(default_factory=list)  # enrolled, but like someone else
    still_pending: int = 0  # taken over by a worker before this process finished them

    @property
    def employees_created(self) -> int:
        return len(self.created_employees)

    @property
    def employees_updated(self) -> int:
        return len(self.updated_employees)

    @property
    def photos_enrolled(self) -> int:
        return len(self.enrolled)

    @property
    def photos_not_enrolled(self) -> int:
        return len(self.rejected) + len(self.unreadable)

    def to_document(self) -> dict:
        """The summary as JSON-ready data: what an uploaded import keeps, for its page to list."""
        return {"version": REPORT_VERSION, **asdict(self)}

    @classmethod
    def from_document(cls, document: dict) -> "ImportSummary":
        def photos(key: str) -> list[PhotoOutcome]:
            return [PhotoOutcome(**outcome) for outcome in document.get(key, [])]

        def employees(key: str) -> list[EmployeeOutcome]:
            return [EmployeeOutcome(**employee) for employee in document.get(key, [])]

        return cls(
            total_photos=document.get("total_photos", 0),
            processed_photos=document.get("processed_photos", 0),
            created_employees=employees("created_employees"),
            updated_employees=employees("updated_employees"),
            enrolled=photos("enrolled"),
            rejected=photos("rejected"),
            unreadable=photos("unreadable"),
            possible_duplicates=photos("possible_duplicates"),
            still_pending=document.get("still_pending", 0),
        )

    def report(self) -> str:
        """The summary in plain words, photo by photo for everything that needs a person's attention."""
        lines = [
            f"Employees created: {self.employees_created}; existing employees given new photos: "
            f"{self.employees_updated}.",
            f"Photos: {self.total_photos} found, {self.photos_enrolled} enrolled, {len(self.rejected)} "
            f"rejected, {len(self.unreadable)} unreadable"
            + (f", {self.still_pending} still being processed by the worker." if self.still_pending else "."),
        ]
        sections = [
            ("Rejected photos (take a new photo of the employee and add it):", self.rejected),
            ("Unreadable files and rows (fix them and import them again):", self.unreadable),
            ("Possible duplicates (enrolled, but check these are different people):", self.possible_duplicates),
        ]
        for title, outcomes in sections:
            if outcomes:
                lines += ["", title]
                lines += [f"- {outcome.photo} (employee {outcome.employee_number or '?'}): {outcome.reason}"
                          for outcome in outcomes]
        return "\n".join(lines)


Progress = Callable[[ImportSummary], None]
# Hands a batch's pending templates to the embedding workers; False when it could not (broker down).
Send = Callable[[list[int]], bool]


# --- Reading a folder -----------------------------------------------------------------------------


def read_folder(folder: Path) -> list[PhotoEntry]:
    """The photos a folder holds, from employees.csv if there is one, else from its sub-folders."""
    if not folder.is_dir():
        raise ImportProblem(f"{folder} is not a folder.")
    entries = read_csv(folder) if (folder / CSV_NAME).is_file() else _read_employee_folders(folder)
    if not entries:
        raise ImportProblem(
            f"{folder} holds no photos. Put each employee's photos in a folder named after their "
            f"employee number, or list them in {CSV_NAME} (columns: employee_number, name, email, "
            "department, photo)."
        )
    return entries


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name not in JUNK_NAMES


def _read_employee_folders(folder: Path) -> list[PhotoEntry]:
    entries = []
    for child in sorted(filter(_visible, folder.iterdir())):
        if child.is_file():
            entries.append(PhotoEntry(
                label=child.name, employee_number="", name="",
                problem="This file is not in an employee's folder. Put each employee's photos in a "
                        "folder named after their employee number.",
            ))
            continue
        if not child.is_dir():
            continue
        number, name = child.name.strip(), child.name.replace("_", " ").strip()
        problem = _field_problem("employee_number", number) or _field_problem("name", name)
        for photo in sorted(filter(_visible, child.iterdir())):
            if photo.is_file():
                entries.append(PhotoEntry(
                    label=f"{child.name}/{photo.name}", employee_number=number, name=name, path=photo,
                    problem=problem,
                ))
    return entries


def read_csv(folder: Path) -> list[PhotoEntry]:
    """The rows of ``folder/employees.csv``, each checked; rows with problems say what is wrong."""
    try:
        # utf-8-sig: spreadsheet programs start their "CSV UTF-8" files with a byte-order mark.
        text = (folder / CSV_NAME).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportProblem(f"{CSV_NAME} is not UTF-8 text. Save it as \"CSV UTF-8\" and try again.") from error
    reader = csv.DictReader(io.StringIO(text))
    columns = [(name or "").strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in CSV_REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ImportProblem(
            f"{CSV_NAME} has no column {', '.join(missing)}. Its first line must name the columns: "
            "employee_number,name,email,department,photo (email and department may be left out)."
        )
    reader.fieldnames = columns
    entries = []
    for row in reader:
        values = {name: (row.get(name) or "").strip() for name in CSV_REQUIRED_COLUMNS + CSV_OPTIONAL_COLUMNS}
        label = f"{CSV_NAME} line {reader.line_num}" + (f" ({values['photo']})" if values["photo"] else "")
        path, problem = _photo_path(folder, values["photo"])
        problem = next(
            (found for found in (_field_problem(name, values[name]) for name in values if name != "photo") if found),
            problem,
        )
        entries.append(PhotoEntry(
            label=label, employee_number=values["employee_number"], name=values["name"],
            email=values["email"], department=values["department"], path=path, problem=problem,
        ))
    return entries


def _photo_path(folder: Path, photo: str) -> tuple[Path | None, str]:
    if not photo:
        return None, "The row names no photo. Fill in the photo column."
    root = folder.resolve()
    path = (root / photo).resolve()
    # A CSV inside an uploaded zip must not make the server read files outside the zip.
    if not path.is_relative_to(root):
        return None, f"The photo path {photo} leads outside the folder. Give paths relative to {CSV_NAME}."
    return path, ""


def _field_problem(name: str, value: str) -> str:
    if name in ("employee_number", "name") and not value:
        return f"The {name.replace('_', ' ')} is missing. Fill it in."
    if name == "email" and value:
        try:
            validate_email(value)
        except ValidationError:
            return f"{value} is not an email address. Correct it, or leave the email empty."
    limit = Employee._meta.get_field(name).max_length
    if limit and len(value) > limit:
        return f"The {name.replace('_', ' ')} {value[:40]}... is longer than {limit} characters. Shorten it."
    return ""


# --- Importing ------------------------------------------------------------------------------------


def import_folder(
    folder: Path,
    consent_recorded_by,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    send: Send | None = None,
) -> ImportSummary:
    """Import a folder's employees and photos; ``progress`` is called before the first batch and
    after each. With ``send``, the embedding workers embed the batches (see the module's note).
    Raises ImportProblem when the folder cannot be imported at all."""
    try:
        ModelVersion.objects.active()
    except ModelVersion.DoesNotExist as error:
        raise ImportProblem(enrollment.NO_MODEL_REASON) from error
    entries = read_folder(folder)
    if limit is not None:
        entries = entries[:limit]
    summary = ImportSummary(total_photos=len(entries))
    importer = _Importer(summary, consent_recorded_by, send)
    if progress:
        progress(summary)
    batches = [entries[start:start + BATCH_SIZE] for start in range(0, len(entries), BATCH_SIZE)]
    in_flight: deque[_Batch] = deque()
    for entries_of_batch in batches:
        in_flight.append(importer.start_batch(entries_of_batch))
        # Finished in the folder's order, as the report lists them.
        while in_flight and (len(in_flight) > BATCHES_IN_FLIGHT or in_flight[0].done):
            importer.finish_batch(in_flight.popleft())
            if progress:
                progress(summary)
    while in_flight:
        importer.finish_batch(in_flight.popleft())
        if progress:
            progress(summary)
    return summary


@dataclass
class _Batch:
    size: int  # photos in the batch, templates or not
    added: dict[int, PhotoEntry]  # the templates made, by id, in the folder's order
    sent: bool = False  # handed to the embedding workers (else embedded here)

    @property
    def done(self) -> bool:
        return not self.sent or not self.pending().exists()

    def pending(self):
        return FaceTemplate.objects.filter(pk__in=list(self.added), status=FaceTemplate.Status.PENDING)


class _Importer:
    def __init__(self, summary: ImportSummary, consent_recorded_by, send: Send | None = None):
        self.summary = summary
        self.consent_recorded_by = consent_recorded_by
        self.employees: dict[str, Employee] = {}
        self.send = send
        self.workers_gone = False  # no worker finished a photo for too long: embed here from now on

    def start_batch(self, entries: list[PhotoEntry]) -> _Batch:
        """Add the batch's photos as pending templates, and embed them here or hand them over."""
        batch = _Batch(len(entries), {})
        for entry in entries:
            template = self._add(entry)
            if template is not None:
                batch.added[template.pk] = entry
        if batch.added:
            # A batch the workers cannot be sent (broker down) is embedded here: nothing waits.
            batch.sent = self.send is not None and self.send(list(batch.added))
            if not batch.sent:
                _process(list(batch.added))
        return batch

    def finish_batch(self, batch: _Batch) -> None:
        """Wait until the workers have embedded a batch handed to them, then count its outcomes."""
        if batch.sent:
            self._wait_for(batch)
        processed = FaceTemplate.objects.select_related("possible_duplicate_of").in_bulk(list(batch.added))
        for template_id, entry in batch.added.items():
            if template_id in processed:  # else deleted meanwhile, with its employee
                self._count(processed[template_id], entry)
        self.summary.processed_photos += batch.size

    def _wait_for(self, batch: _Batch) -> None:
        # Waiting on the rows, not on task results: a worker that dies mid-batch has its task
        # redelivered (acks_late), and every photo is pending until it is embedded. If no photo of
        # the batch is finished for FRID_IMPORT_WORKER_PATIENCE_SECONDS (no worker is consuming the
        # queue), this process embeds what is left and the rest of the import; processing only
        # takes pending templates, so a worker that finishes one too does no harm.
        if self.workers_gone:
            _process(list(batch.pending().values_list("pk", flat=True)))
            return
        patience = settings.FRID_IMPORT_WORKER_PATIENCE_SECONDS
        left = batch.pending().count()
        last_change = time.monotonic()
        while left:
            time.sleep(WORKER_POLL_SECONDS)
            now_left = batch.pending().count()
            if now_left < left:
                left, last_change = now_left, time.monotonic()
            elif time.monotonic() - last_change > patience:
                logger.warning(
                    "No embedding worker finished a photo of this import for %s s: it embeds the rest itself",
                    patience,
                )
                self.send, self.workers_gone = None, True
                _process(list(batch.pending().values_list("pk", flat=True)))
                return

    def _add(self, entry: PhotoEntry) -> FaceTemplate | None:
        if entry.problem:
            return self._unreadable(entry, entry.problem)
        employee = self._employee(entry)
        data, problem = _read_photo(entry.path)
        if problem:
            return self._unreadable(entry, problem)
        try:
            # The same checks as an upload on an employee's page: content, pixels, a whole file.
            enrollment.check_upload(data, entry.path.name)
            return enrollment.add_photo(employee, data, entry.path.name)
        except ValidationError as error:
            return self._unreadable(entry, " ".join(error.messages))

    def _employee(self, entry: PhotoEntry) -> Employee:
        employee = self.employees.get(entry.employee_number)
        if employee is None:
            employee, created = Employee.objects.get_or_create(
                employee_number=entry.employee_number,
                defaults={"name": entry.name, "email": entry.email, "department": entry.department},
            )
            outcome = EmployeeOutcome(employee.pk, employee.employee_number, employee.name)
            (self.summary.created_employees if created else self.summary.updated_employees).append(outcome)
            # Whoever runs the import states that consent was collected for everyone in it.
            employee.record_consent(self.consent_recorded_by)
            self.employees[entry.employee_number] = employee
        return employee

    def _unreadable(self, entry: PhotoEntry, reason: str) -> None:
        # The employee, if this import made or found them (a bad CSV row may name one another row made).
        employee = self.employees.get(entry.employee_number)
        self.summary.unreadable.append(PhotoOutcome(
            entry.label, entry.employee_number, reason, employee_id=employee.pk if employee else None,
        ))
        return None

    def _count(self, template: FaceTemplate, entry: PhotoEntry) -> None:
        def outcome(reason: str) -> PhotoOutcome:
            return PhotoOutcome(entry.label, entry.employee_number, reason, template.employee_id, template.pk)

        if template.status == FaceTemplate.Status.READY:
            self.summary.enrolled.append(outcome(""))
            duplicate = template.possible_duplicate_of
            if duplicate is not None:
                self.summary.possible_duplicates.append(outcome(
                    f"looks like {duplicate.name} ({duplicate.employee_number}), distance "
                    f"{template.duplicate_distance:.2f}."
                ))
        elif template.status == FaceTemplate.Status.REJECTED:
            self.summary.rejected.append(outcome(template.reason))
        else:
            self.summary.still_pending += 1


def _read_photo(path: Path) -> tuple[bytes, str]:
    """The file's bytes, or why it is not a photo we can take (checked before it becomes a template)."""
    try:
        status = path.stat()
        size = status.st_size
        if not stat.S_ISREG(status.st_mode):
            return b"", "This is not a regular file. Put photos only in the folder."
        # Checked before reading, so a huge file never lands in memory.
        if size > photo_limit():
            # Worded as identity.enrollment words the same refusal on an employee's page.
            return b"", (
                f"The file is {size / 1e6:.1f} MB; photos up to {photo_limit() / 1e6:.0f} MB "
                "are accepted. Use a smaller copy of the photo."
            )
        data = path.read_bytes()
    except FileNotFoundError:
        return b"", "There is no such file. Check the photo's path."
    except OSError as error:
        return b"", f"The file cannot be read ({error.strerror or error}). Check that it is a photo you can open."
    return data, _not_a_photo(data)


def _not_a_photo(data: bytes) -> str:
    """Why ``data`` is not an image file at all ("" if it is one); only the header is read."""
    from PIL import Image, UnidentifiedImageError

    from training import faces

    if not data:
        return "The file is empty. Use the original photo."
    try:
        Image.open(io.BytesIO(data), formats=faces.ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        return "This file is not a photo, or not in a format we can read. Use JPEG or PNG photos."
    except Exception:  # a damaged image: the enrollment rules reject it with their own words
        return ""
    return ""


def _process(template_ids: list[int]) -> None:
    try:
        enrollment.process_templates(template_ids)
    except Exception:
        # One bad photo must not cost the batch: go one by one, and reject only the one that fails.
        logger.exception("Processing a batch of %d templates failed; trying them one by one", len(template_ids))
        for template_id in template_ids:
            try:
                enrollment.process_templates([template_id])
            except Exception as error:
                logger.exception("Processing template %s failed", template_id)
                FaceTemplate.objects.filter(pk=template_id, status=FaceTemplate.Status.PENDING).update(
                    status=FaceTemplate.Status.REJECTED,
                    reason=f"This photo could not be processed ({error.__class__.__name__}). Try another photo.",
                    processed_at=timezone.now(),
                )


# --- Zip archives ---------------------------------------------------------------------------------


def check_archive(stream: BinaryIO, size: int | None = None) -> list[zipfile.ZipInfo]:
    """The archive's members, checked; raises ImportProblem for anything unsafe or unusable."""
    if size is not None and size > archive_limit():
        raise ImportProblem(
            f"The zip is {size_in_words(size)}; zips up to {size_in_words(archive_limit())} are accepted "
            f"(each photo in it up to {size_in_words(photo_limit())}). Split it into several zips."
        )
    try:
        with zipfile.ZipFile(stream) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as error:
        raise ImportProblem("This file is not a zip archive, or it is damaged. Upload a .zip file.") from error
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise ImportProblem(
            f"The zip holds {len(members):,} files; up to {MAX_ARCHIVE_MEMBERS:,} are accepted. Split it."
        )
    unpacked = sum(member.file_size for member in members)
    if unpacked > unpacked_limit():
        raise ImportProblem(
            f"The zip unpacks to {size_in_words(unpacked)}; up to {size_in_words(unpacked_limit())} is accepted. "
            "Split it into several zips."
        )
    for member in members:
        _member_path(member)
    return members


def _member_path(member: zipfile.ZipInfo) -> PurePosixPath:
    name = member.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in path.parts:
        raise ImportProblem(
            f"The zip names a file outside its own folder ({member.filename}), which is not allowed. "
            "Zip the folder of photos itself."
        )
    if member.flag_bits & 0x1:
        raise ImportProblem(f"{member.filename} in the zip is password-protected. Zip the photos without a password.")
    if stat.S_ISLNK(member.external_attr >> 16):
        raise ImportProblem(f"{member.filename} in the zip is a link, not a file. Zip the photos themselves.")
    return path


def extract_archive(stream: BinaryIO, destination: Path) -> Path:
    """Unpack a checked archive into ``destination``; returns the folder to import from."""
    check_archive(stream)
    stream.seek(0)
    budget = unpacked_limit()
    with zipfile.ZipFile(stream) as archive:
        for member in archive.infolist():
            path = _member_path(member)
            if member.is_dir() or any(part in JUNK_NAMES for part in path.parts):
                continue
            target = destination.joinpath(*path.parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as sink:
                    # Counted as written, in case a member unpacks to more than its header says.
                    budget -= _copy_at_most(source, sink, budget)
            except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as error:
                raise ImportProblem(
                    f"{member.filename} in the zip cannot be unpacked ({error.__class__.__name__}). "
                    "The zip may be damaged: make it again and upload it."
                ) from error
    return find_import_root(destination)


def _copy_at_most(source: BinaryIO, sink: BinaryIO, budget: int) -> int:
    written = 0
    for chunk in iter(lambda: source.read(1 << 20), b""):
        written += len(chunk)
        if written > budget:
            raise ImportProblem("The zip unpacks to more than it declares. Upload an ordinary zip of photos.")
        sink.write(chunk)
    return written


def find_import_root(folder: Path) -> Path:
    """The folder itself, or the one folder it holds when the zip was made of a folder of
    employee folders (or of a folder with employees.csv)."""
    children = [child for child in folder.iterdir() if _visible(child)]
    if (folder / CSV_NAME).is_file() or len(children) != 1 or not children[0].is_dir():
        return folder
    inner = children[0]
    inner_children = [child for child in inner.iterdir() if _visible(child)]
    if (inner / CSV_NAME).is_file() or (inner_children and all(child.is_dir() for child in inner_children)):
        return inner
    return folder


# --- Imports uploaded in the admin ----------------------------------------------------------------


def run_archive_import(import_id: int, send: Send | None = None) -> None:
    """Run an uploaded BulkImport (the worker's job; ``send`` as for import_folder). A redelivered
    task (the worker died while importing) marks the import failed instead of importing the photos
    twice."""
    claimed = BulkImport.objects.filter(pk=import_id, status=BulkImport.Status.QUEUED).update(
        status=BulkImport.Status.RUNNING
    )
    bulk = BulkImport.objects.filter(pk=import_id).select_related("created_by").first()
    if bulk is None:
        logger.warning("Bulk import %s no longer exists", import_id)
        return
    if not claimed:
        if bulk.status == BulkImport.Status.RUNNING:
            _fail(bulk, _stopped(bulk, INTERRUPTED_ERROR))
        return
    if bulk.created_by is None:
        _fail(bulk, NO_UPLOADER_ERROR)
        return
    try:
        summary = _import_archive(bulk, send)
    except ImportProblem as problem:
        _fail(bulk, str(problem))
        return
    except SoftTimeLimitExceeded:
        _fail(bulk, _stopped(bulk, TIME_LIMIT_ERROR))
        raise
    except Exception as error:
        logger.exception("Bulk import %s failed", import_id)
        _fail(bulk, _stopped(bulk, UNEXPECTED_ERROR, error=error.__class__.__name__))
        raise
    BulkImport.objects.filter(pk=bulk.pk).update(
        status=BulkImport.Status.DONE, report=json.dumps(summary.to_document()), finished_at=timezone.now(),
        **_counts(summary),
    )


def stored_summary(bulk: BulkImport) -> ImportSummary | None:
    """The summary a finished import kept, or None when its report is plain text (imports made
    before reports were kept as data) or there is none."""
    try:
        document = json.loads(bulk.report)
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("version") != REPORT_VERSION:
        return None
    return ImportSummary.from_document(document)


def _import_archive(bulk: BulkImport, send: Send | None) -> ImportSummary:
    work = Path(settings.FRID_DATA_DIR) / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"import-{bulk.pk}-", dir=work) as temporary:
        with bulk.archive.open("rb") as stream:
            root = extract_archive(stream, Path(temporary))

        def save_progress(summary: ImportSummary) -> None:
            BulkImport.objects.filter(pk=bulk.pk).update(**_counts(summary))

        return import_folder(root, bulk.created_by, progress=save_progress, send=send)


def _counts(summary: ImportSummary) -> dict[str, int]:
    return {
        "total_photos": summary.total_photos,
        "processed_photos": summary.processed_photos,
        "enrolled_photos": summary.photos_enrolled,
        "rejected_photos": summary.photos_not_enrolled,
        "employees_created": summary.employees_created,
    }


BROKER_DOWN_ERROR = (
    "The import could not be started: the background task queue could not be reached. "
    "Upload the zip again once the worker is running."
)


def mark_broker_down(import_id: int) -> None:
    """The import's task could not be sent: a queued import fails, saying so."""
    BulkImport.objects.filter(pk=import_id, status=BulkImport.Status.QUEUED).update(
        status=BulkImport.Status.FAILED, error=BROKER_DOWN_ERROR, finished_at=timezone.now()
    )


def _fail(bulk: BulkImport, error: str) -> None:
    BulkImport.objects.filter(pk=bulk.pk).update(
        status=BulkImport.Status.FAILED, error=error, finished_at=timezone.now()
    )


def _stopped(bulk: BulkImport, error: str, **details: str) -> str:
    """One of the *_ERROR messages, with how far the import had come."""
    current = BulkImport.objects.get(pk=bulk.pk)
    return error.format(processed=current.processed_photos, total=current.total_photos, **details)

