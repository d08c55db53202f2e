"""Words of a text as search sees them: one tokeniser, one stop-word list, one stemmer.

The only such list: the lexical index, the synthetic embeddings and bench's BM25 baseline
all read words through here."""

from __future__ import annotations

import functools
import re
from collections import Counter

import snowballstemmer

# Letters and digits of any script; "dark-mode" is two words.
_WORD = re.compile(r"[^\W_]+")
# Longest term kept: longer "words" (hashes, base64, run-on URLs) never match a question.
MAX_TERM_CHARS = 64
# Distinct terms of one query that count; the rest of a very long query is ignored.
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
def stem(word: str) -> str:
    return _stemmer.stemWord(word)


def words(text: str) -> list[str]:
    """The text's lower-cased words, stop words left out."""
    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def terms(text: str) -> Counter[str]:
    """How often each stemmed term occurs in `text`: what the lexical index stores."""
    return Counter(stem(w)[:MAX_TERM_CHARS] for w in words(text))


def query_terms(query: str) -> list[str]:
    """The distinct stemmed terms of a query, in order, at most MAX_QUERY_TERMS."""
    seen = dict.fromkeys(stem(w)[:MAX_TERM_CHARS] for w in words(query))
    return list(seen)[:MAX_QUERY_TERMS]
