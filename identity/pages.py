"""Pages: home, the kiosk page (1:N) and personal check-in (1:1). Both verification pages post
camera frames to /api/v1/verify/ from static/identity/verify.js; the page only tells the script
where to post and how (its configuration, through json_script), never any data.

Where each person may go (``destinations_for``) is decided once, here: the home page's cards and
every page's header (the ``destinations`` template tag) show the same choices."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from identity import roles

# The API's paths are the integrators' contract (issue 6), so the script gets them as they are.
VERIFY_URL = "/api/v1/verify/"
CHALLENGE_URL = "/api/v1/verify/challenge/"
SWITCH_URL = "/api/v1/attendance/{event_id}/switch/"
# Long enough to read the answer, short enough that the next person does not see it.
KIOSK_ANSWER_SECONDS = 8


# Who registers kiosks is who sets a kiosk's screen up (pasting its token once).
KIOSK_SETUP_PERMISSION = "identity.add_kiosk"


@dataclass(frozen=True)
class Destination:
    """A page the home page and the header lead to."""

    title: str
    url_name: str
    description: str
    in_header: bool = True  # "Log in" has its own place in the header

    @property
    def url(self) -> str:
        return reverse(self.url_name)


KIOSK = Destination("Kiosk", "kiosk", "The shared screen at an entrance: people check in by looking at it.")
LOG_IN = Destination("Log in", "login", "To check in at your own computer and see your attendance.", in_header=False)
CHECK_IN = Destination("Check in", "check-in", "Check in or out at your own computer, with its camera.")
MY_ATTENDANCE = Destination("My attendance", "my-attendance", "Your days: first in, last out, hours present.")
ADMIN = Destination("Admin", "admin:index", "Employees and their photos, bulk imports, kiosks, the audit.")
REPORTS = Destination("Attendance reports", "attendance-report", "Everyone's days, by department; CSV.")


def destinations_for(user) -> list[Destination]:
    """Where this person may go: a visitor (a kiosk's screen too) the kiosk page and logging in;
    an employee their check-in and attendance; HR and auditors the reports; staff the admin; who
    registers kiosks the kiosk page. Links a person could only be refused at are left out."""
    if not user.is_authenticated:
        return [KIOSK, LOG_IN]
    chosen = []
    if roles.employee_of(user) is not None:
        chosen += [CHECK_IN, MY_ATTENDANCE]
    if user.is_staff:
        chosen.append(ADMIN)
    if roles.sees_all_attendance(user):
        chosen.append(REPORTS)
    if user.has_perm(KIOSK_SETUP_PERMISSION):
        chosen.append(KIOSK)
    return chosen


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html", {"destinations": destinations_for(request.user)})


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
        "challengeUrl": CHALLENGE_URL,
        "switchUrl": SWITCH_URL,
        "employeeNumber": employee_number,
        "clearAfterSeconds": clear_after_seconds,
        # Times are shown as HR's reports show them, whatever the kiosk's own clock is set to.
        "timeZone": settings.FRID_TIME_ZONE,
    }
