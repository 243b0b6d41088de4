"""URL configuration: the pages people use, the admin, the REST API."""

from django.contrib import admin
from django.urls import include, path

from frid_site import health

admin.site.site_header = "FRID administration"
admin.site.site_title = "FRID"
admin.site.index_title = "Face re-identification"
# One dash for every empty cell, on every admin page.
admin.site.empty_value_display = "—"
admin.site.site_url = "/"

urlpatterns = [
    # For load balancers and Prometheus (frid_site/health.py): no login, exempt from the HTTPS redirect.
    path("health/", health.health, name="health"),
    path("ready/", health.ready, name="ready"),
    path("metrics", health.metrics, name="metrics"),
    path("", include("identity.page_urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("identity/", include("identity.urls")),
    path("api/", include("identity.api.urls")),
]
