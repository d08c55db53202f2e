"""Creates the periodic tasks beat runs (django-celery-beat's database scheduler), so that
operators can change or pause them in the admin; later deploys never overwrite their edits."""

from django.db import migrations

SCHEDULES = [
    # (name, task, every N minutes)
    ("refresh stale user summaries", "users.tasks.refresh_stale_summaries", 15),
    ("decay memory salience", "memories.tasks.decay_salience", 60),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minutes in SCHEDULES:
        every, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every})


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, _, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0002_summary_provider"),
        ("memories", "0003_memory_decayed_at"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
