"""The REST API, /api/v1/: thin views over identity.tasks and the domain modules.

Who may call what is in identity.api.permissions (the roles in identity.roles): HR enrolls,
HR and auditors read attempts and everyone's attendance, employees verify as themselves and read
their own attendance, kiosks verify 1:N by their token.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent, ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from identity import attendance, enrollment, roles, tasks, verification
from identity.api import errors, permissions, serializers, throttling
from identity.models import AttendanceEvent, Employee, FaceTemplate, Kiosk, VerificationAttempt
from identity.verification import Check

Mode = VerificationAttempt.Mode

NO_CONSENT = (
    "{employee} has no recorded consent to biometric processing, so no photo can be accepted. Ask the "
    "employee for consent and record it in the admin, then send the photo again."
)
NOT_AN_IMAGE = "{filename} is not a JPEG or PNG image. Send a photo of the employee's face."


def _problem(message: str, status_code: int) -> Response:
    return Response({"detail": message}, status=status_code)


REFUSAL = OpenApiResponse(serializers.VerifyRefusalSerializer, description="Refused, and audited as such.")
PROBLEM = OpenApiResponse(description='{"detail": what went wrong and what to do}')


# --- Enrollment ---------------------------------------------------------------------------------


class EmployeeCreate(generics.CreateAPIView):
    """Add an employee (HR)."""

    permission_classes = [permissions.MayAddEmployees]
    serializer_class = serializers.EmployeeSerializer


class EmployeePhotos(APIView):
    permission_classes = [permissions.MayAddPhotos]
    parser_classes = [MultiPartParser]

    @extend_schema(
        summary="Add a photo to an employee (HR)",
        description="The photo is kept as a pending face template and embedded in the background; "
                    "follow it at /api/v1/templates/{id}/.",
        request={"multipart/form-data": serializers.PhotoUploadSerializer},
        responses={
            202: serializers.PhotoAcceptedSerializer,
            400: PROBLEM,
            404: PROBLEM,
            409: OpenApiResponse(description="The employee's consent is not recorded."),
            415: OpenApiResponse(description="The file is not an image."),
        },
    )
    def post(self, request, employee_number: str):
        employee = get_object_or_404(Employee, employee_number=employee_number)
        if employee.consent_recorded_at is None:
            return _problem(NO_CONSENT.format(employee=employee), status.HTTP_409_CONFLICT)
        upload = serializers.PhotoUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        image = upload.validated_data["image"]
        try:
            enrollment.check_size(image.size, image.name)  # before reading it: no huge file in memory
            data = image.read()
            enrollment.check_upload(data, image.name)  # its content, never its name
            template = tasks.add_photo(employee, data, image.name)
        except ValidationError as error:
            return _photo_refused(error, image.name)
        return Response(serializers.PhotoAcceptedSerializer(template).data, status=status.HTTP_202_ACCEPTED)


def _photo_refused(error: ValidationError, filename: str) -> Response:
    code = error.error_list[0].code
    if code == enrollment.NOT_AN_IMAGE_CODE:
        return _problem(NOT_AN_IMAGE.format(filename=filename), status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
    if code == enrollment.TOO_LARGE_CODE:  # bytes or pixels
        return _problem(" ".join(error.messages), status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    return _problem(" ".join(error.messages), status.HTTP_400_BAD_REQUEST)


class TemplateDetail(generics.RetrieveAPIView):
    """A face template's status (HR): pending, ready, or rejected with the reason."""

    permission_classes = [permissions.MayViewTemplates]
    serializer_class = serializers.TemplateSerializer
    queryset = FaceTemplate.objects.all()


# --- Verification -------------------------------------------------------------------------------


class Verify(APIView):
    permission_classes = [permissions.MayVerify]
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = throttling.VERIFY_SCOPE  # a live check costs a verify worker's time

    @extend_schema(
        summary="Verify a face (a kiosk 1:N, or an employee 1:1)",
        description="Every request, answered or refused, is recorded as an append-only verification "
                    "attempt. A verified face becomes an attendance event (check-in or check-out).",
        request={"multipart/form-data": serializers.VerifyFramesSerializer},
        responses={
            200: serializers.VerifyAnswerSerializer,
            400: REFUSAL, 403: REFUSAL, 404: REFUSAL, 413: REFUSAL, 415: REFUSAL,
            429: OpenApiResponse(serializers.VerifyRefusalSerializer,
                                 description="Too many failed attempts (decision locked_out): try again later."),
            503: OpenApiResponse(serializers.VerifyRefusalSerializer, description="Verification is busy: try again."),
        },
    )
    def post(self, request):
        kiosk = roles.kiosk_of(request)
        try:
            frames = _frames(request)
        except _UNREADABLE as error:  # audited like every other refused check
            return self._refuse_unreadable(request, kiosk, error)
        check = Check(
            mode=Mode.KIOSK if kiosk else Mode.PERSONAL,
            frames=frames,
            kiosk=kiosk,
            user=request.user if request.user.is_authenticated else None,
            client_address=request.META.get("REMOTE_ADDR"),
            employee_number=request.data.get("employee_number", ""),
            direction=request.data.get("direction", ""),
            nonce=request.data.get("challenge", ""),
        )
        outcome = tasks.verify(check)
        if kiosk is not None:
            _note_seen(kiosk)
        return Response(outcome.as_json(), status=outcome.http_status)


    def _refuse_unreadable(self, request, kiosk: Kiosk | None, error: Exception) -> Response:
        check = Check(
            mode=Mode.KIOSK if kiosk else Mode.PERSONAL, frames=[], kiosk=kiosk,
            user=request.user if request.user.is_authenticated else None,
            client_address=request.META.get("REMOTE_ADDR"),
        )
        refusal = verification.Refusal(errors.request_problem_in_words(error, self, request), _status_of(error))
        outcome = verification.refuse(check, refusal)
        if kiosk is not None:
            _note_seen(kiosk)
        return Response(outcome.as_json(), status=outcome.http_status)


# A body the verify view cannot read: a wrong content type, a broken multipart, too many parts.
_UNREADABLE = (exceptions.ParseError, exceptions.UnsupportedMediaType, TooManyFilesSent, TooManyFieldsSent,
               RequestDataTooBig)


def _status_of(error: Exception) -> int:
    if isinstance(error, exceptions.APIException):
        return error.status_code
    return status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if isinstance(error, RequestDataTooBig) else status.HTTP_400_BAD_REQUEST


def _frames(request) -> list[bytes]:
    """The frames sent; one over the size limit is refused whatever it holds, so no more of it is
    read into memory than shows that it is over (identity.verification.check_request)."""
    limit = settings.FRID_MAX_UPLOAD_BYTES
    return [frame.read(limit + 1) for frame in request.FILES.getlist("image")]


class VerifyChallenge(APIView):
    permission_classes = [permissions.MayVerify]

    @extend_schema(
        summary="A liveness challenge for the next check",
        description="Where liveness is required (a kiosk with it on; personal check-in with "
                    "FRID_LIVENESS_FOR_CHECK_IN), a random instruction (e.g. turn the head left, then look "
                    "up) and its nonce, good for one check within valid_seconds: take the frames while the "
                    "person follows it and send them to /api/v1/verify/ with the nonce in \"challenge\". "
                    "The server judges the movement from the frames. Elsewhere, {\"required\": false}.",
        request=None,
        responses={
            201: serializers.LivenessChallengeSerializer,
            200: OpenApiResponse(serializers.LivenessChallengeSerializer, description="No challenge is needed."),
            403: REFUSAL,
        },
    )
    def post(self, request):
        kiosk = roles.kiosk_of(request)
        check = Check(
            mode=Mode.KIOSK if kiosk else Mode.PERSONAL, frames=[], kiosk=kiosk,
            user=request.user if request.user.is_authenticated else None,
            client_address=request.META.get("REMOTE_ADDR"),
        )
        try:
            issued = verification.issue_challenge(check)
        except verification.Refusal as refusal:
            outcome = verification.refuse(check, refusal)
            return Response(outcome.as_json(), status=outcome.http_status)
        if issued is None:
            return Response({"required": False})
        return Response(issued.as_json(), status=status.HTTP_201_CREATED)


def _note_seen(kiosk: Kiosk) -> None:
    # A disabled kiosk keeps the time it was last seen working.
    Kiosk.objects.filter(pk=kiosk.pk, is_active=True).update(last_seen_at=timezone.now())


# --- Attendance ---------------------------------------------------------------------------------


class SwitchDirection(APIView):
    permission_classes = [permissions.MaySwitchDirection]

    @extend_schema(
        summary="Switch a check-in to a check-out, or back",
        description="The kiosk that recorded the event, or the employee, may switch it within "
                    "FRID_REPEAT_CHECK_MINUTES of it; HR at any time.",
        request=None,
        responses={200: serializers.SwitchAnswerSerializer, 403: PROBLEM, 404: PROBLEM},
    )
    def post(self, request, event_id: int):
        with transaction.atomic():  # two taps at once switch once each, in turn
            event = get_object_or_404(AttendanceEvent.objects.select_for_update(), pk=event_id)
            self.check_object_permissions(request, event)
            event = attendance.switch_direction(event)
        return Response(serializers.SwitchAnswerSerializer({"event_id": event.pk, "direction": event.direction}).data)


class AttendanceList(generics.GenericAPIView):
    permission_classes = [permissions.MayReadAttendance]
    serializer_class = serializers.AttendanceDaySerializer

    @extend_schema(
        summary="Attendance per employee per day",
        description="HR and auditors see everyone (filtered by employee_number and department); an "
                    "employee sees only their own days, whatever the filters. The period defaults to "
                    "the last 7 days, today included. ?format=csv gives the same rows as CSV.",
        parameters=[serializers.AttendanceQuerySerializer],
        responses={
            (200, "application/json"): serializers.AttendanceDaySerializer(many=True),
            (200, "text/csv"): OpenApiTypes.STR,
            400: PROBLEM,
        },
    )
    def get(self, request):
        query = serializers.AttendanceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = _period(query.validated_data)
        try:
            attendance.check_period(start, end)
        except ValueError as error:
            return _problem(str(error), status.HTTP_400_BAD_REQUEST)
        rows = attendance.report_rows(start, end, **_whose_attendance(request.user, query.validated_data))
        if query.validated_data.get("format") == "csv":
            return HttpResponse(
                attendance.rows_as_csv(rows), content_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="attendance-{start}-{end}.csv"'},
            )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def _period(query: dict):
    """The period asked for: "from" and "to", each defaulting to the default period's."""
    default_start, default_end = attendance.default_period()
    end = query.get("to") or default_end
    start = query.get("from") or end - (default_end - default_start)
    return start, end


def _whose_attendance(user, query: dict) -> dict:
    # An employee sees only their own days, whatever they ask for.
    if roles.sees_all_attendance(user):
        return {"employee_number": query.get("employee_number", ""), "department": query.get("department", "")}
    return {"employee_number": roles.employee_of(user).employee_number}


# --- The audit ----------------------------------------------------------------------------------


class AttemptList(generics.ListAPIView):
    """Verification attempts, newest first (HR, auditors): read-only, as the audit is."""

    permission_classes = [permissions.MayReadAttempts]
    serializer_class = serializers.AttemptSerializer
    queryset = VerificationAttempt.objects.all()

    @extend_schema(parameters=[serializers.AttemptFilterSerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = serializers.AttemptFilterSerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.validated_data
        attempts = super().get_queryset().select_related(
            "kiosk", "user", "claimed_employee", "matched_employee", "nearest_employee"
        )
        for name in ("decision", "mode"):
            if name in filters:
                attempts = attempts.filter(**{name: filters[name]})
        if "kiosk" in filters:
            attempts = attempts.filter(kiosk_id=filters["kiosk"])
        if "from" in filters:
            attempts = attempts.filter(created_at__date__gte=filters["from"])
        if "to" in filters:
            attempts = attempts.filter(created_at__date__lte=filters["to"])
        return attempts
