from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("booking", "0014_outcomes_appointment_outcome"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="slot",
            index=models.Index(condition=models.Q(("status", "booked")), fields=["start"], name="slot_booked_start"),
        ),
    ]
