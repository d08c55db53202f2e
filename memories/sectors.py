"""OpenMemory's five memory sectors and the classifier that assigns them."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Sector:
    name: str
    description: str
    decay_lambda: float
    weight: float
    patterns: tuple[str, ...]


# Decay rates and descriptions follow upstream OpenMemory so clients see familiar values.
SECTORS: dict[str, Sector] = {
    s.name: s
    for s in (
        Sector(
            "episodic",
            "Event memories - temporal data",
            0.015,
            1.2,
            (
                r"\b(yesterday|today|tonight|tomorrow|last (week|month|year|night)|this morning)\b",
                r"\b(went|visited|attended|met|happened|remember when|on (monday|tuesday|"
                r"wednesday|thursday|friday|saturday|sunday))\b",
                r"\b(completed|finished|started|joined|bought|moved|traveled|travelled)\b",
                r"\b(session|meeting|trip|event|appointment)\b",
            ),
        ),
        Sector(
            "semantic",
            "Facts & preferences - factual data",
            0.005,
            1.0,
            (
                r"\b(prefers?|preference|likes?|dislikes?|favou?rite|is a|are|has|uses?)\b",
                r"\b(fact|definition|means|known as|works (at|as)|lives in|born)\b",
            ),
        ),
        Sector(
            "procedural",
            "Habits, triggers - action patterns",
            0.008,
            1.1,
            (
                r"\b(how to|steps?|first|then|finally|process|procedure|install|run|configure)\b",
                r"\b(always|usually|every (day|morning|week)|habit|routine|workflow)\b",
            ),
        ),
        Sector(
            "emotional",
            "Sentiment states - tone analysis",
            0.02,
            1.3,
            (
                r"\b(feel|feels|felt|feeling|love|loves|hate|hates|angry|happy|sad|excited)\b",
                r"\b(frustrated|anxious|worried|afraid|proud|upset|stressed|delighted|!{2,})\b",
            ),
        ),
        Sector(
            "reflective",
            "Meta memory & logs - audit trail",
            0.001,
            0.8,
            (
                r"\b(realized|realised|learned|learnt|insight|reflect|reflection|lesson)\b",
                r"\b(pattern|tends to|in hindsight|looking back|noticed that|goal)\b",
            ),
        ),
    )
}
SECTOR_NAMES: tuple[str, ...] = tuple(SECTORS)
DEFAULT_SECTOR = "semantic"

_COMPILED = {
    name: [re.compile(p, re.IGNORECASE) for p in sector.patterns]
    for name, sector in SECTORS.items()
}


@dataclass(frozen=True)
class Classification:
    primary: str
    sectors: list[str]


def classify(content: str, metadata: dict | None = None) -> Classification:
    """Primary sector plus every sector the text shows signs of; `metadata.sector` overrides."""
    scores: dict[str, int] = {}
    for name, patterns in _COMPILED.items():
        hits = sum(len(p.findall(content)) for p in patterns)
        if hits:
            scores[name] = hits
    override = (metadata or {}).get("sector")
    if isinstance(override, str) and override in SECTORS:
        primary = override
    elif scores:
        # Ties resolve by the sector order above, so the result is deterministic.
        primary = max(SECTOR_NAMES, key=lambda n: (scores.get(n, 0), -SECTOR_NAMES.index(n)))
    else:
        primary = DEFAULT_SECTOR
    others = sorted((n for n in scores if n != primary), key=lambda n: (-scores[n], n))
    return Classification(primary=primary, sectors=[primary, *others])
