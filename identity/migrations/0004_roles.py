"""The HR and Auditor groups with their permissions (identity.roles describes the roles).

The lists are written out here as they stood when the groups were made, so that this migration
means the same thing whatever identity.roles later becomes; a later change of roles is a later
migration. Going back removes the two groups.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_PERMISSIONS = {
    "HR": [
        "identity.add_employee",
        "identity.change_employee",
        "identity.view_employee",
        "identity.add_facetemplate",
        "identity.change_facetemplate",
        "identity.view_facetemplate",
        "identity.add_bulkimport",
        "identity.change_bulkimport",
        "identity.view_bulkimport",
        "identity.add_kiosk",
        "identity.change_kiosk",
        "identity.view_kiosk",
        "identity.view_verificationattempt",
        "identity.view_attendanceevent",
    ],
    "Auditor": [
        "identity.view_verificationattempt",
        "identity.view_attendanceevent",
    ],
}


def create_groups(apps, schema_editor):
    # Django creates permissions after all migrations have run (post_migrate); on a fresh
    # database they do not exist yet, so make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for permission in permissions:
            app_label, codename = permission.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUP_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0003_append_only_attempts"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
