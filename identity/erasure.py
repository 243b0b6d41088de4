"""Erasing an employee's biometric data (GDPR art. 17, BIPA), and the scan that proves it is gone.

What is *theirs* (``erase`` removes it, ``scan`` looks for it; manage.py erasure_report says so too):

- their face templates (``FaceTemplate.employee``): HR's photos and the automatic ones taken from
  their verified kiosk captures, each with its uploaded photo, its aligned chip, its embedding of
  the active model version (``FaceTemplate.embedding``) and of every other one
  (``TemplateEmbedding``);
- files named for them in media: ``faces/<employee id>/…`` and ``chips/<employee id>-…`` are the
  names FRID gives their photos and chips, so such a file is theirs even when no row points at it
  any more (a crash between a delete and its file's removal). Not one that another employee's
  template points at: a duplicate merged into another record keeps its file's old name;
- their attempts: those that claimed them, matched them, or found them the nearest employee. The
  frames captured during those (``AttemptCapture``) show their face, or a face compared with
  theirs, and go. The attempts stay, redacted: no distances, no per-frame face figures
  (``VerificationAttemptQuerySet.redact``, the one change the database allows), and so do the
  attendance events made from them: who checked in when is attendance, not biometrics;
- copies of their faces FRID made elsewhere: training-cache files (FRID_TRAINING_CACHE_DIR)
  holding one of their chips, bulk-import zips and the unpacked leftovers of an interrupted import
  holding one of their photos;
- the duplicate-review links of other employees' photos to them (the flag and its distance, which
  was measured against their face).

Kept: the employee record (number, name, department, account), which their attendance needs; its
consents are cleared, so that no new photo is taken without asking again. Out of reach, and said
so in the docs: what a fine-tuned network learnt from their faces (no face can be read back from
weights; a training run without them replaces it), PostgreSQL's own files until the space of the
deleted rows is reused, and backups.

The ``Erasure`` record keeps who, when, why, counts, the storage names of the deleted files and
SHA-256 digests of every deleted file, frame and embedding: no biometrics (a digest matches only an
exact copy and says nothing about a face), but what ``scan`` needs to find exact copies afterwards.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import shutil
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Q, QuerySet

from identity.models import (
    AttemptCapture,
    BulkImport,
    Employee,
    Erasure,
    FaceTemplate,
    TemplateEmbedding,
    VerificationAttempt,
)

logger = logging.getLogger(__name__)

# A chip stored as JPEG (quality 90, enrollment and automatic templates) differs from the same chip
# kept raw in a training cache by about 1-2 grey levels on average; two photos of one person, or
# the same face cut from another photo, differ by tens. A cached chip this close is the same one.
SAME_CHIP_MEAN_DIFFERENCE = 6.0
CHIP_BATCH = 256
# An embedding this near one of theirs (Euclidean) is a copy of it, rounded on the way: the nearest
# two different photos of one person come is about 0.1 (and a verification's threshold about 0.5).
SAME_EMBEDDING_DISTANCE = 1e-3
EMBEDDING_DIMENSIONS = 128
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM", b"II*\x00", b"MM\x00*", b"P5", b"P6")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".heic")
IMPORT_LEFTOVERS = "import-*"  # bulk_import's temporary folders under FRID_DATA_DIR/tmp


# What an erasure removed, in HR's words, in the order the pages and the report list it.
REMOVED_IN_WORDS = {
    "photos": ("uploaded photo", "uploaded photos"),
    "chips": ("aligned face (chip)", "aligned faces (chips)"),
    "templates": ("face template", "face templates"),
    "automatic_templates": ("of them automatic, from kiosk captures", "of them automatic, from kiosk captures"),
    "embeddings": ("embedding (every model version)", "embeddings (every model version)"),
    "captures": ("captured kiosk frame", "captured kiosk frames"),
    "attempts_redacted": ("verification attempt redacted (kept, without distances and face figures)",
                          "verification attempts redacted (kept, without distances and face figures)"),
    "duplicate_links": ("other employee's photo flagged as resembling them: flag removed",
                        "other employees' photos flagged as resembling them: flags removed"),
    "training_cache_files": ("training-cache file holding their face", "training-cache files holding their face"),
    "import_zips": ("bulk-import zip holding their photos", "bulk-import zips holding their photos"),
    "import_leftovers": ("file left by an interrupted bulk import", "files left by an interrupted bulk import"),
}


def in_words(removed: dict[str, int]) -> list[str]:
    """The non-zero counts of an erasure (or a plan), one line each."""
    lines = []
    for key, (one, several) in REMOVED_IN_WORDS.items():
        count = removed.get(key, 0)
        if count:
            lines.append(f"{count} {one if count == 1 else several}")
    return lines


class ErasureBlocked(Exception):
    """Erasing now would break work in progress; the message says what to wait for."""


# --- Who and what is theirs ---------------------------------------------------------------------


def attempts_of(employee: Employee) -> QuerySet:
    """Every attempt that claimed the employee, matched them, or found them the nearest."""
    return VerificationAttempt.objects.filter(
        Q(claimed_employee=employee) | Q(matched_employee=employee) | Q(nearest_employee=employee)
    )


def captures_of(employee: Employee) -> QuerySet:
    return AttemptCapture.objects.filter(attempt__in=attempts_of(employee).values("pk"))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def embedding_digest(values: Iterable[float]) -> str:
    """SHA-256 of an embedding as pgvector stores it (128 little-endian float32)."""
    return digest(numpy.asarray(list(values), dtype="<f4").tobytes())


def named_for(employee_id: int, name: str) -> bool:
    """Whether a media file's storage name is one FRID gives the employee's photos and chips."""
    return name.startswith(f"faces/{employee_id}/") or (
        name.startswith("chips/") and name[len("chips/"):].startswith(f"{employee_id}-")
    )


@dataclass
class Faces:
    """What FRID holds of one employee's faces, gathered before anything is deleted."""

    template_ids: list[int] = field(default_factory=list)
    automatic_templates: int = 0
    other_embeddings: int = 0
    embeddings: list[list[float]] = field(default_factory=list)  # in memory only, never stored
    file_names: list[str] = field(default_factory=list)  # their photos and chips in media
    photo_digests: set[str] = field(default_factory=set)
    chip_digests: set[str] = field(default_factory=set)
    chips: list[numpy.ndarray] = field(default_factory=list)  # decoded, to find them in caches
    capture_ids: list[int] = field(default_factory=list)
    capture_digests: set[str] = field(default_factory=set)
    attempts: int = 0

    @property
    def file_digests(self) -> set[str]:
        return self.photo_digests | self.chip_digests | self.capture_digests


def gather(employee: Employee) -> Faces:
    """Their templates, files, embeddings and captures, with the digests of each."""
    found = Faces()
    templates = FaceTemplate.objects.filter(employee=employee).order_by("pk")
    referenced_elsewhere: set[str] = set()
    for template in templates:
        found.template_ids.append(template.pk)
        found.automatic_templates += template.source == FaceTemplate.Source.CAPTURE
        if template.embedding is not None:
            found.embeddings.append(list(map(float, template.embedding)))
        if template.source_image:
            found.file_names.append(template.source_image.name)
            data = _read(template.source_image.name)
            if data is not None:
                found.photo_digests.add(digest(data))
        if template.chip:
            found.file_names.append(template.chip.name)
            data = _read(template.chip.name)
            if data is not None:
                found.chip_digests.add(digest(data))
                found.chips.append(_decode_chip(data))
    for other in TemplateEmbedding.objects.filter(template__employee=employee).values_list("embedding", flat=True):
        found.other_embeddings += 1
        found.embeddings.append(list(map(float, other)))
    others = FaceTemplate.objects.exclude(employee=employee)
    referenced_elsewhere.update(others.exclude(source_image="").values_list("source_image", flat=True))
    referenced_elsewhere.update(others.exclude(chip="").values_list("chip", flat=True))
    for name in _media_names_for(employee.pk):
        if name not in referenced_elsewhere and name not in found.file_names:
            found.file_names.append(name)
            data = _read(name)
            if data is not None:
                found.photo_digests.add(digest(data))
    for capture_id, image in captures_of(employee).values_list("pk", "image"):
        found.capture_ids.append(capture_id)
        found.capture_digests.add(digest(bytes(image)))
    found.attempts = attempts_of(employee).count()
    return found


def _read(name: str) -> bytes | None:
    try:
        with default_storage.open(name, "rb") as stream:
            return stream.read()
    except (FileNotFoundError, OSError):
        return None


def _decode_chip(data: bytes) -> numpy.ndarray | None:
    from PIL import Image

    try:
        return numpy.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=numpy.uint8)
    except (OSError, ValueError):
        return None


def _media_names_for(employee_id: int) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    names = [path for path in (root / "faces" / str(employee_id)).rglob("*") if path.is_file()]
    chips = root / "chips"
    if chips.is_dir():
        names += [path for path in chips.iterdir() if path.is_file()]
    return sorted(name for name in (path.relative_to(root).as_posix() for path in names) if named_for(employee_id, name))


# --- Copies outside the tables: caches, zips, leftovers --------------------------------------------


def cache_files_holding(chips: list[numpy.ndarray], cache_dir: Path | None = None) -> list[Path]:
    """Training-cache files (training.data's chips-*.npz) holding one of these chips."""
    cache_dir = Path(cache_dir or settings.FRID_TRAINING_CACHE_DIR)
    chips = [chip for chip in chips if chip is not None and chip.shape == (150, 150, 3)]
    if not chips or not cache_dir.is_dir():
        return []
    return [path for path in sorted(cache_dir.rglob("*.npz")) if _holds_a_chip(path, chips)]


def _holds_a_chip(path: Path, chips: list[numpy.ndarray]) -> bool:
    try:
        with numpy.load(path, allow_pickle=False) as stored:
            cached = stored["chips"] if "chips" in stored.files else None
            if cached is None or cached.ndim != 4 or cached.shape[1:] != (150, 150, 3):
                return False
            for start in range(0, len(cached), CHIP_BATCH):
                batch = cached[start:start + CHIP_BATCH].astype(numpy.int16)
                for chip in chips:
                    differences = numpy.abs(batch - chip.astype(numpy.int16)).mean(axis=(1, 2, 3))
                    if differences.size and differences.min() <= SAME_CHIP_MEAN_DIFFERENCE:
                        return True
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        logger.warning("could not read the training cache %s: %s", path, error)
    return False


def imports_holding(digests: set[str]) -> list[BulkImport]:
    """Bulk imports whose zip, still kept, holds a file with one of these digests."""
    found = []
    for bulk in BulkImport.objects.exclude(archive="").order_by("pk"):
        try:
            with bulk.archive.open("rb") as stream:
                if any(digest(data) in digests for _, data in zip_members(stream)):
                    found.append(bulk)
        except (FileNotFoundError, OSError, zipfile.BadZipFile):
            continue
    return found


def zip_members(stream) -> Iterator[tuple[str, bytes]]:
    """Each photo in a zip (by its name; no larger than the upload limit): its name and bytes."""
    with zipfile.ZipFile(stream) as archive:
        for member in archive.infolist():
            photo = member.filename.lower().endswith(IMAGE_SUFFIXES)
            if photo and not member.is_dir() and member.file_size <= settings.FRID_MAX_UPLOAD_BYTES:
                with archive.open(member) as source:
                    yield member.filename, source.read()


def leftovers_holding(digests: set[str]) -> list[Path]:
    """Files of interrupted bulk imports' unpacked folders with one of these digests."""
    work = Path(settings.FRID_DATA_DIR) / "tmp"
    if not work.is_dir():
        return []
    return [
        path for folder in sorted(work.glob(IMPORT_LEFTOVERS)) for path in sorted(folder.rglob("*"))
        if path.is_file() and _file_digest(path) in digests
    ]


def _file_digest(path: Path) -> str | None:
    try:
        return digest(path.read_bytes())
    except OSError:
        return None


# --- Erasing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What erasing the employee would remove, counted (the confirmation page shows it)."""

    employee: Employee
    removed: dict[str, int]


def plan(employee: Employee) -> Plan:
    found = gather(employee)
    return Plan(employee, _counts(employee, found, cache_files=None, imports=None, leftovers=None))


def erase(employee: Employee, by=None, reason: str = "") -> Erasure:
    """Erase the employee's biometric data (see the module's docstring for what is theirs) and
    record it. Files go once the transaction commits; the record holds no biometrics. Raises
    ErasureBlocked (nothing erased) while a bulk import holding their photos is still running."""
    with transaction.atomic():
        employee = Employee.objects.select_for_update().get(pk=employee.pk)
        found = gather(employee)
        imports = imports_holding(found.photo_digests)
        unfinished = [bulk for bulk in imports if bulk.status in (BulkImport.Status.QUEUED, BulkImport.Status.RUNNING)]
        if unfinished:
            raise ErasureBlocked(
                f"Bulk import {unfinished[0].pk} holds photos of {employee} and has not finished yet. "
                "Erase once it has finished: its photos would otherwise be enrolled again."
            )
        cache_files = cache_files_holding(found.chips)
        leftovers = leftovers_holding(found.photo_digests)
        removed = _counts(employee, found, cache_files, imports, leftovers)
        # Copies outside media's own names; their paths are kept so that the scan sees one come back.
        copies = [path.resolve() for path in (*cache_files, *(Path(bulk.archive.path) for bulk in imports), *leftovers)]

        _unlink_duplicates(employee)
        AttemptCapture.objects.filter(pk__in=found.capture_ids).delete()
        removed["attempts_redacted"] = attempts_of(employee).redact()
        # Templates go with their other versions' embeddings (a cascade); their files once committed.
        FaceTemplate.objects.filter(pk__in=found.template_ids).delete()
        BulkImport.objects.filter(pk__in=[bulk.pk for bulk in imports]).update(archive="")
        Employee.objects.filter(pk=employee.pk).update(
            consent_recorded_at=None, consent_recorded_by=None,
            training_consent_recorded_at=None, training_consent_recorded_by=None,
        )
        record = Erasure.objects.create(
            employee=employee,
            employee_number=employee.employee_number,
            erased_by=by if getattr(by, "is_authenticated", False) else None,
            erased_by_name=by.get_username() if getattr(by, "is_authenticated", False) else "",
            reason=reason[:200],
            removed=removed,
            file_names=sorted(set(found.file_names) | {str(path) for path in copies}),
            file_digests=sorted(found.file_digests),
            embedding_digests=sorted({embedding_digest(values) for values in found.embeddings}),
        )
        paths = [Path(default_storage.path(name)) for name in found.file_names] + copies
        transaction.on_commit(lambda: _delete_files(paths, employee.pk))
    logger.info("erased the biometric data of employee %s: %s", employee.pk, removed)
    return record


def _counts(employee, found: Faces, cache_files, imports, leftovers) -> dict[str, int]:
    photos = sum(1 for name in found.file_names if not name.startswith("chips/"))
    counts = {
        "templates": len(found.template_ids),
        "automatic_templates": found.automatic_templates,
        "photos": photos,
        "chips": len(found.file_names) - photos,
        "embeddings": len(found.embeddings),
        "other_version_embeddings": found.other_embeddings,
        "captures": len(found.capture_ids),
        "attempts_redacted": attempts_of(employee).filter(redacted_at__isnull=True).count(),
        "duplicate_links": FaceTemplate.objects.filter(possible_duplicate_of=employee).exclude(employee=employee).count(),
    }
    if cache_files is not None:
        counts.update(training_cache_files=len(cache_files), import_zips=len(imports), import_leftovers=len(leftovers))
    return counts


def _unlink_duplicates(employee: Employee) -> int:
    """Other employees' photos flagged as resembling them: the flag and its distance (measured
    against their face) go; an undecided photo becomes searchable, as nobody else is in question."""
    return FaceTemplate.objects.filter(possible_duplicate_of=employee).exclude(employee=employee).update(
        possible_duplicate_of=None, duplicate_distance=None
    )


def _delete_files(paths: list[Path], employee_id: int) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as error:  # erasure_report will show it; the record says what was meant
            logger.error("could not delete %s during an erasure: %s", path, error)
    folder = Path(settings.MEDIA_ROOT) / "faces" / str(employee_id)
    shutil.rmtree(folder, ignore_errors=True)


# --- Proof ----------------------------------------------------------------------------------------


@dataclass
class Finding:
    where: str  # a table and column, or a file
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class Scan:
    employee_number: str
    employee_ids: list[int]
    erasures: list[Erasure]
    findings: list[Finding] = field(default_factory=list)
    tables: int = 0
    columns: int = 0
    files: int = 0

    @property
    def clean(self) -> bool:
        return not self.findings


# The erasure records themselves hold the names and digests the scan looks for, by design.
NOT_SCANNED_TABLES = {Erasure._meta.db_table}
TEXT_TYPES = {"text", "character varying", "character"}
JSON_TYPES = {"json", "jsonb"}


@dataclass
class _Needles:
    """What identifies their faces: exact values (digests, names) and, while they still have
    templates, their embeddings themselves."""

    employee_ids: list[int]
    file_names: set[str]
    file_digests: set[str]
    embedding_digests: set[str]
    embeddings: list[list[float]]
    chips: list[numpy.ndarray]


def scan(employee_number: str) -> Scan:
    """Look for anything of the employee's faces left in the database (every table and column)
    and in FRID_DATA_DIR, MEDIA_ROOT and FRID_TRAINING_CACHE_DIR. Raises Employee.DoesNotExist
    when FRID has never known the number (no employee, no erasure record)."""
    employees = list(Employee.objects.filter(employee_number=employee_number))
    erasures = list(Erasure.objects.filter(employee_number=employee_number).order_by("erased_at"))
    if not employees and not erasures:
        raise Employee.DoesNotExist(f"No employee has the number {employee_number!r}, and none was erased.")
    ids = sorted({employee.pk for employee in employees} | {e.employee_id for e in erasures if e.employee_id})
    needles = _needles(employees, erasures, ids)
    result = Scan(employee_number, ids, erasures)
    _scan_records(employees, result)
    _scan_database(needles, result)
    _scan_files(needles, result)
    return result


def _needles(employees: list[Employee], erasures: list[Erasure], ids: list[int]) -> _Needles:
    needles = _Needles(ids, set(), set(), set(), [], [])
    for erasure in erasures:
        needles.file_names.update(erasure.file_names)
        needles.file_digests.update(erasure.file_digests)
        needles.embedding_digests.update(erasure.embedding_digests)
    for employee in employees:  # not erased yet, or given photos again since
        found = gather(employee)
        needles.file_names.update(found.file_names)
        needles.file_digests.update(found.file_digests)
        needles.embedding_digests.update(embedding_digest(values) for values in found.embeddings)
        needles.embeddings += found.embeddings
        needles.chips += [chip for chip in found.chips if chip is not None]
    return needles


def _scan_records(employees: list[Employee], result: Scan) -> None:
    """What FRID's own tables say is theirs: rows that an erasure removes or redacts."""
    for employee in employees:
        templates = FaceTemplate.objects.filter(employee=employee)
        if templates.exists():
            result.findings.append(Finding(
                FaceTemplate._meta.db_table, f"{templates.count()} face template(s) of employee {employee.pk}"))
        embeddings = TemplateEmbedding.objects.filter(template__employee=employee)
        if embeddings.exists():
            result.findings.append(Finding(
                TemplateEmbedding._meta.db_table, f"{embeddings.count()} embedding(s) of other model versions"))
        captures = captures_of(employee)
        if captures.exists():
            result.findings.append(Finding(
                AttemptCapture._meta.db_table, f"{captures.count()} captured frame(s) of their attempts"))
        unredacted = attempts_of(employee).filter(
            Q(redacted_at__isnull=True) & (Q(distance__isnull=False) | Q(second_distance__isnull=False) | ~Q(quality=[]))
        )
        if unredacted.exists():
            result.findings.append(Finding(
                VerificationAttempt._meta.db_table,
                f"{unredacted.count()} attempt(s) still holding distances or per-frame face figures"))
        links = FaceTemplate.objects.filter(possible_duplicate_of=employee).exclude(employee=employee)
        if links.exists():
            result.findings.append(Finding(
                FaceTemplate._meta.db_table, f"{links.count()} other employees' photo(s) flagged as resembling them"))


def _columns() -> list[tuple[str, str, str]]:
    """(table, column, type) of every column of every table in FRID's schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_name, c.column_name,
                   CASE WHEN c.data_type = 'USER-DEFINED' THEN c.udt_name ELSE c.data_type END
            FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
            ORDER BY c.table_name, c.ordinal_position
            """
        )
        return cursor.fetchall()


def _scan_database(needles: _Needles, result: Scan) -> None:
    columns = [column for column in _columns() if column[0] not in NOT_SCANNED_TABLES]
    result.tables = len({table for table, _, _ in columns})
    result.columns = len(columns)
    name_patterns = sorted(needles.file_names) + [f"faces/{pk}/" for pk in needles.employee_ids]
    with connection.cursor() as cursor:
        for table, column, kind in columns:
            quoted = f"{connection.ops.quote_name(table)}.{connection.ops.quote_name(column)}"
            source = connection.ops.quote_name(table)
            where = f"{table}.{column}"
            if kind == "bytea" and needles.file_digests:
                cursor.execute(
                    f"SELECT count(*) FROM {source} WHERE encode(sha256({quoted}), 'hex') = ANY(%s)",
                    [sorted(needles.file_digests)],
                )
                _found(result, where, cursor.fetchone()[0], "value(s) byte for byte one of their photos, chips or frames")
            elif kind == "vector":
                _scan_vectors(cursor, source, quoted, where, needles, result)
            elif kind in TEXT_TYPES | JSON_TYPES:
                if name_patterns:
                    cursor.execute(
                        f"SELECT count(*) FROM {source} WHERE {quoted}::text LIKE ANY(%s)",
                        [[f"%{_like(name)}%" for name in name_patterns]],
                    )
                    _found(result, where, cursor.fetchone()[0], "value(s) naming one of their photos or chips")
                if kind in JSON_TYPES:
                    _scan_json_embeddings(cursor, source, quoted, where, needles, result)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _found(result: Scan, where: str, count: int, what: str) -> None:
    if count:
        result.findings.append(Finding(where, f"{count} {what}"))


def _scan_vectors(cursor, source: str, quoted: str, where: str, needles: _Needles, result: Scan) -> None:
    """Rows (by ctid) whose vector is one of their embeddings: near one they hold now, or equal to
    the digest of one held before."""
    rows: set[str] = set()
    for values in needles.embeddings:
        # Vectors of another size cannot be compared (pgvector raises): they are not embeddings of ours.
        cursor.execute(
            f"SELECT ctid::text FROM {source} WHERE CASE WHEN vector_dims({quoted}) = %s "
            f"THEN {quoted} <-> %s::vector < %s ELSE false END",
            [len(values), _vector_text(values), SAME_EMBEDDING_DISTANCE],
        )
        rows.update(row for (row,) in cursor.fetchall())
    if needles.embedding_digests:
        cursor.execute(f"SELECT ctid::text, {quoted}::text FROM {source} WHERE {quoted} IS NOT NULL")
        rows.update(row for row, text in cursor.fetchall() if embedding_digest(_numbers(text)) in needles.embedding_digests)
    _found(result, where, len(rows), "vector(s) equal to one of their embeddings")


def _scan_json_embeddings(cursor, source: str, quoted: str, where: str, needles: _Needles, result: Scan) -> None:
    """JSON holding a list of 128 numbers that is one of their embeddings (a copy kept by hand)."""
    if not (needles.embeddings or needles.embedding_digests):
        return
    cursor.execute(f"SELECT {quoted}::text FROM {source} WHERE {quoted}::text ~ %s", [r"\[\s*-?[0-9.eE+-]+\s*,"])
    theirs = [numpy.asarray(values, dtype=numpy.float32) for values in needles.embeddings]
    matches = 0
    for (text,) in cursor.fetchall():
        for values in _json_number_lists(text):
            vector = numpy.asarray(values, dtype=numpy.float32)
            if embedding_digest(values) in needles.embedding_digests or any(
                numpy.linalg.norm(vector - known) < SAME_EMBEDDING_DISTANCE for known in theirs
            ):
                matches += 1
    _found(result, where, matches, "JSON list(s) of numbers equal to one of their embeddings")


_NUMBER_LIST = re.compile(r"\[([^\[\]]*)\]")


def _json_number_lists(text: str) -> Iterator[list[float]]:
    for match in _NUMBER_LIST.finditer(text):
        parts = match.group(1).split(",")
        if len(parts) == EMBEDDING_DIMENSIONS:
            try:
                yield [float(part) for part in parts]
            except ValueError:
                continue


def _numbers(text: str) -> list[float]:
    return [float(part) for part in text.strip("[]{}").split(",") if part.strip()]


def _vector_text(values: list[float]) -> str:
    return "[" + ",".join(repr(float(value)) for value in values) + "]"


def scanned_folders() -> list[Path]:
    """FRID_DATA_DIR, MEDIA_ROOT and FRID_TRAINING_CACHE_DIR, each once (one may hold another)."""
    folders = []
    for folder in (settings.FRID_DATA_DIR, settings.MEDIA_ROOT, settings.FRID_TRAINING_CACHE_DIR):
        path = Path(folder).resolve()
        if path.is_dir() and not any(path == other or other in path.parents for other in folders):
            folders = [other for other in folders if path not in other.parents] + [path]
    return folders


def _skipped_folders() -> set[Path]:
    """The embedded PostgreSQL's and Redis's own files: the database is scanned through SQL (its
    files keep deleted rows' bytes until the space is reused, in pages no file scan can read)."""
    from frid_site import services

    data = Path(settings.FRID_DATA_DIR)
    return {services.postgres_dir(data).resolve(), services.redis_dir(data).resolve()}


def _scan_files(needles: _Needles, result: Scan) -> None:
    skipped = _skipped_folders()
    media = Path(settings.MEDIA_ROOT).resolve()
    for folder in scanned_folders():
        for path in _walk(folder, skipped):
            result.files += 1
            _scan_file(path, media, needles, result)


def _walk(folder: Path, skipped: set[Path]) -> Iterator[Path]:
    for path in sorted(folder.iterdir()):
        if path.resolve() in skipped or path.is_symlink():
            continue
        if path.is_dir():
            yield from _walk(path, skipped)
        elif path.is_file():
            yield path


def _scan_file(path: Path, media: Path, needles: _Needles, result: Scan) -> None:
    if str(path) in needles.file_names:
        result.findings.append(Finding(str(path), "a copy of their faces deleted by an erasure is back"))
        return
    if media in path.parents:
        name = path.relative_to(media).as_posix()
        if name in needles.file_names or any(named_for(pk, name) for pk in needles.employee_ids):
            result.findings.append(Finding(str(path), "a file named for them (one of their photos or chips)"))
            return
    if path.suffix == ".npz":
        if needles.chips and _holds_a_chip(path, needles.chips):
            result.findings.append(Finding(str(path), "a training cache holding one of their chips"))
        return
    try:
        with path.open("rb") as stream:
            head = stream.read(8)
    except OSError:
        return
    if head.startswith(IMAGE_MAGIC) and needles.file_digests:
        if _file_digest(path) in needles.file_digests:
            result.findings.append(Finding(str(path), "an image byte for byte one of their photos, chips or frames"))
    elif head.startswith(b"PK\x03\x04") and needles.file_digests:
        try:
            with path.open("rb") as stream:
                inside = [name for name, data in zip_members(stream) if digest(data) in needles.file_digests]
        except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError):
            return
        if inside:
            result.findings.append(Finding(str(path), f"a zip holding their photo(s): {', '.join(inside[:3])}"))
