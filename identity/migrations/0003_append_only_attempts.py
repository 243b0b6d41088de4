"""Verification attempts are an audit record: the database itself refuses to change or delete one,
whoever asks (the admin, the API, the ORM, or psql). TRUNCATE, which only the owner of the schema
can run, is left alone: tests empty their tables with it."""

from django.db import migrations

FORWARD = """
CREATE FUNCTION identity_attempt_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'verification attempts are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER identity_attempt_append_only
    BEFORE UPDATE OR DELETE ON identity_verificationattempt
    FOR EACH ROW EXECUTE FUNCTION identity_attempt_is_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS identity_attempt_append_only ON identity_verificationattempt;
DROP FUNCTION IF EXISTS identity_attempt_is_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("identity", "0002_kiosks_attempts_attendance")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
