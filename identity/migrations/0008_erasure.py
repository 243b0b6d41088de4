"""Erasure (identity.erasure): the record of each erasure, and the one change an attempt may still
undergo. An erased employee's attempts stay as an audit tombstone, but without biometrics: the
trigger of migration 0003 now lets through exactly one UPDATE, the redaction, and nothing else.

A redaction sets ``redacted_at`` on an attempt that had none, clears ``distance`` and
``second_distance`` (NULL) and ``quality`` (the empty list), and leaves every other column as it
was, whichever columns later migrations add (the comparison is of the whole row, as jsonb, less
those four). DELETE stays refused, and so does a second redaction (redacted_at is set once).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

REDACTABLE = "ARRAY['redacted_at', 'distance', 'second_distance', 'quality']"

FORWARD = f"""
CREATE OR REPLACE FUNCTION identity_attempt_is_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.redacted_at IS NULL AND NEW.redacted_at IS NOT NULL
       AND NEW.distance IS NULL AND NEW.second_distance IS NULL AND NEW.quality = '[]'::jsonb
       AND (to_jsonb(NEW) - {REDACTABLE}) = (to_jsonb(OLD) - {REDACTABLE})
    THEN
        RETURN NEW;  -- the redaction of an erasure: biometric readings cleared, nothing else changed
    END IF;
    RAISE EXCEPTION 'verification attempts are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

# Migration 0003's function, as it was.
BACKWARD = """
CREATE OR REPLACE FUNCTION identity_attempt_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'verification attempts are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0007_lockouts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="verificationattempt",
            name="redacted_at",
            field=models.DateTimeField(
                blank=True, null=True, help_text="When an erasure removed this attempt's biometric readings."
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.CreateModel(
            name="Erasure",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("employee_number", models.CharField(db_index=True, max_length=50)),
                ("erased_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("erased_by_name", models.CharField(
                    blank=True, help_text="The account's name at the time.", max_length=150)),
                ("reason", models.CharField(blank=True, max_length=200)),
                ("removed", models.JSONField(default=dict, help_text="What was removed, counted.")),
                ("file_names", models.JSONField(default=list, help_text="The storage names of the files deleted.")),
                ("file_digests", models.JSONField(default=list, help_text="SHA-256 of each file and frame deleted.")),
                ("embedding_digests", models.JSONField(default=list, help_text="SHA-256 of each embedding deleted.")),
                ("employee", models.ForeignKey(
                    blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING,
                    related_name="+", to="identity.employee")),
                ("erased_by", models.ForeignKey(
                    blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING,
                    related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"verbose_name": "biometric erasure", "ordering": ["-erased_at"]},
        ),
    ]
