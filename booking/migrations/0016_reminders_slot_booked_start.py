from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0015_staff_patient_changes_seen"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="slot",
            index=models.Index(condition=models.Q(("status", "booked")), fields=["start"], name="slot_booked_start"),
        ),
    ]
