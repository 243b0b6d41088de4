"""URL configuration: the admin and the apps' own pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("identity/", include("identity.urls")),
]
