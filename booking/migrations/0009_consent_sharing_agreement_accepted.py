"""Sharing needs the partner's consent: who offered, accepted and ended an agreement.

Agreements made before this migration were in force the moment the host made them (there was
no acceptance step), so they are marked accepted at their creation time: removing them would
stop links already sent and patients already booking. Nobody is recorded as having accepted
them (`accepted_by` stays empty), which the audit trail shows as it was: no consent asked.
A partner that didn't want one can now end it from its own sharing page.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def existing_agreements_count_as_accepted(apps, schema_editor):
    SharingAgreement = apps.get_model("booking", "SharingAgreement")
    SharingAgreement.objects.filter(accepted_at__isnull=True).update(accepted_at=models.F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0008_signin_audit_sign_in_actions"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="sharingagreement",
            name="accepted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="sharingagreement",
            name="accepted_by",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="sharingagreement",
            name="ended_by",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="sharingagreement",
            name="offered_by",
            field=models.ForeignKey(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="sharingagreement",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("accepted_at__isnull", True), ("accepted_by__isnull", True)),
                    ("accepted_at__isnull", False),
                    _connector="OR",
                ),
                name="sharing_agreement_accepted_by_only_when_accepted",
                violation_error_message="An agreement accepted by someone has an acceptance time.",
            ),
        ),
        migrations.RunPython(existing_agreements_count_as_accepted, migrations.RunPython.noop),
    ]
