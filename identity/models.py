"""People and their faces (employees, face templates), the kiosks they verify at, the audit of
every verification attempt, and the attendance events verified attempts become."""

from __future__ import annotations

import hashlib
import secrets
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from pgvector.django import HnswIndex, L2Distance, VectorField

from training.models import ModelVersion


class EmployeeQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Employee(models.Model):
    employee_number = models.CharField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    department = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive employees keep their templates but are never recognised."
    )
    consent_recorded_at = models.DateTimeField(
        null=True, blank=True, help_text="When the employee's consent to biometric processing was recorded."
    )
    consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    training_consent_recorded_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the employee agreed to their photos and verified captures being used to improve "
                  "recognition (fine-tuning the network, automatic template updates). Separate from the "
                  "biometric consent, and optional.",
    )
    training_consent_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="employee",
        help_text="The account this employee logs in with to check in on their own device and see "
                  "their attendance.",
    )

    objects = EmployeeQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.employee_number})"

    def record_consent(self, user) -> None:
        self.consent_recorded_at = timezone.now()
        self.consent_recorded_by = user
        self.save(update_fields=["consent_recorded_at", "consent_recorded_by"])

    @property
    def agreed_to_training(self) -> bool:
        return self.training_consent_recorded_at is not None

    def record_training_consent(self, user) -> None:
        self.training_consent_recorded_at = timezone.now()
        self.training_consent_recorded_by = user
        self.save(update_fields=["training_consent_recorded_at", "training_consent_recorded_by"])


# pgvector's search settings while FRID searches (index_search). The defaults hold where
# frid_site.settings names no FRID_HNSW_* values.
DEFAULT_EF_SEARCH = 100
DEFAULT_MAX_SCAN_TUPLES = 20000
SEARCH_SETTINGS = ("hnsw.iterative_scan", "hnsw.ef_search", "hnsw.max_scan_tuples")
PGVECTOR_DEFAULTS = ("off", "40", "20000")  # where a session had not loaded pgvector yet


def search_settings() -> dict:
    """pgvector's settings for FRID's searches (SEARCH_SETTINGS' order)."""
    return {
        "iterative_scan": "strict_order",
        "ef_search": int(getattr(settings, "FRID_HNSW_EF_SEARCH", DEFAULT_EF_SEARCH)),
        "max_scan_tuples": int(getattr(settings, "FRID_HNSW_MAX_SCAN_TUPLES", DEFAULT_MAX_SCAN_TUPLES)),
    }


@contextmanager
def index_search(using: str = DEFAULT_DB_ALIAS):
    """The HNSW index scan as FRID's searches need it, for the queries run inside this block only.

    PostgreSQL applies the filters (ready, active employee, model version, not held for review)
    to what the index scan returns, and a plain HNSW scan returns at most ``hnsw.ef_search`` rows:
    with that many dropped templates nearer the probe, the search would find fewer rows than it
    asked for, or nobody. An iterative scan (pgvector 0.8, ``strict_order``: rows in exact distance
    order) goes on through the graph until the query has its rows, up to ``hnsw.max_scan_tuples``
    index tuples. The settings are SET LOCAL inside a transaction (a savepoint inside an outer
    one, where the earlier values are put back at the end), so no other query sees them."""
    values = [str(value) for value in search_settings().values()]
    connection = connections[using]
    nested = connection.in_atomic_block
    with transaction.atomic(using=using), connection.cursor() as cursor:
        previous = None
        if nested:  # SET LOCAL would outlive the savepoint: put the outer transaction's values back
            cursor.execute("SELECT " + ", ".join("current_setting(%s, true)" for _ in SEARCH_SETTINGS),
                           SEARCH_SETTINGS)
            previous = cursor.fetchone()
        _set_local(cursor, values)
        yield
        if previous is not None:
            _set_local(cursor, [value if value is not None else default
                                for value, default in zip(previous, PGVECTOR_DEFAULTS)])


def _set_local(cursor, values) -> None:
    cursor.execute("SELECT " + ", ".join("set_config(%s, %s, true)" for _ in SEARCH_SETTINGS),
                   [part for pair in zip(SEARCH_SETTINGS, values) for part in pair])


class FaceTemplateQuerySet(models.QuerySet):
    _index_search = False  # nearest(): evaluated inside index_search()

    def _clone(self):
        clone = super()._clone()
        clone._index_search = self._index_search
        return clone

    def _fetch_all(self):
        if self._index_search and self._result_cache is None:
            with index_search(self.db):
                super()._fetch_all()
        else:
            super()._fetch_all()

    def held_for_review(self):
        """Ready templates flagged as a possible duplicate that HR has not decided on yet: kept out
        of search until HR confirms or deletes them."""
        return self.filter(
            status=FaceTemplate.Status.READY,
            possible_duplicate_of__isnull=False,
            duplicate_decision=FaceTemplate.DuplicateDecision.UNDECIDED,
        )

    def searchable(self, version: ModelVersion):
        """Templates a face may be matched against: ready, of active employees, of this version,
        and not held for a duplicate review."""
        return self.filter(status=FaceTemplate.Status.READY, employee__is_active=True, model_version=version).exclude(
            possible_duplicate_of__isnull=False, duplicate_decision=FaceTemplate.DuplicateDecision.UNDECIDED
        )

    def nearest(self, embedding, version: ModelVersion):
        """Searchable templates ordered by Euclidean distance to ``embedding`` (HNSW index), read
        inside index_search(), so that the filters never cut what the index returns."""
        found = (
            self.searchable(version)
            .annotate(distance=L2Distance("embedding", list(map(float, embedding))))
            .order_by("distance")
        )
        found._index_search = True
        return found


def _source_path(template: "FaceTemplate", filename: str) -> str:
    return f"faces/{template.employee_id}/{timezone.now():%Y%m%d%H%M%S}-{filename[-60:]}"


class FaceTemplate(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        READY = "ready", "ready"
        REJECTED = "rejected", "rejected"

    class Source(models.TextChoices):
        PHOTO = "photo", "photo from HR"
        CAPTURE = "capture", "automatic, from a verified kiosk capture"

    class DuplicateDecision(models.TextChoices):
        UNDECIDED = "", "not decided"
        SAME_PERSON = "same_person", "same person: records merged"
        DIFFERENT_PEOPLE = "different_people", "different people: both kept"

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="templates")
    source_image = models.FileField(upload_to=_source_path, max_length=255)
    original_filename = models.CharField(max_length=255, blank=True, help_text="The uploaded file's name.")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.PHOTO)
    from_attempt = models.ForeignKey(
        "VerificationAttempt", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False,
        related_name="+", help_text="The verified attempt an automatic template was taken from.",
    )
    chip = models.FileField(upload_to="chips/", blank=True, max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    reason = models.TextField(blank=True, help_text="Why the photo was rejected, and what to do.")
    box = models.JSONField(null=True, blank=True)  # [left, top, right, bottom] in the source photo
    landmarks = models.JSONField(null=True, blank=True)  # five [x, y] points
    quality = models.JSONField(null=True, blank=True)  # face_size, sharpness, brightness, yaw, pitch, roll
    embedding = VectorField(dimensions=128, null=True, blank=True)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT)
    possible_duplicate_of = models.ForeignKey(
        Employee, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Another employee whose face this one matches.",
    )
    duplicate_distance = models.FloatField(null=True, blank=True)
    duplicate_decision = models.CharField(max_length=20, choices=DuplicateDecision.choices, blank=True, default="")
    duplicate_decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    duplicate_decided_at = models.DateTimeField(null=True, blank=True)
    found_boxes = models.JSONField(
        null=True, blank=True, help_text="Every face box found in the photo ([left, top, right, bottom] each), "
                                         "drawn on a rejected photo with several faces.",
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    objects = FaceTemplateQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("view_facetemplate_photo", "Can view the uploaded photos of face templates")]
        indexes = [
            HnswIndex(
                name="facetemplate_embedding_hnsw",
                fields=["embedding"],
                # ef_construction 200, not pgvector's 64: at 1M faces the graph built with 64 could
                # not reach recall@1 0.995 within 10 ms (0.995 needed ef_search 300, p95 10.9 ms);
                # with 200, ef_search 100 gives 0.998 (BENCHMARKS, "1:N search at 1M").
                m=16,
                ef_construction=200,
                opclasses=["vector_l2_ops"],
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="ready") | (Q(embedding__isnull=False) & Q(model_version__isnull=False)),
                name="ready_template_has_embedding",
            )
        ]

    def __str__(self) -> str:
        return f"{self.employee.name}: {self.get_status_display()}"


class TemplateEmbedding(models.Model):
    """A ready template's embedding by a model version other than the one it is searched with:
    a candidate being switched to (re-embedding after a training run), or the previous version
    kept for roll-back. Search only ever reads FaceTemplate.embedding; switching versions swaps
    the two in one transaction (training.switching)."""

    template = models.ForeignKey(FaceTemplate, on_delete=models.CASCADE, related_name="other_embeddings")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    embedding = VectorField(dimensions=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "model_version"], name="one_embedding_per_version")
        ]

    def __str__(self) -> str:
        return f"Template {self.template_id} by {self.model_version_id}"


class BulkImport(models.Model):
    """A zip of employees' photos uploaded in the admin, imported in the background."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    archive = models.FileField(upload_to="imports/", max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total_photos = models.PositiveIntegerField(default=0)
    processed_photos = models.PositiveIntegerField(default=0)
    enrolled_photos = models.PositiveIntegerField(default=0)
    rejected_photos = models.PositiveIntegerField(default=0)
    employees_created = models.PositiveIntegerField(default=0)
    report = models.TextField(blank=True, help_text="What was enrolled and rejected, photo by photo.")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.get_status_display()})"

    @property
    def percent_done(self) -> int:
        return round(100 * self.processed_photos / self.total_photos) if self.total_photos else 0


class KioskQuerySet(models.QuerySet):
    def for_token(self, token: str) -> "Kiosk | None":
        """The kiosk (enabled or not) whose secret token this is, or None."""
        return self.filter(token_hash=Kiosk.hash_token(token)).first()


class Kiosk(models.Model):
    """A shared device at an entrance. It authenticates with a secret token, shown once when the
    kiosk is registered; only the token's SHA-256 is stored."""

    TOKEN_PREFIX = "kiosk_"

    name = models.CharField(max_length=100, unique=True)
    location = models.CharField(max_length=200, blank=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    is_active = models.BooleanField(default=True, help_text="A disabled kiosk's token is refused at once.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    liveness_required = models.BooleanField(
        "liveness challenge", default=True,
        help_text="People follow a short random instruction at the camera (turn the head, look up) so that "
                  "a photo held up to it is refused. Turn off only where staff watch the kiosk.",
    )

    objects = KioskQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def new_token(self) -> str:
        """Give the kiosk a new secret token and return it (the caller shows it once, then it is gone).
        The kiosk is not saved."""
        token = self.TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.token_hash = self.hash_token(token)
        return token


class AppendOnlyQuerySet(models.QuerySet):
    """Refuses bulk updates and deletes in Python too; the database trigger is what guarantees it."""

    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} rows are append-only: they are never changed.")

    def delete(self):
        raise TypeError(f"{self.model.__name__} rows are append-only: they are never deleted.")


# An attempt keeps who and what it was about even after that row is gone (an employee deleted on
# erasure, a user removed): its foreign keys have no database constraint and are never cascaded,
# since the trigger refuses any change to the row.
def _audit_link(model, **options):
    return models.ForeignKey(
        model, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, **options
    )


# What an erasure leaves of an attempt's biometric readings: the distances to the employee's
# templates and the per-frame face figures (box, pose, quality) are cleared; who, when, where and
# the decision stay. Migration identity 0008's trigger allows exactly this change.
REDACTED_ATTEMPT = {"distance": None, "second_distance": None, "quality": []}


class VerificationAttemptQuerySet(AppendOnlyQuerySet):
    def failures(self):
        """Attempts that count towards a lockout (identity.lockout): what someone trying faces or
        numbers that are not theirs produces. A face not recognised; frames rejected (a photo or a
        screen held up fails there, liveness included); a personal claim refused (an unknown
        number, someone else's number, an account with no employee). Not counted: verified, busy or
        a server fault (5xx: not the person's doing), malformed requests (a client's bug, which
        guesses nothing), and locked-out attempts themselves (they never reach a face, and counting
        them would keep a lockout going for as long as someone keeps knocking)."""
        Decision, Mode = VerificationAttempt.Decision, VerificationAttempt.Mode
        return self.filter(
            Q(decision=Decision.NOT_RECOGNISED)
            | Q(decision=Decision.REJECTED, http_status__lt=500)
            | Q(decision=Decision.REFUSED, mode=Mode.PERSONAL, http_status__in=(403, 404))
        )

    def failed_recently(self, since: datetime):
        return self.failures().filter(created_at__gt=since)

    def redact(self, now=None) -> int:
        """Clear these attempts' biometric readings (an erasure, identity.erasure) and stamp them
        redacted; the only UPDATE the database's trigger lets through (migration identity 0008).
        Attempts already redacted are left alone. Returns how many were redacted."""
        unredacted = self.filter(redacted_at__isnull=True)
        return models.QuerySet.update(unredacted, **REDACTED_ATTEMPT, redacted_at=now or timezone.now())


class VerificationAttempt(models.Model):
    """One verification attempt, successful or not. Append-only: a trigger in the database refuses
    UPDATE and DELETE (migration identity 0003), and the admin and API only read."""

    class Mode(models.TextChoices):
        KIOSK = "kiosk", "kiosk (1:N)"
        PERSONAL = "personal", "personal (1:1)"

    class Decision(models.TextChoices):
        VERIFIED = "verified", "verified"
        NOT_RECOGNISED = "not_recognised", "not recognised"
        REJECTED = "rejected", "rejected (unusable frames)"
        REFUSED = "refused", "refused (bad request)"
        BUSY = "busy", "verification busy"
        LOCKED_OUT = "locked_out", "locked out (too many failures)"

    class Direction(models.TextChoices):
        IN = "in", "check-in"
        OUT = "out", "check-out"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    mode = models.CharField(max_length=10, choices=Mode.choices)
    kiosk = _audit_link(Kiosk, related_name="attempts")
    user = _audit_link(settings.AUTH_USER_MODEL, related_name="+")
    client_address = models.GenericIPAddressField(null=True, blank=True)
    claimed_employee = _audit_link(Employee, related_name="+")
    # As sent (or the account's own, for personal check-in), whether or not anyone has it: lockouts
    # count failures per claimed number, so an unknown number is locked out like an enrolled one.
    # (A default in the database too: rows written by hand, outside Django, are accepted as before.)
    claimed_number = models.CharField(max_length=50, blank=True, default="", db_default="")
    matched_employee = _audit_link(Employee, related_name="+")
    nearest_employee = _audit_link(Employee, related_name="+")
    distance = models.FloatField(null=True, blank=True, help_text="To the nearest (or claimed) employee.")
    second_distance = models.FloatField(null=True, blank=True, help_text="To the second-nearest employee.")
    threshold = models.FloatField(null=True, blank=True)
    margin = models.FloatField(null=True, blank=True, help_text="The margin the second-nearest had to keep.")
    gallery_size = models.PositiveIntegerField(null=True, blank=True)
    model_version = _audit_link("training.ModelVersion", related_name="+")
    decision = models.CharField(max_length=20, choices=Decision.choices, db_index=True)
    reason = models.TextField(blank=True)
    direction = models.CharField(max_length=3, choices=Direction.choices, blank=True)
    frames = models.PositiveSmallIntegerField(default=0)
    quality = models.JSONField(default=list, blank=True, help_text="Per frame: faces found and quality figures.")
    http_status = models.PositiveSmallIntegerField(default=200)
    latency_ms = models.FloatField(null=True, blank=True)
    # Set when the attempt's biometric readings (distances, per-frame face figures) were cleared by
    # an erasure (identity.erasure): the one change the database allows (migration identity 0008).
    redacted_at = models.DateTimeField(
        null=True, blank=True, help_text="When an erasure removed this attempt's biometric readings."
    )
    # The liveness challenge (identity.liveness): None when the check carried none.
    liveness_passed = models.BooleanField(null=True, blank=True)
    liveness_reason = models.TextField(blank=True, default="", db_default="", help_text="What was asked and what the frames showed.")

    objects = VerificationAttemptQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        permissions = [("view_attemptcapture_image", "Can view the captured frames of attempts")]

    def __str__(self) -> str:
        return f"Attempt {self.pk}: {self.get_decision_display()}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("Verification attempts are append-only: they are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Verification attempts are append-only: they are never deleted.")


class LivenessChallengeQuerySet(models.QuerySet):
    def redeemable(self, nonce: str, kiosk: "Kiosk | None", user, now=None):
        """The unused, unexpired challenge with this nonce, issued to this kiosk or user."""
        return self.filter(
            nonce_hash=LivenessChallenge.hash_nonce(nonce), kiosk=kiosk,
            user=user if getattr(user, "is_authenticated", False) else None,
            used_at__isnull=True, expires_at__gt=now or timezone.now(),
        )


class LivenessChallenge(models.Model):
    """A random instruction issued to one kiosk or user for one check (identity.liveness). Only
    the nonce's SHA-256 is kept; used_at makes it single-use."""

    nonce_hash = models.CharField(max_length=64, unique=True)
    steps = models.JSONField(help_text="The movements asked for, in order, e.g. [\"left\", \"up\"].")
    kiosk = models.ForeignKey(Kiosk, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="+")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    objects = LivenessChallengeQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"Challenge {self.pk}: {', '.join(self.steps)}"

    @staticmethod
    def hash_nonce(nonce: str) -> str:
        return hashlib.sha256(nonce.encode()).hexdigest()


class AttemptCaptureQuerySet(models.QuerySet):
    def expired(self, now=None):
        days = settings.FRID_CAPTURE_RETENTION_DAYS
        return self.filter(created_at__lt=(now or timezone.now()) - timedelta(days=days))


class AttemptCapture(models.Model):
    """A frame captured during an attempt: personal data, kept apart from the audit record and
    purged after FRID_CAPTURE_RETENTION_DAYS (the only part of an attempt ever deleted)."""

    attempt = models.ForeignKey(VerificationAttempt, on_delete=models.DO_NOTHING, related_name="captures")
    index = models.PositiveSmallIntegerField()
    image = models.BinaryField()
    content_type = models.CharField(max_length=50, default="image/jpeg")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = AttemptCaptureQuerySet.as_manager()

    class Meta:
        ordering = ["attempt", "index"]
        constraints = [models.UniqueConstraint(fields=["attempt", "index"], name="one_capture_per_frame")]

    def __str__(self) -> str:
        return f"Frame {self.index + 1} of attempt {self.attempt_id}"


class AttendanceEventQuerySet(models.QuerySet):
    def for_report(self, start: date, end: date, *, department: str = "", employee_number: str = ""):
        """Events whose local day (FRID_TIME_ZONE) lies within [start, end], with their employee;
        only one department's or one employee's when those are given (exact values)."""
        # The bounds are local midnights, so an event at 23:30 local is on its own day even when
        # UTC has already moved on to the next.
        zone = timezone.get_default_timezone()
        events = self.filter(
            occurred_at__gte=datetime.combine(start, time.min, tzinfo=zone),
            occurred_at__lt=datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
        ).select_related("employee")
        if department:
            events = events.filter(employee__department=department)
        if employee_number:
            events = events.filter(employee__employee_number=employee_number)
        return events


class AttendanceEvent(models.Model):
    """A check-in or check-out, made from a verified attempt."""

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="attendance_events")
    direction = models.CharField(max_length=3, choices=VerificationAttempt.Direction.choices)
    occurred_at = models.DateTimeField(db_index=True)
    attempt = models.OneToOneField(
        VerificationAttempt, on_delete=models.DO_NOTHING, db_constraint=False, related_name="event"
    )
    kiosk = models.ForeignKey(Kiosk, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    objects = AttendanceEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [models.Index(fields=["employee", "occurred_at"], name="attendance_employee_time")]

    def __str__(self) -> str:
        return f"{self.employee.name} {self.get_direction_display()} {self.occurred_at:%Y-%m-%d %H:%M}"


class LockoutLift(models.Model):
    """HR lifting a lockout (identity.lockout), with who and when: the subject's failures before
    it no longer count. Kept as an audit record: never changed or deleted (the admin only reads)."""

    class Subject(models.TextChoices):
        EMPLOYEE = "employee", "claimed employee number"
        ACCOUNT = "account", "account"
        KIOSK = "kiosk", "kiosk"

    subject = models.CharField(max_length=10, choices=Subject.choices)
    # The claimed employee number, the account's user id or the kiosk's id.
    key = models.CharField(max_length=50)
    lifted_by = _audit_link(settings.AUTH_USER_MODEL, related_name="+")
    lifted_at = models.DateTimeField(default=timezone.now, db_index=True)
    locked_until = models.DateTimeField(help_text="When the lockout would have ended by itself.")
    failures = models.PositiveSmallIntegerField(help_text="Failed attempts that caused it.")

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-lifted_at"]
        verbose_name = "lockout"
        verbose_name_plural = "lockouts"

    def __str__(self) -> str:
        return f"{self.get_subject_display()} {self.key}: lifted {self.lifted_at:%Y-%m-%d %H:%M}"


class Erasure(models.Model):
    """An employee's biometric data erased (identity.erasure): who, when, why and what was removed.
    No biometrics: counts, the names the erased files were stored under, and SHA-256 digests of
    the erased files, frames and embeddings, so that ``manage.py erasure_report`` can prove no copy
    is left (a digest cannot be compared for likeness, nor turned back into a face)."""

    employee = _audit_link(Employee, related_name="+")
    employee_number = models.CharField(max_length=50, db_index=True)
    erased_at = models.DateTimeField(default=timezone.now, db_index=True)
    erased_by = _audit_link(settings.AUTH_USER_MODEL, related_name="+")
    erased_by_name = models.CharField(max_length=150, blank=True, help_text="The account's name at the time.")
    reason = models.CharField(max_length=200, blank=True)
    removed = models.JSONField(default=dict, help_text="What was removed, counted.")
    file_names = models.JSONField(default=list, help_text="The storage names of the files deleted.")
    file_digests = models.JSONField(default=list, help_text="SHA-256 of each file and frame deleted.")
    embedding_digests = models.JSONField(default=list, help_text="SHA-256 of each embedding deleted.")

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-erased_at"]
        verbose_name = "biometric erasure"

    def __str__(self) -> str:
        return f"Erasure of {self.employee_number} on {self.erased_at:%Y-%m-%d %H:%M}"


@receiver(post_delete, sender=FaceTemplate)
def _delete_face_files(sender, instance: FaceTemplate, **kwargs) -> None:
    # Photos of faces are personal data: they go with their template (and so with the employee),
    # once the deletion is committed.
    names = [field.name for field in (instance.source_image, instance.chip) if field]
    storage = instance.source_image.storage
    transaction.on_commit(lambda: [storage.delete(name) for name in names])
