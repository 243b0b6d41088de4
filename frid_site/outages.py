"""The database not answering (restarting, unreachable): a 503 that says so, never a 500.

While PostgreSQL restarts, every request that needs it fails with OperationalError or
InterfaceError. Those are not FRID's bugs, and the person at the kiosk or in the admin needs to
know two things: nothing was recorded, and trying again shortly will work. Django's persistent
connections are health-checked at the start of each request (CONN_HEALTH_CHECKS), so the first
request after the server is back opens a new connection: no process needs restarting.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
DATABASE_DOWN = (
    "FRID's database is not answering right now (it may be restarting), so nothing was recorded. "
    "Try again in a minute; if this lasts, ask IT to check the database server."
)


class DatabaseOutageMiddleware:
    """Answer 503 with DATABASE_DOWN (JSON for the API, a page otherwise) when the database fails."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        # The error's text names the server and its socket, not a person: safe to log.
        logger.warning("The database is not answering (%s %s): %s", request.method, request.path,
                       str(exception).strip().splitlines()[0] if str(exception).strip() else type(exception).__name__)
        return database_down_response(request)


def database_down_response(request) -> HttpResponse:
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        response = JsonResponse({"detail": DATABASE_DOWN}, status=503)
    else:
        # Rendered without a context: a context processor could need the database too.
        response = HttpResponse(render_to_string("database_down.html", {"message": DATABASE_DOWN}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
