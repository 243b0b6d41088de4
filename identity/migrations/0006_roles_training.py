"""HR's new permissions: uploaded photos (rejected ones shown in the admin), model versions
(read-only, activate and roll back), training runs ("train now") and the training schedule.
Written out as they stood then, like 0004; going back removes them from the group."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ADDED = {
    "HR": [
        "identity.view_facetemplate_photo",
        "training.view_modelversion",
        "training.activate_modelversion",
        "training.view_modelversionevent",
        "training.add_trainingrun",
        "training.view_trainingrun",
        "django_celery_beat.view_periodictask",
        "django_celery_beat.change_periodictask",
        "django_celery_beat.view_crontabschedule",
        "django_celery_beat.add_crontabschedule",
        "django_celery_beat.change_crontabschedule",
    ],
}


def _permissions(apps, names):
    Permission = apps.get_model("auth", "Permission")
    for name in names:
        app_label, codename = name.split(".")
        yield Permission.objects.get(content_type__app_label=app_label, codename=codename)


def add_permissions(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    for name, permissions in ADDED.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*_permissions(apps, permissions))


def remove_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name, permissions in ADDED.items():
        group = Group.objects.filter(name=name).first()
        if group is not None:
            group.permissions.remove(*_permissions(apps, permissions))


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0005_duplicates_training_consent_other_embeddings"),
        ("training", "0004_training_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_permissions, remove_permissions)]
