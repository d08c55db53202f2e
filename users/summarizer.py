"""Builds a user's profile summary from their memories (plain extractive first version)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings

from memories.models import Memory

_SPACE = re.compile(r"\s+")
_LEAD_USER = re.compile(r"^(the )?user\s+", re.IGNORECASE)
MAX_SOURCE_MEMORIES = 200


@dataclass(frozen=True)
class Summary:
    text: str
    memory_count: int  # the user's memories when the text was built
    provider: str  # the summarizer that wrote the text
    fallback_reason: str = ""  # why the configured LLM was not used, if it was not


def summarize(user_id: str) -> Summary:
    """The user's summary from their current memories.

    Most salient, then most recently seen memories first; each becomes one sentence about
    "the user", repeats dropped, until OM_SUMMARY_MAX_LENGTH words are used.
    """
    memories = Memory.objects.for_user(user_id)
    total = memories.count()
    rows = memories.order_by("-salience", "-last_seen_at", "id").values_list("content", flat=True)
    budget = settings.OM_SUMMARY_MAX_LENGTH
    sentences: list[str] = []
    seen: set[str] = set()
    used = 0
    for content in rows[:MAX_SOURCE_MEMORIES]:
        sentence = _as_sentence(content)
        key = sentence.casefold()
        if key in seen:
            continue
        words = len(sentence.split())
        if used + words > budget:
            if not sentences:
                sentences.append(" ".join(sentence.split()[:budget]).rstrip(".") + "...")
            break
        seen.add(key)
        sentences.append(sentence)
        used += words
    return Summary(text=" ".join(sentences), memory_count=total, provider="extractive")


def _as_sentence(content: str) -> str:
    text = _SPACE.sub(" ", content).strip()
    if not text:
        return ""
    # "User prefers X" reads as "The user prefers X"; anything else is kept as written.
    text = _LEAD_USER.sub("The user ", text)
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."
