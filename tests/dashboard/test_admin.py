"""The admin: edits, deletes and regenerations go through the services; lists stay cheap."""

from __future__ import annotations

import pytest

from access.models import ApiKey
from access.services import api_key_create
from memories.admin import CappedCountPaginator
from memories.models import Memory, Tag
from memories.selectors import memory_query
from users.models import UserSummary
from users.services import user_summary_regenerate

CHANGELIST = "/admin/memories/memory/"


def _change_url(memory: Memory) -> str:
    return f"/admin/memories/memory/{memory.pk}/change/"


def _form(memory: Memory, **changes) -> dict:
    data = {
        "content": memory.content,
        "tags": [tag.pk for tag in memory.tags.all()],
        "metadata": "{}",
        "_save": "Save",
    }
    return {**data, **changes}


def test_changelist_shows_memories_with_tags_and_user(staff_client, make_memories):
    make_memories(6)

    response = staff_client.get(CHANGELIST)

    assert response.status_code == 200
    page = response.content.decode()
    assert "User prefers dark mode in every editor (note 0)" in page
    assert "batch0, preferences, ui" in page
    assert "user_3" in page


def test_changelist_search_and_filters(staff_client, make_memories):
    make_memories(10)

    by_content = staff_client.get(CHANGELIST, {"q": "Lisbon"}).context["cl"].result_list
    by_user = staff_client.get(CHANGELIST, {"q": "user_2"}).context["cl"].result_list
    by_tag = staff_client.get(CHANGELIST, {"tag": "learning"}).context["cl"].result_list
    by_link = staff_client.get(CHANGELIST, {"user_id": "user_4"}).context["cl"].result_list

    assert {m.content for m in by_content} == {
        "User lives in Lisbon and walks to work (note 4)",
        "User lives in Lisbon and walks to work (note 9)",
    }
    assert {m.user_id for m in by_user} == {"user_2"} and len(by_user) == 2
    assert all("learning" in [t.name for t in m.tags.all()] for m in by_tag) and len(by_tag) == 2
    assert {m.user_id for m in by_link} == {"user_4"}


def test_counts_past_the_cap_are_not_taken(staff_client, make_memories, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 10)
    make_memories(25)

    page = staff_client.get(CHANGELIST).content.decode()

    assert "more than 10 memories" in page
    assert (
        "more than 10 memories"
        not in staff_client.get(CHANGELIST, {"q": "Lisbon"}).content.decode()
    )


@pytest.mark.usefixtures("vector_ranking")
def test_editing_content_in_the_admin_re_embeds_and_invalidates_the_summary(
    staff_client, make_memories
):
    memory = make_memories(1)[0]
    user_summary_regenerate(user_id=memory.user_id)

    response = staff_client.post(
        _change_url(memory), _form(memory, content="User adores mountain biking in the Alps")
    )

    assert response.status_code == 302, response.content
    new = memory_query(query="User adores mountain biking in the Alps", k=1, user_id="user_0")
    old = memory_query(query=memory.content, k=1, user_id="user_0")
    assert new[0].memory.pk == memory.pk and new[0].score > 0.99
    assert old[0].score < 0.9
    stored = Memory.objects.defer("embedding").get(pk=memory.pk)
    assert stored.version == 2
    summary = UserSummary.objects.get(user_id=memory.user_id)
    assert summary.invalidated and summary.stale


def test_editing_tags_in_the_admin_uses_the_service(staff_client, make_memories):
    memory = make_memories(1)[0]
    extra = Tag.objects.create(name="travel")

    staff_client.post(_change_url(memory), _form(memory, tags=[extra.pk]))

    stored = Memory.objects.defer("embedding").get(pk=memory.pk)
    assert [t.name for t in stored.tags.all()] == ["travel"]
    assert stored.version == 2


def test_duplicate_content_in_the_admin_is_refused_with_a_message(staff_client, make_memories):
    first, _, _, _, _, sixth = make_memories(6, users=5)  # memories 0 and 5 share user_0
    assert first.user_id == sixth.user_id

    response = staff_client.post(
        _change_url(sixth), _form(sixth, content=first.content), follow=True
    )

    assert "An identical memory already exists for this user" in response.content.decode()
    assert Memory.objects.defer("embedding").get(pk=sixth.pk).content == sixth.content


def test_adding_in_the_admin_uses_the_service(staff_client, db):
    tag = Tag.objects.create(name="food")

    response = staff_client.post(
        "/admin/memories/memory/add/",
        {
            "user_id": "user_9",
            "content": "User loves spicy Thai curry",
            "tags": [tag.pk],
            "metadata": "{}",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content
    memory = Memory.objects.defer("embedding").get(user_id="user_9")
    assert memory.embedding_dim > 0 and memory.primary_sector
    assert [t.name for t in memory.tags.all()] == ["food"]
    assert memory_query(query="spicy Thai curry", k=1, user_id="user_9")[0].memory.pk == memory.pk
    assert UserSummary.objects.filter(user_id="user_9", stale=True).exists()


def test_adding_with_a_bad_user_id_is_a_form_error(staff_client, db):
    response = staff_client.post(
        "/admin/memories/memory/add/",
        {"user_id": "no spaces/here", "content": "x", "metadata": "{}", "_save": "Save"},
    )

    assert response.status_code == 200
    assert "user_id required" in response.content.decode()
    assert not Memory.objects.exists()


def test_deleting_in_the_admin_invalidates_the_summary(staff_client, make_memories):
    first, second = make_memories(2, users=1)
    user_summary_regenerate(user_id="user_0")

    response = staff_client.post(f"/admin/memories/memory/{first.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert list(Memory.objects.values_list("pk", flat=True)) == [second.pk]
    assert UserSummary.objects.get(user_id="user_0").invalidated


def test_bulk_delete_goes_through_the_service(staff_client, make_memories):
    memories = make_memories(4, users=2)
    for user_id in ("user_0", "user_1"):
        user_summary_regenerate(user_id=user_id)

    response = staff_client.post(
        CHANGELIST,
        {
            "action": "delete_selected",
            "_selected_action": [m.pk for m in memories[:3]],
            "post": "yes",
        },
    )

    assert response.status_code == 302
    assert list(Memory.objects.values_list("pk", flat=True)) == [memories[3].pk]
    assert set(UserSummary.objects.filter(invalidated=True).values_list("user_id", flat=True)) == {
        "user_0",
        "user_1",
    }


def test_tag_list_counts_memories(staff_client, make_memories):
    make_memories(10)

    response = staff_client.get("/admin/memories/tag/")

    counts = {tag.name: tag.memory_count for tag in response.context["cl"].result_list}
    assert counts["learning"] == 2
    assert counts["batch0"] == 4
    assert counts["batch1"] == 3


def test_tag_list_sorts_by_count(staff_client, make_memories):
    make_memories(10)

    response = staff_client.get("/admin/memories/tag/", {"o": "-2"})

    assert response.context["cl"].result_list[0].name == "batch0"


def test_summary_list_shows_freshness_and_counts(staff_client, make_memories):
    make_memories(6, users=2)
    user_summary_regenerate(user_id="user_0")

    response = staff_client.get("/admin/users/usersummary/")

    rows = {s.user_id: s for s in response.context["cl"].result_list}
    assert rows["user_0"].memories_now == 3 and rows["user_0"].memory_count == 3
    assert not rows["user_0"].stale and rows["user_1"].stale
    # The list shows the start of the stored text (which memory leads it depends on ids).
    stored = UserSummary.objects.get(user_id="user_0").summary
    assert stored.startswith("The user") and stored[:60] in response.content.decode()


def test_summary_pages_are_read_only(staff_client, make_memories):
    make_memories(1)
    summary = UserSummary.objects.get()

    page = staff_client.get(f"/admin/users/usersummary/{summary.pk}/change/")

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert staff_client.get("/admin/users/usersummary/add/").status_code == 403


def _regenerate(client, summaries) -> object:
    return client.post(
        "/admin/users/usersummary/",
        {"action": "regenerate_summaries", "_selected_action": [s.pk for s in summaries]},
        follow=True,
    )


def test_regenerate_action_enqueues_the_celery_task(staff_client, make_memories, monkeypatch):
    make_memories(3, users=3)
    sent = []
    monkeypatch.setattr("users.admin.regenerate_user_summary.delay", sent.append)
    monkeypatch.setattr("django.conf.settings.CELERY_TASK_ALWAYS_EAGER", False)

    response = _regenerate(staff_client, UserSummary.objects.exclude(user_id="user_1"))

    assert sorted(sent) == ["user_0", "user_2"]
    assert "Queued regeneration of 2 summaries." in response.content.decode()


def test_regenerate_action_rebuilds_summaries_in_eager_mode(staff_client, make_memories):
    make_memories(4, users=2)
    assert not UserSummary.objects.filter(reflection_count__gt=0).exists()

    response = _regenerate(staff_client, UserSummary.objects.all())

    assert "Regenerated 2 summaries." in response.content.decode()
    rebuilt = UserSummary.objects.get(user_id="user_0")
    assert rebuilt.reflection_count == 1 and not rebuilt.stale
    assert "dark mode" in rebuilt.summary


def test_regenerate_action_reports_a_dead_broker(staff_client, make_memories, monkeypatch):
    make_memories(1)

    def refuse(user_id):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr("users.admin.regenerate_user_summary.delay", refuse)

    response = _regenerate(staff_client, UserSummary.objects.all())

    page = response.content.decode()
    assert "Could not enqueue 1 regeneration(s) (user_0): broker down" in page


@pytest.mark.parametrize("path", ["/admin/", "/admin/django_celery_beat/periodictask/"])
def test_other_admin_pages_still_open(staff_client, path):
    assert staff_client.get(path).status_code == 200


def _revoke_in_the_admin(client, key: ApiKey) -> ApiKey:
    client.post(
        "/admin/access/apikey/",
        {"action": "revoke", "_selected_action": [key.pk], "index": 0},
    )
    key.refresh_from_db()
    return key


def test_staff_who_may_only_view_keys_cannot_revoke_them(staff_with):
    key, _ = api_key_create(user_id="alice", name="alice's app")
    client = staff_with("access.view_apikey")

    assert client.get("/admin/access/apikey/").status_code == 200
    assert _revoke_in_the_admin(client, key).revoked_at is None


def test_staff_who_may_change_keys_revoke_them(staff_with):
    key, _ = api_key_create(user_id="alice", name="alice's app")

    client = staff_with("access.view_apikey", "access.change_apikey")

    assert _revoke_in_the_admin(client, key).revoked_at is not None
