from django.db import migrations

# The audit trail is append-only in the database itself, so no code path (a bug, a shell, an
# admin action) can rewrite history. TRUNCATE is still allowed: tests reset tables with it.
FORWARD = """
CREATE FUNCTION booking_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER booking_auditevent_append_only
    BEFORE UPDATE OR DELETE ON booking_auditevent
    FOR EACH ROW EXECUTE FUNCTION booking_auditevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS booking_auditevent_append_only ON booking_auditevent;
DROP FUNCTION IF EXISTS booking_auditevent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("booking", "0001_initial")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
