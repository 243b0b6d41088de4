"""Staff-only URLs used by the identity admin pages."""

from django.urls import path

from identity import views

app_name = "identity"

urlpatterns = [
    path("templates/<int:pk>/chip.jpg", views.template_chip, name="template-chip"),
    path("employees/<int:pk>/templates.json", views.employee_templates, name="employee-templates"),
    path("attempts/<int:pk>/frames/<int:index>.jpg", views.attempt_frame, name="attempt-frame"),
]
