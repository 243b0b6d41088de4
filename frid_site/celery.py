"""The Celery application; tasks live in each app's tasks.py, settings are the CELERY_* ones."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frid_site.settings")

app = Celery("frid_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
