"""The Content-Security-Policy and Permissions-Policy headers (Django 5.2 has no CSP of its own).

Django's SecurityMiddleware already sends X-Content-Type-Options, Referrer-Policy,
Cross-Origin-Opener-Policy and, behind TLS, Strict-Transport-Security; XFrameOptionsMiddleware
sends X-Frame-Options. This adds what a page may load: only our own files. Scripts come from our
static files (one per page, configuration through json_script, which is data, not a script); the
one inline script left carries the request's nonce (``<script nonce="{{ request.csp_nonce }}">``).
Styles may be inline: Swagger UI and a few style attributes use them, and a style cannot run code.
Camera frames never leave as URLs (getUserMedia gives a stream), photo previews are blob: URLs.

Also here: a limit on request bodies that are not multipart uploads. Django holds form fields to
DATA_UPLOAD_MAX_MEMORY_SIZE, but DRF's JSON and form parsers read the body themselves, whole.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

POLICY = (
    "default-src 'self'",
    "script-src 'self' 'nonce-{nonce}'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",  # X-Frame-Options DENY, for browsers that read CSP
)
# The kiosk, check-in and enrollment pages use this origin's camera; nothing uses the rest.
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # A fresh nonce per response: a script injected into a page cannot know it.
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", "; ".join(POLICY).format(nonce=request.csp_nonce))
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


BODY_TOO_LARGE = (
    "The request body is {size:.1f} MB; bodies up to {limit:.1f} MB are accepted, except for files sent "
    "as multipart/form-data (each photo or frame up to the upload limit). Send less, or send files as files."
)


class BodyLimitMiddleware:
    """Refuse (413) a body other than a multipart upload that is larger than DATA_UPLOAD_MAX_MEMORY_SIZE,
    from its Content-Length, before any of it is read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0  # Django and DRF treat it as no body
        if limit is not None and size > limit and not request.content_type.startswith("multipart/"):
            return JsonResponse({"detail": BODY_TOO_LARGE.format(size=size / 1e6, limit=limit / 1e6)}, status=413)
        return self.get_response(request)
