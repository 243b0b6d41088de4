"""The training schedule: one django-celery-beat row, "every Sunday 02:00" in FRID_TIME_ZONE,
created disabled. HR enables it (or changes when it runs) in the admin's Periodic tasks, without
a deploy; "train now" on the training runs page needs no schedule at all."""

from django.conf import settings
from django.db import migrations

SCHEDULE_NAME = "Fine-tune the network on the organisation's faces"
TASK = "training.tasks.train_on_schedule"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="0", day_of_month="*", month_of_year="*",
        timezone=settings.FRID_TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "task": TASK,
            "crontab": crontab,
            "enabled": False,
            "description": "Queues a training run (TrainingRun). Enable it to fine-tune every week; a run "
                           "that does not pass the gate changes nothing.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0003_activate_permission"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
