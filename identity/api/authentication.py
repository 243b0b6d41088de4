"""Kiosks authenticate with their own secret token: ``Authorization: Token kiosk_...``."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from identity.models import Kiosk


class KioskTokenAuthentication(authentication.BaseAuthentication):
    """A kiosk's token gives ``request.auth`` = the Kiosk (and an anonymous user); other tokens are
    left to DRF's TokenAuthentication. A disabled kiosk is authenticated too, so that the verify
    view can refuse it with a clear message and audit the refusal; every other endpoint requires
    a user and so refuses kiosks anyway."""

    keyword = "Token"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].decode(errors="replace") != self.keyword:
            return None
        token = parts[1].decode(errors="replace")
        if not token.startswith(Kiosk.TOKEN_PREFIX):
            return None
        kiosk = Kiosk.objects.for_token(token)
        if kiosk is None:
            raise exceptions.AuthenticationFailed("Unknown kiosk token. Register the kiosk again in the admin.")
        return AnonymousUser(), kiosk

    def authenticate_header(self, request):
        return self.keyword


class KioskTokenScheme(OpenApiAuthenticationExtension):
    """The kiosk token in the OpenAPI schema (a scheme unknown to drf-spectacular is a warning)."""

    target_class = KioskTokenAuthentication
    name = "kioskToken"

    def get_security_requirement(self, auto_schema):
        # Listed only on the endpoints whose permissions let kiosks in (kiosks_allowed).
        if any(getattr(permission, "kiosks_allowed", False) for permission in auto_schema.view.get_permissions()):
            return super().get_security_requirement(auto_schema)
        return None

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'A kiosk\'s secret token, shown once when it was registered: "Token kiosk_...".',
        }


CSRF_REFUSED = (
    "This request uses your login session but carries no valid CSRF token ({reason}), so it may have "
    "come from another site and is refused. Reload the page and try again; a program calling the API "
    "sends \"Authorization: Token ...\" instead of a session."
)


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication (the pages' fetch calls), refusing an unsafe request without the
    CSRF token in plain words; tokens in the Authorization header need none (no site can forge them)."""

    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as error:
            reason = str(error.detail).removeprefix("CSRF Failed: ").rstrip(".")
            raise exceptions.PermissionDenied(CSRF_REFUSED.format(reason=reason)) from error


class SessionCsrfScheme(SessionScheme):
    """The session in the OpenAPI schema, as drf-spectacular describes DRF's own."""

    target_class = SessionAuthentication
