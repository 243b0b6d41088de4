"""Kiosks authenticate with their own secret token: ``Authorization: Token kiosk_...``."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
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
