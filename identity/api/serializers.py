"""What the API reads and answers. The verify serializers describe the request and the answer in
the OpenAPI schema only: the verify flow itself checks the request, so that every bad one is
audited (identity.verification.check_request)."""

from __future__ import annotations

from django.db import transaction
from rest_framework import serializers

from identity.models import Employee, FaceTemplate, VerificationAttempt
from identity import liveness
from identity.verification import MAX_FRAMES

Decision = VerificationAttempt.Decision
Direction = VerificationAttempt.Direction

DATE_FORMAT_MESSAGE = "{name} must be a date written as YYYY-MM-DD, e.g. 2026-03-02."


def _date_field(name: str, help_text: str) -> serializers.DateField:
    return serializers.DateField(
        required=False, input_formats=["iso-8601"], help_text=help_text,
        error_messages={"invalid": DATE_FORMAT_MESSAGE.format(name=name)},
    )


class _PeriodSerializer(serializers.Serializer):
    """Query parameters ``from`` and ``to`` (Python keywords, so added in get_fields)."""

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = _date_field("from", "First local day, YYYY-MM-DD.")
        fields["to"] = _date_field("to", "Last local day, YYYY-MM-DD (included).")
        return fields

    def validate(self, attrs: dict) -> dict:
        if "from" in attrs and "to" in attrs and attrs["from"] > attrs["to"]:
            raise serializers.ValidationError(
                f"from ({attrs['from']}) is after to ({attrs['to']}): swap the two dates."
            )
        return attrs


# --- Employees and their photos -----------------------------------------------------------------


class _ConsentField(serializers.BooleanField):
    def get_attribute(self, employee: Employee) -> bool:
        return employee.consent_recorded_at is not None


class EmployeeSerializer(serializers.ModelSerializer):
    consent = _ConsentField(
        default=False,
        help_text="True when the employee's consent to biometric processing has been collected: it is "
                  "recorded in your name. Photos are refused for an employee without recorded consent.",
    )

    class Meta:
        model = Employee
        fields = ["employee_number", "name", "email", "department", "consent", "consent_recorded_at"]
        read_only_fields = ["consent_recorded_at"]

    def create(self, validated_data: dict) -> Employee:
        consent = validated_data.pop("consent")
        with transaction.atomic():
            employee = Employee.objects.create(**validated_data)
            if consent:
                employee.record_consent(self.context["request"].user)
        return employee


class PhotoUploadSerializer(serializers.Serializer):
    image = serializers.FileField(
        help_text="One photo of the employee's face (JPEG or PNG), alone in the picture.",
        error_messages={
            "required": 'Send the photo as a file in the multipart field "image".',
            "invalid": 'Send the photo as a file in the multipart field "image".',
            "empty": "The photo is empty. Choose the photo again.",
        },
    )


class PhotoAcceptedSerializer(serializers.ModelSerializer):
    class Meta:
        model = FaceTemplate
        fields = ["id", "status"]


class TemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = FaceTemplate
        fields = ["id", "status", "reason"]


# --- Verification -------------------------------------------------------------------------------


class VerifyFramesSerializer(serializers.Serializer):
    image = serializers.ListField(
        child=serializers.FileField(), min_length=1, max_length=liveness.MAX_FRAMES,
        help_text=f"1 to {MAX_FRAMES} camera frames (JPEG or PNG) of one person, the field repeated once "
                  "per frame; a short burst, e.g. 3 frames over half a second. With a liveness challenge, "
                  f"{liveness.MIN_FRAMES} to {liveness.MAX_FRAMES} frames taken while the person follows it "
                  f"(e.g. {liveness.FRAMES}, {liveness.FRAME_INTERVAL_MS} ms apart).",
    )
    challenge = serializers.CharField(
        required=False,
        help_text="The nonce of a liveness challenge (POST /api/v1/verify/challenge/), good for one check "
                  "within its seconds. Needed where liveness is required (a kiosk with it on; personal "
                  "check-in with FRID_LIVENESS_FOR_CHECK_IN).",
    )
    employee_number = serializers.CharField(
        required=False,
        help_text="Personal check-in (1:1): the employee the face must be. Left out, a logged-in employee "
                  "is checked as themself. A kiosk (1:N) must leave it out.",
    )
    direction = serializers.ChoiceField(
        choices=Direction.choices, required=False,
        help_text="Check-in or check-out; left out, the usual one (the opposite of the last event today).",
    )


class VerifiedEmployeeSerializer(serializers.Serializer):
    employee_number = serializers.CharField()
    name = serializers.CharField()


class VerifyAnswerSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        choices=[Decision.VERIFIED, Decision.NOT_RECOGNISED, Decision.REJECTED],
        help_text="verified: the employee was recognised; not_recognised: nobody enrolled (or not the "
                  "claimed employee); rejected: the frames cannot be used, and reason says what to do.",
    )
    reason = serializers.CharField(help_text="What to do, in plain words; empty when verified.")
    employee = VerifiedEmployeeSerializer(allow_null=True, help_text="Who was recognised; null otherwise.")
    distance = serializers.FloatField(allow_null=True, help_text="To the nearest (or claimed) employee.")
    threshold = serializers.FloatField(allow_null=True)
    direction = serializers.ChoiceField(choices=Direction.choices, allow_null=True)
    event_id = serializers.IntegerField(
        allow_null=True, help_text="The attendance event made; null when none was (or the same check was "
                                   "recorded a few minutes ago).",
    )
    event_time = serializers.DateTimeField(allow_null=True)
    attempt_id = serializers.IntegerField(help_text="The audit record of this attempt.")
    liveness_passed = serializers.BooleanField(
        allow_null=True, help_text="Whether the pose moved as the liveness challenge asked; null when the "
                                   "check carried no challenge, or ended before the pose was judged.",
    )


class VerifyRefusalSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Why the request could not be verified, and what to do.")
    decision = serializers.ChoiceField(choices=[Decision.REFUSED, Decision.BUSY, Decision.LOCKED_OUT])
    attempt_id = serializers.IntegerField(help_text="The audit record of this attempt.")


class LivenessChallengeSerializer(serializers.Serializer):
    required = serializers.BooleanField(
        help_text="Whether the next check must carry a challenge; when false, the fields below are absent "
                  "and the check is a plain burst of frames.",
    )
    challenge = serializers.CharField(required=False, help_text="The nonce to send with the frames (field \"challenge\").")
    steps = serializers.ListField(
        child=serializers.ChoiceField(choices=list(liveness.STEPS)), required=False,
        help_text="The movements asked for, in order.",
    )
    instructions = serializers.CharField(required=False, help_text="The whole challenge in words, to show big.")
    step_instructions = serializers.ListField(child=serializers.CharField(), required=False,
                                              help_text="Each movement in words, to show in turn.")
    expires_at = serializers.DateTimeField(required=False, help_text="The check must arrive before this.")
    valid_seconds = serializers.IntegerField(required=False)
    frames = serializers.IntegerField(required=False, help_text="How many frames to take while the person moves.")
    frame_interval_ms = serializers.IntegerField(required=False, help_text="How far apart to take them.")


# --- Attendance ---------------------------------------------------------------------------------


class SwitchAnswerSerializer(serializers.Serializer):
    event_id = serializers.IntegerField()
    direction = serializers.ChoiceField(choices=Direction.choices)


class AttendanceQuerySerializer(_PeriodSerializer):
    employee_number = serializers.CharField(required=False, help_text="Only this employee (HR, auditors).")
    department = serializers.CharField(required=False, help_text="Only this department (HR, auditors).")
    format = serializers.ChoiceField(
        choices=["json", "csv"], required=False, help_text="csv for a CSV file of the same rows.",
        error_messages={"invalid_choice": 'format must be "csv" or "json" (or left out for JSON).'},
    )


class AttendanceDaySerializer(serializers.Serializer):
    """One employee's day; times are local (FRID_TIME_ZONE), with their offset."""

    employee_number = serializers.CharField(source="employee.employee_number")
    name = serializers.CharField(source="employee.name")
    department = serializers.CharField(source="employee.department")
    date = serializers.DateField(source="day")
    first_in = serializers.DateTimeField(allow_null=True)
    last_out = serializers.DateTimeField(allow_null=True)
    hours_present = serializers.FloatField()
    missing_check_out = serializers.BooleanField(help_text="The day's last event is a check-in.")
    late = serializers.BooleanField(help_text="The first check-in came after the workday start and grace period.")
    minutes_late = serializers.IntegerField(help_text="Counted from the workday start; 0 when not late.")


# --- The audit ----------------------------------------------------------------------------------


class AttemptFilterSerializer(_PeriodSerializer):
    decision = serializers.ChoiceField(choices=Decision.choices, required=False)
    mode = serializers.ChoiceField(choices=VerificationAttempt.Mode.choices, required=False)
    kiosk = serializers.IntegerField(required=False, min_value=1, help_text="A kiosk's id.")


def _employee_number(source: str) -> serializers.CharField:
    # Attempts keep an employee's id after the employee was deleted: then this is null.
    return serializers.CharField(source=f"{source}.employee_number", allow_null=True, read_only=True)


class AttemptSerializer(serializers.ModelSerializer):
    kiosk_name = serializers.CharField(source="kiosk.name", allow_null=True, read_only=True)
    user = serializers.CharField(source="user.username", allow_null=True, read_only=True)
    claimed_employee = _employee_number("claimed_employee")
    matched_employee = _employee_number("matched_employee")
    nearest_employee = _employee_number("nearest_employee")

    class Meta:
        model = VerificationAttempt
        fields = [
            "id", "created_at", "mode", "kiosk", "kiosk_name", "user", "client_address",
            "claimed_employee", "matched_employee", "nearest_employee",
            "decision", "reason", "http_status", "direction", "distance", "second_distance", "threshold",
            "margin", "gallery_size", "model_version", "frames", "quality", "latency_ms",
            "liveness_passed", "liveness_reason",
        ]
        read_only_fields = fields
