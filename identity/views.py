"""Staff-only views behind the admin pages: face chips, enrollment progress, and the frames captured
during verification attempts.

Face images are personal data: they are never served from MEDIA_URL, only through these views,
to staff allowed to see face templates, and browsers are told not to keep them.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.cache import never_cache

from identity import enrollment
from identity.models import AttemptCapture, Employee, FaceTemplate

# A pending template older than this is shown as waiting for the background worker: processing
# one photo takes seconds, so this long means no worker is taking tasks.
WAITING_LONG_AFTER = timedelta(seconds=60)


def waits_for_worker(template: FaceTemplate, now=None) -> bool:
    """Whether a pending template has waited long enough that the worker looks absent."""
    if template.status != FaceTemplate.Status.PENDING:
        return False
    if template.reason == enrollment.BROKER_DOWN_REASON:
        return True
    return (now or timezone.now()) - template.queued_at > WAITING_LONG_AFTER


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


@staff_member_required
@never_cache
def template_chip(request: HttpRequest, pk: int) -> FileResponse:
    """The aligned 150x150 face of a ready template, as JPEG."""
    _require(request, "identity.view_facetemplate")
    template = get_object_or_404(FaceTemplate, pk=pk)
    if not template.chip:
        raise Http404("This template has no face image.")
    try:
        stream = template.chip.open("rb")
    except FileNotFoundError as error:
        raise Http404("The face image is missing from storage.") from error
    response = FileResponse(stream, content_type="image/jpeg")
    response["Cache-Control"] = "private, no-store"
    return response


@staff_member_required
@never_cache
def employee_templates(request: HttpRequest, pk: int) -> JsonResponse:
    """The statuses of an employee's templates, polled by the change page while some are pending."""
    _require(request, "identity.view_facetemplate")
    employee = get_object_or_404(Employee, pk=pk)
    now = timezone.now()
    templates = list(employee.templates.order_by("pk"))
    return JsonResponse(
        {
            "pending": sum(t.status == FaceTemplate.Status.PENDING for t in templates),
            "ready": sum(t.status == FaceTemplate.Status.READY for t in templates),
            "rejected": sum(t.status == FaceTemplate.Status.REJECTED for t in templates),
            "waiting_for_worker": any(waits_for_worker(t, now) for t in templates),
            "templates": [{"id": t.pk, "status": t.status} for t in templates],
        }
    )


@staff_member_required
@never_cache
def attempt_frame(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """One frame captured during a verification attempt (404 once purged after the retention period)."""
    _require(request, "identity.view_attemptcapture_image")
    capture = AttemptCapture.objects.filter(attempt_id=pk, index=index).first()
    if capture is None:
        raise Http404("This frame is not kept: captured frames are deleted after the retention period.")
    response = HttpResponse(bytes(capture.image), content_type=capture.content_type)
    response["Cache-Control"] = "private, no-store"
    return response
