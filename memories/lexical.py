"""The lexical-search interface: query terms, term coverage, and full-text candidate search
(PostgreSQL full-text search, SQLite FTS5)."""

from __future__ import annotations

import functools
import re
import uuid
from typing import Protocol

import snowballstemmer
from django.db import connection
from django.db.models import BooleanField, F, FloatField
from django.db.models.expressions import RawSQL

from memories.models import MemoryQuerySet
from openmemory.scope import ALL_USERS

# Letters and digits of any script; "dark-mode" is two terms, as it is for both databases.
_WORD = re.compile(r"[^\W_]+")
MAX_QUERY_TERMS = 32
STOPWORDS = frozenset(
    (
        "a about above after again against all am an and any are aren as at be because been "
        "before being below between both but by can could did didn do does doesn doing don down "
        "during each few for from further had has have having he her here hers herself him "
        "himself his how i if in into is isn it its itself just let me more most my myself no "
        "nor not now of off on once only or other ought our ours ourselves out over own same "
        "she should so some such than that the their theirs them themselves then there these "
        "they this those through to too under until up very was wasn we were weren what when "
        "where which while who whom why will with won would you your yours yourself yourselves "
        "s t ll ve re m d user users"
    ).split()
)

_stemmer = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def words(text: str) -> list[str]:
    """The text's lower-cased words, stop words left out."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def stems(text: str) -> set[str]:
    return {_stem(w) for w in words(text)}


def query_words(query: str) -> list[str]:
    """The distinct words of a query worth matching, in order, at most MAX_QUERY_TERMS."""
    seen: dict[str, str] = {}
    for word in words(query):
        seen.setdefault(_stem(word), word)
    return list(seen.values())[:MAX_QUERY_TERMS]


def coverage(query_stems: set[str], content: str) -> float:
    """The fraction of the query's terms that `content` contains (after stemming), in [0, 1].

    An absolute measure: it does not depend on the other memories of the scope, nor on
    anyone else's, so the same memory and query score the same on any database and for any
    tenant mix."""
    if not query_stems:
        return 0.0
    return len(query_stems & stems(content)) / len(query_stems)


def names_in(text: str, *, anywhere: bool = False) -> set[str]:
    """Capitalised words of `text` (names of people, pets, places...), leaving out stop
    words and, unless `anywhere`, sentence-initial words, whose capital says nothing."""
    found = set()
    previous_end = 0
    for index, match in enumerate(_WORD.finditer(text)):
        word = match.group()
        gap = text[previous_end : match.start()].rstrip(" \t\r\n\"'\u201c\u2018([")
        previous_end = match.end()
        if not word[0].isupper() or word.lower() in STOPWORDS:
            continue
        if not anywhere and (index == 0 or gap.endswith((".", "!", "?"))):
            continue
        found.add(word)
    return found


class LexicalBackend(Protocol):
    def search(
        self,
        scope: MemoryQuerySet,
        terms: list[str],
        limit: int,
        *,
        user_id: str | object | None = ALL_USERS,
    ) -> list[str]:
        """Ids of up to `limit` memories of `scope` containing any of `terms`, best first.
        `user_id` names the user `scope` is restricted to, if any: a hint for the index,
        never a replacement for the scope's own filter."""
        ...


class PostgresFullText:
    """`to_tsvector('english', content)` behind a GIN expression index (migration 0004);
    the expression here must stay identical to the index's for the index to be used."""

    TSVECTOR = "to_tsvector('english'::regconfig, content)"

    def search(
        self,
        scope: MemoryQuerySet,
        terms: list[str],
        limit: int,
        *,
        user_id: str | object | None = ALL_USERS,
    ) -> list[str]:
        if not terms:
            return []
        # Terms are letters and digits only (see _WORD), so they are safe tsquery operands.
        tsquery = "to_tsquery('english'::regconfig, %s)"
        disjunction = " | ".join(terms)
        matches = RawSQL(
            f"{self.TSVECTOR} @@ {tsquery}", (disjunction,), output_field=BooleanField()
        )
        rank = RawSQL(f"ts_rank({self.TSVECTOR}, {tsquery})", (disjunction,), FloatField())
        rows = (
            scope.filter(matches)
            .annotate(lexical_rank=rank)
            .order_by(F("lexical_rank").desc(), "id")
            .values_list("id", flat=True)[:limit]
        )
        return [str(pk) for pk in rows]


class SqliteFts5:
    """An FTS5 table (porter stemming) kept in step with memories_memory by triggers
    (migration 0004), keyed through memories_memory_fts_key because a UUID-keyed table's
    own rowids may change on VACUUM."""

    def search(
        self,
        scope: MemoryQuerySet,
        terms: list[str],
        limit: int,
        *,
        user_id: str | object | None = ALL_USERS,
    ) -> list[str]:
        if not terms:
            return []
        match = "content : (" + " OR ".join(f'"{term}"' for term in terms) + ")"
        if user_id is not ALL_USERS:
            # The user's own token (see migration 0004): the index then reads that user's
            # postings only, instead of every user's rows that contain a common word.
            match = f'owner : "{_owner_token(user_id)}" AND {match}'
        scope_sql, scope_params = scope.order_by().values("id").query.sql_with_params()
        # bm25's document frequencies are table-wide (every user's rows); they only choose
        # which `limit` matches become candidates, never a memory's score (see coverage()).
        sql = (
            "SELECT k.memory_id FROM memories_memory_fts f "
            "JOIN memories_memory_fts_key k ON k.id = f.rowid "
            f"WHERE memories_memory_fts MATCH %s AND k.memory_id IN ({scope_sql}) "
            "ORDER BY bm25(memories_memory_fts, 0.0, 1.0), k.memory_id LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, (match, *scope_params, limit))
            # Django stores UUIDs on SQLite as 32 hex digits; everything else uses str(UUID).
            return [str(uuid.UUID(row[0])) for row in cursor.fetchall()]


def _owner_token(user_id: str | None) -> str:
    # Must match migration 0004's OWNER expression: SQLite's hex() of the UTF-8 text.
    return "u" + ("" if user_id is None else user_id.encode().hex()) + "0"


@functools.cache
def get_lexical_backend() -> LexicalBackend:
    return PostgresFullText() if connection.vendor == "postgresql" else SqliteFts5()
