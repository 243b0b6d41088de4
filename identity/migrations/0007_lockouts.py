"""Lockouts (identity.lockout): the claimed number kept on every attempt, the "locked_out" decision,
and HR's lifts of lockouts, with HR's permission to lift them (auditors may read them). Permissions
written out as they stand now, like 0004 and 0006; going back removes them from the groups.

Adding the column does not rewrite the append-only attempts (PostgreSQL keeps a constant default
in the catalogue), so their trigger is not involved."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

ADDED = {
    "HR": ["identity.view_lockoutlift", "identity.add_lockoutlift"],  # add: lift a lockout
    "Auditor": ["identity.view_lockoutlift"],
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
        ("identity", "0006_roles_training"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="verificationattempt",
            name="claimed_number",
            field=models.CharField(blank=True, db_default="", default="", max_length=50),
        ),
        migrations.AlterField(
            model_name="verificationattempt",
            name="decision",
            field=models.CharField(choices=[("verified", "verified"), ("not_recognised", "not recognised"), ("rejected", "rejected (unusable frames)"), ("refused", "refused (bad request)"), ("busy", "verification busy"), ("locked_out", "locked out (too many failures)")], db_index=True, max_length=20),
        ),
        migrations.CreateModel(
            name="LockoutLift",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("subject", models.CharField(choices=[("employee", "claimed employee number"), ("account", "account"), ("kiosk", "kiosk")], max_length=10)),
                ("key", models.CharField(max_length=50)),
                ("lifted_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("locked_until", models.DateTimeField(help_text="When the lockout would have ended by itself.")),
                ("failures", models.PositiveSmallIntegerField(help_text="Failed attempts that caused it.")),
                ("lifted_by", models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "verbose_name": "lockout",
                "verbose_name_plural": "lockouts",
                "ordering": ["-lifted_at"],
            },
        ),
        migrations.RunPython(add_permissions, remove_permissions),
    ]
