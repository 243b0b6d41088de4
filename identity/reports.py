"""Attendance report pages: HR's and auditors' (everyone, by department, employee and date range,
with a chart and a CSV export) and an employee's own.

Who may see what: the report, its chart and its CSV need the permission to view attendance events
(HR, auditors); an employee sees only their own days, through the Django user linked to them.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import render

from identity import attendance, roles

NOT_LINKED = "Your account is not linked to an employee, so there is no attendance to show. Ask HR to link it."


class PeriodForm(forms.Form):
    """The period of a report, read from ?from=YYYY-MM-DD&to=YYYY-MM-DD (the API's names too)."""

    def __init__(self, data: QueryDict, *args, **kwargs):
        # Without dates, the last days up to today: the form shows them, ready to be changed.
        start, end = attendance.default_period()
        data = data.copy()
        data.setdefault("from", start.isoformat())
        data.setdefault("to", end.isoformat())
        super().__init__(data, *args, **kwargs)
        # "from" is a Python keyword, so these fields cannot be declared as class attributes.
        self.fields = {
            "from": forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"})),
            "to": forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"})),
            **self.fields,
        }

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("from") and cleaned.get("to"):
            try:
                attendance.check_period(cleaned["from"], cleaned["to"])
            except ValueError as problem:
                raise forms.ValidationError(str(problem)) from problem
        return cleaned

    @property
    def start(self) -> date:
        return self.cleaned_data["from"]

    @property
    def end(self) -> date:
        return self.cleaned_data["to"]

    def filters(self) -> dict:
        return {}

    def query_string(self) -> str:
        """The cleaned choices as a query string, for the chart and the CSV of the same report."""
        values = {"from": self.start.isoformat(), "to": self.end.isoformat(), **self.filters()}
        return urlencode({name: value for name, value in values.items() if value})

    def problems(self) -> str:
        return " ".join(message for messages in self.errors.values() for message in messages)


class ReportFilterForm(PeriodForm):
    department = forms.ChoiceField(required=False)
    employee_number = forms.CharField(required=False, max_length=50, label="Employee number")

    def __init__(self, data: QueryDict, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        departments = attendance.report_departments()
        self.fields["department"].choices = [("", "All departments"), *((name, name) for name in departments)]

    def filters(self) -> dict:
        return {
            "department": self.cleaned_data["department"],
            "employee_number": self.cleaned_data["employee_number"].strip(),
        }


def _require_report_permission(request: HttpRequest) -> None:
    if not roles.sees_all_attendance(request.user):
        raise PermissionDenied("Attendance reports are for HR and auditors.")


def _report_form(request: HttpRequest) -> ReportFilterForm:
    _require_report_permission(request)
    return ReportFilterForm(request.GET)


def _private(response: HttpResponse) -> HttpResponse:
    # Attendance is personal data: no shared cache, no copy left in the browser's cache.
    response["Cache-Control"] = "private, no-store"
    return response


def _page_context(form: PeriodForm) -> dict:
    return {
        "form": form,
        "time_zone": settings.TIME_ZONE,
        "late_after": attendance.late_after(),
        "rows": None,
    }


@login_required
def attendance_report(request: HttpRequest) -> HttpResponse:
    form = _report_form(request)
    context = _page_context(form)
    if not form.is_valid():
        return render(request, "identity/attendance_report.html", context, status=400)
    rows = attendance.report_rows(form.start, form.end, **form.filters())
    context.update(
        rows=rows,
        start=form.start,
        end=form.end,
        filters={name: value for name, value in form.filters().items() if value},
        query=form.query_string(),
        people=len({row.employee.pk for row in rows}),
        late_count=sum(row.late for row in rows),
        missing_count=sum(row.missing_check_out for row in rows),
    )
    return _private(render(request, "identity/attendance_report.html", context))


@login_required
def attendance_csv(request: HttpRequest) -> HttpResponse:
    form = _report_form(request)
    if not form.is_valid():
        return HttpResponseBadRequest(form.problems(), content_type="text/plain; charset=utf-8")
    rows = attendance.report_rows(form.start, form.end, **form.filters())
    response = HttpResponse(attendance.rows_as_csv(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="attendance-{form.start}-to-{form.end}.csv"'
    return _private(response)


@login_required
def attendance_chart(request: HttpRequest) -> HttpResponse:
    form = _report_form(request)
    if not form.is_valid():
        return HttpResponseBadRequest(form.problems(), content_type="text/plain; charset=utf-8")
    rows = attendance.report_rows(form.start, form.end, **form.filters())
    return _private(HttpResponse(attendance.presence_chart_png(rows, form.start, form.end), content_type="image/png"))


@login_required
def my_attendance(request: HttpRequest) -> HttpResponse:
    employee = roles.employee_of(request.user)
    if employee is None:
        return render(request, "identity/my_attendance.html", {"not_linked": NOT_LINKED}, status=403)
    form = PeriodForm(request.GET)
    context = {**_page_context(form), "employee": employee}
    if not form.is_valid():
        return render(request, "identity/my_attendance.html", context, status=400)
    rows = attendance.report_rows(form.start, form.end, employee_number=employee.employee_number)
    context.update(
        rows=rows,
        start=form.start,
        end=form.end,
        hours=round(sum(row.hours_present for row in rows), 2),
        late_count=sum(row.late for row in rows),
        missing_count=sum(row.missing_check_out for row in rows),
    )
    return _private(render(request, "identity/my_attendance.html", context))
