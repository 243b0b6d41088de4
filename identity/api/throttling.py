"""Requests per kiosk token or per user, so that one leaked token or runaway script cannot flood the
verify workers or the database; another kiosk or user is not slowed down by it.

Two scopes: "verify" (views with ``throttle_scope = "verify"``: a live check costs a worker's time)
at FRID_API_VERIFY_RATE, and everything else at FRID_API_RATE; requests without credentials are
counted per client address. The rates are read from the settings at each request. Counts live in
the default cache, i.e. in each web process: with two processes a client may get up to twice the
rate, which still stops a flood. A throttled request is answered 429 with Retry-After (and its
words from identity.api.errors); it is not audited as an attempt, or a flood would fill the audit.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from identity import roles

VERIFY_SCOPE = "verify"
DEFAULT_SCOPE = "api"


class PerTokenRateThrottle(SimpleRateThrottle):
    def allow_request(self, request, view) -> bool:
        # The scope depends on the view, so it is chosen here rather than on the class.
        self.scope = getattr(view, "throttle_scope", DEFAULT_SCOPE)
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self) -> str:
        return settings.FRID_API_VERIFY_RATE if self.scope == VERIFY_SCOPE else settings.FRID_API_RATE

    def get_cache_key(self, request, view) -> str:
        kiosk = roles.kiosk_of(request)
        if kiosk is not None:
            caller = f"kiosk-{kiosk.pk}"
        elif request.user and request.user.is_authenticated:
            caller = f"user-{request.user.pk}"  # the same count for the user's token and session
        else:
            caller = f"address-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": caller}



TOO_MANY = "Too many requests from {caller}: at most {rate}. Wait {wait} and try again."
_PERIODS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def too_many_in_words(request, view, wait: float | None) -> str:
    """The 429's message: who sent too many, the rate they are held to, and how long to wait."""
    throttle = PerTokenRateThrottle()
    throttle.scope = getattr(view, "throttle_scope", DEFAULT_SCOPE)
    count, period = throttle.get_rate().split("/")
    if roles.kiosk_of(request) is not None:
        caller = "this kiosk"
    elif request.user and request.user.is_authenticated:
        caller = "this account"
    else:
        caller = "this address"
    seconds = max(1, round(wait or 1))
    return TOO_MANY.format(
        caller=caller, rate=f"{count} per {_PERIODS[period.strip()[0]]}",
        wait=f"{seconds} second{'s' if seconds != 1 else ''}",
    )
