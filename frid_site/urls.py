"""URL configuration: the pages people use, the admin, the REST API."""

from django.contrib import admin
from django.urls import include, path

admin.site.site_header = "FRID administration"
admin.site.site_title = "FRID"
admin.site.index_title = "Face re-identification"
# One dash for every empty cell, on every admin page.
admin.site.empty_value_display = "—"
admin.site.site_url = "/"

urlpatterns = [
    path("", include("identity.page_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("identity/", include("identity.urls")),
    path("api/", include("identity.api.urls")),
]
