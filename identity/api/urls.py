"""The REST API: /api/v1/ (the integrators' contract), /api/schema/ (OpenAPI 3), /api/docs/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from identity.api import views

urlpatterns = [
    path("v1/employees/", views.EmployeeCreate.as_view(), name="api-employees"),
    path("v1/employees/<str:employee_number>/photos/", views.EmployeePhotos.as_view(), name="api-employee-photos"),
    path("v1/templates/<int:pk>/", views.TemplateDetail.as_view(), name="api-template"),
    path("v1/verify/", views.Verify.as_view(), name="api-verify"),
    path("v1/verify/challenge/", views.VerifyChallenge.as_view(), name="api-verify-challenge"),
    path("v1/attendance/", views.AttendanceList.as_view(), name="api-attendance"),
    path("v1/attendance/<int:event_id>/switch/", views.SwitchDirection.as_view(), name="api-attendance-switch"),
    path("v1/attempts/", views.AttemptList.as_view(), name="api-attempts"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (docs/?script=), not inline: the
    # Content-Security-Policy (frid_site.security) runs no inline script without a nonce.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
