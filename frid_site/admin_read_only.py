"""ReadOnlyAdminMixin: the one place an admin page says "nobody adds, changes or deletes these here".

Several of FRID's records are made only by FRID itself and must never be typed in, edited or removed
through the admin: the audit of verification attempts (the database refuses changes anyway), the
erasure records, lockout lifts, model versions and their history, training runs. Each of those
admins used to repeat the same three has_*_permission methods returning False; they now inherit
them from here, so that "read-only" means the same everywhere and a new record of that kind gets it
by naming the mixin. Viewing is left to Django's usual view permission (or to the admin's own
has_view_permission).

An admin whose rule differs keeps that difference written out in its own class, after the mixin:
e.g. training runs may be deleted by superusers (TrainingRunAdmin.has_delete_permission). Such an
override that wants Django's own answer must call admin.ModelAdmin's method by name: super() here
answers False.

The signatures take obj=None so that the mixin serves ModelAdmin (has_add_permission(request)) and
InlineModelAdmin (has_add_permission(request, obj)) alike. This module imports nothing of
identity or training: their admin modules import it.
"""

from __future__ import annotations

from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """No add, change or delete in the admin, for anyone, superusers included. Put it before
    admin.ModelAdmin (or an inline class) in the bases."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
