"""Pages: home, the kiosk page (1:N) and personal check-in (1:1). Both verification pages post
camera frames to /api/v1/verify/ from static/identity/verify.js; the page only tells the script
where to post and how (its configuration, through json_script), never any data."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from identity import roles

# The API's paths are the integrators' contract (issue 6), so the script gets them as they are.
VERIFY_URL = "/api/v1/verify/"
SWITCH_URL = "/api/v1/attendance/{event_id}/switch/"
# Long enough to read the answer, short enough that the next person does not see it.
KIOSK_ANSWER_SECONDS = 8


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")


def kiosk(request: HttpRequest) -> HttpResponse:
    """Open to anyone: the kiosk authenticates with its own token, kept in the browser."""
    config = _verify_config(mode="kiosk", clear_after_seconds=KIOSK_ANSWER_SECONDS)
    return render(request, "identity/kiosk.html", {"verify_config": config})


@login_required
@ensure_csrf_cookie  # the script sends the session's CSRF token with each check
def personal_check_in(request: HttpRequest) -> HttpResponse:
    employee = roles.employee_of(request.user)
    if employee is None:
        # Refused like any page a role may not open, but in plain words, with what to do.
        return render(request, "identity/check_in.html", {"employee": None}, status=403)
    config = _verify_config(mode="personal", employee_number=employee.employee_number, clear_after_seconds=0)
    return render(request, "identity/check_in.html", {"employee": employee, "verify_config": config})


def _verify_config(mode: str, employee_number: str = "", clear_after_seconds: int = 0) -> dict:
    return {
        "mode": mode,
        "verifyUrl": VERIFY_URL,
        "switchUrl": SWITCH_URL,
        "employeeNumber": employee_number,
        "clearAfterSeconds": clear_after_seconds,
        # Times are shown as HR's reports show them, whatever the kiosk's own clock is set to.
        "timeZone": settings.FRID_TIME_ZONE,
    }
