"""Answers to requests the API cannot read, in plain words that say what to do.

DRF's own answers name the problem only ('Unsupported media type "application/json" in request.');
these keep its status codes and headers (Allow, Retry-After) and say what the endpoint takes.
Requests that get as far as the verify view are audited there, whatever is wrong with them
(identity.api.views.Verify); what ends here (a body that is not JSON, a wrong method, too many
requests) stores nothing.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from identity.api import throttling

NOT_JSON = "The request body is not valid JSON ({error}). Send one JSON object, with Content-Type: application/json."
NOT_MULTIPART = "The multipart body cannot be read ({error}). Send the fields and files as multipart/form-data."
WRONG_CONTENT_TYPE = "This endpoint does not take {given}. Send {accepted}."
NO_CONTENT_TYPE = "The request says nothing of its body's type. Send {accepted}."
WRONG_METHOD = "{method} is not allowed here. Use {allowed}."
TOO_MANY_FILES = "The request holds too many files or fields. Send only the fields this endpoint takes."
TOO_BIG = "The request body is too large. Send files as multipart/form-data, each within the upload limit."


def exception_handler(exc, context):
    view, request = context.get("view"), context.get("request")
    if isinstance(exc, (TooManyFilesSent, TooManyFieldsSent)):
        return Response({"detail": TOO_MANY_FILES}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": TOO_BIG}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = drf_exception_handler(exc, context)
    if response is None or view is None or request is None:
        return response
    words = _in_words(exc, view, request)
    if words:
        response.data = {"detail": words}
    return response


def request_problem_in_words(exc, view, request) -> str:
    """What _in_words says of a body that could not be read (the verify view audits it)."""
    return _in_words(exc, view, request) or str(exc)


def _in_words(exc, view, request) -> str:
    if isinstance(exc, (TooManyFilesSent, TooManyFieldsSent)):
        return TOO_MANY_FILES
    if isinstance(exc, RequestDataTooBig):
        return TOO_BIG
    if isinstance(exc, exceptions.ParseError):
        error = str(exc.detail)
        if error.startswith("JSON parse error - "):
            return NOT_JSON.format(error=error.removeprefix("JSON parse error - "))
        if error.startswith("Multipart form parse error - "):
            return NOT_MULTIPART.format(error=error.removeprefix("Multipart form parse error - "))
        return ""
    if isinstance(exc, exceptions.UnsupportedMediaType):
        accepted = _accepted(view)
        given = (request.content_type or "").split(";")[0].strip()
        return WRONG_CONTENT_TYPE.format(given=given, accepted=accepted) if given else NO_CONTENT_TYPE.format(accepted=accepted)
    if isinstance(exc, exceptions.MethodNotAllowed):
        allowed = [method for method in view.allowed_methods if method not in ("OPTIONS", "HEAD")]
        return WRONG_METHOD.format(method=request.method, allowed=" or ".join(allowed))
    if isinstance(exc, exceptions.Throttled):
        return throttling.too_many_in_words(request, view, exc.wait)
    return ""


def _accepted(view) -> str:
    types = [parser.media_type for parser in view.get_parsers()]
    if types[:1] == ["multipart/form-data"]:  # the endpoints that take files
        return "multipart/form-data, each file in its field"
    return " or ".join(types)
