"""Summary scheduling without a broker: the sweep, regenerate-all and the beat schedules."""

from __future__ import annotations

from django_celery_beat.models import PeriodicTask

from users.models import UserSummary
from users.services import user_summaries_refresh_stale


def test_sweep_regenerates_stale_summaries_once(add, settings, django_capture_on_commit_callbacks):
    settings.OM_USER_SUMMARY_INTERVAL = 30
    for content, user_id in [("Likes tea", "u1"), ("Likes jazz", "u1"), ("Owns a bike", "u2")]:
        with django_capture_on_commit_callbacks(execute=True):
            add(content, user_id=user_id)  # u1's second add is below the interval: stale
    assert UserSummary.objects.get(user_id="u1").stale is True
    assert UserSummary.objects.get(user_id="u2").stale is False

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert user_summaries_refresh_stale() == 1

    assert len(callbacks) == 1
    summary = UserSummary.objects.get(user_id="u1")
    assert (summary.reflection_count, summary.stale, summary.pending_memories) == (2, False, 0)
    assert "jazz" in summary.summary
    with django_capture_on_commit_callbacks(execute=True):
        assert user_summaries_refresh_stale() == 0


def test_sweep_skips_summaries_already_queued(add, django_capture_on_commit_callbacks):
    add("Likes tea", user_id="u1")  # on_commit not run: a regeneration is queued, pending

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert user_summaries_refresh_stale() == 0
    assert callbacks == []


def test_regenerate_all_enqueues_every_user(add, api, django_capture_on_commit_callbacks):
    for user in ("a", "b", "c"):
        add(f"Fact about {user}", user_id=user)
    add("Shared pool fact")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/users/summaries/regenerate-all")

    assert response.json() == {"ok": True, "queued": 3}
    assert sorted(UserSummary.objects.values_list("user_id", "reflection_count")) == [
        ("a", 1),
        ("b", 1),
        ("c", 1),
    ]


def test_beat_schedules_are_in_the_database(db):
    tasks = dict(PeriodicTask.objects.values_list("task", "interval__every"))

    assert tasks["users.tasks.refresh_stale_summaries"] == 15
    assert tasks["memories.tasks.decay_salience"] == 60
