"""URL configuration: the admin for now; the apps add theirs as they come."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
