"""LoCoMo summary coverage through the public API: how many of the reference facts about each
speaker the server's summary states, beside a "first N memories" baseline of the same length.

One user per conversation speaker; that user's memories are the speaker's own turns, in
conversation order, content "[<session date_time>] <speaker>: <text>" as in the retrieval
protocol of ../shared/data/README.md, added one at a time with POST /memory/add. Then, per
user, POST /users/{id}/summary/regenerate (timed) and GET /users/{id}/summary.

The reference is LoCoMo's `observation` field: the facts about that speaker, every session.
A fact counts as covered when some sentence of the summary has cosine similarity >= t with it
under all-MiniLM-L6-v2 (the server's `local` model), for several thresholds t; the mean best
similarity of the facts is printed too. Coverage is the share of all facts (micro average)
and the mean of the per-user shares (macro). Both sides are compared with the person's name
read as "the user", and again subject-blind (without "the user", "I", "they", "my"...): the
model rates "The user adopted a dog" closer to "Caroline adopted a dog" than "I adopted a
dog", so the second table shows what is said, whatever the grammatical person.

Baseline "first N": the user's earliest memories' texts (without the protocol's date and
speaker prefix, which would only spend words), whole memories while they fit in
OM_SUMMARY_MAX_LENGTH words: what a summary that just quotes the start of the history gives.

    .venv/bin/python bench/locomo_summaries.py                      # fresh SQLite server
    .venv/bin/python bench/locomo_summaries.py --database postgres  # fresh PostgreSQL database
    .venv/bin/python bench/locomo_summaries.py --base-url http://127.0.0.1:8080 --api-key KEY
    .venv/bin/python bench/locomo_summaries.py --summarizer llm     # OM_LLM_* from the env

With --summarizer llm the started server uses OM_SUMMARIZER=llm and the OM_LLM_* settings of
this environment; the script first checks that the endpoint answers and stops if it does not
(the server would silently fall back to the extractive text). The data (CC BY-NC 4.0) is read
from ../shared/data/ at run time and never copied here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from locomo import ROOT, Api, add_server_arguments, serving

THRESHOLDS = (0.5, 0.6, 0.7)
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+")


@dataclass
class Speaker:
    sample_id: str
    name: str
    turns: list[str] = field(default_factory=list)  # memory contents, in conversation order
    texts: list[str] = field(default_factory=list)  # the same turns without the prefix
    facts: list[str] = field(default_factory=list)  # the reference: LoCoMo observations


def load(path: Path) -> list[Speaker]:
    speakers: list[Speaker] = []
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]
        by_name = {
            name: Speaker(sample["sample_id"], name)
            for name in (conv["speaker_a"], conv["speaker_b"])
        }
        n = 1
        while f"session_{n}_date_time" in conv:
            when = conv[f"session_{n}_date_time"]
            for turn in conv.get(f"session_{n}", []):
                speaker = by_name[turn["speaker"]]
                speaker.turns.append(f"[{when}] {turn['speaker']}: {turn['text']}")
                speaker.texts.append(turn["text"])
            n += 1
        for session in sample["observation"].values():
            for name, facts in session.items():
                by_name[name].facts.extend(fact for fact, _ in facts)
        speakers.extend(by_name.values())
    return speakers


def first_n(texts: list[str], max_words: int) -> str:
    kept: list[str] = []
    used = 0
    for text in texts:
        words = len(text.split())
        if used + words > max_words:
            break
        kept.append(text.strip())
        used += words
    return " ".join(kept)


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


_TAG = re.compile(r"^\s*\[[^\]]*\]\s*")


def neutral(text: str, name: str) -> str:
    """The text with the person's name (and a leading "[...] Name:" tag) replaced by "the
    user": every reference fact names the speaker, so a summary that repeats the name in
    each sentence would otherwise score on the name rather than on the facts."""
    text = _TAG.sub("", text)
    text = re.sub(rf"^{re.escape(name)}:\s*", "", text)
    text = re.sub(rf"\b{re.escape(name)}['\u2019]s\b", "the user's", text)
    return re.sub(rf"\b{re.escape(name)}\b", "the user", text)


_SUBJECT = re.compile(
    r"\b(?:the user's|the user|they're|they've|they|their|them|themselves|i'm|i've|i'll|i'd|"
    r"i|my|me|myself|mine)\b",
    re.IGNORECASE,
)


def subject_blind(text: str, name: str) -> str:
    """Also without the words that name the person ("the user", "I", "they", "my"...): what
    is left is what the sentence says, however it refers to the person."""
    return _SUBJECT.sub("", neutral(text, name)).strip()


class Coverage:
    """Scores summaries against reference facts with the local model."""

    def __init__(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openmemory.settings")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from memories.embeddings import LocalEmbeddings

        self.model = LocalEmbeddings(threads=2, fast=False)

    def best_similarities(
        self, name: str, facts: list[str], summary: str, *, blind: bool = False
    ) -> np.ndarray:
        normal = subject_blind if blind else neutral
        parts = [normal(part, name) for part in sentences(summary)]
        if not parts:
            return np.zeros(len(facts))
        facts = [normal(fact, name) for fact in facts]
        matrix = self.model.embed(facts) @ self.model.embed(parts).T
        return matrix.max(axis=1)


def score(best: list[np.ndarray]) -> dict:
    flat = np.concatenate(best)
    out: dict = {"facts": int(flat.size), "mean_best": float(flat.mean())}
    for t in THRESHOLDS:
        out[f"micro@{t}"] = float((flat >= t).mean())
        out[f"macro@{t}"] = float(np.mean([(b >= t).mean() for b in best]))
    return out


def llm_reachable() -> str | None:
    """Why the configured LLM endpoint cannot be used, or None when it answers."""
    base = os.environ.get("OM_LLM_BASE_URL", "http://127.0.0.1:11434/v1").rstrip("/")
    headers = {}
    if os.environ.get("OM_LLM_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['OM_LLM_API_KEY']}"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(f"{base}/models", headers=headers), timeout=5
        ):
            return None
    except Exception as exc:  # any failure means: no LLM to measure
        return f"{base}: {exc}"


def run(speakers: list[Speaker], api: Api, tag: str) -> list[dict]:
    rows = []
    for speaker in speakers:
        user_id = f"locomo-{speaker.sample_id}-{speaker.name}-{tag}".lower()
        for content in speaker.turns:
            api.post("/memory/add", {"content": content, "user_id": user_id})
        path = "/users/" + urllib.parse.quote(user_id) + "/summary"
        _, elapsed = api.post(path + "/regenerate", {})
        text = api.get(path)["summary"]
        rows.append({"user": user_id, "summary": text, "regenerate_ms": elapsed * 1000})
        print(
            f"  {speaker.sample_id} {speaker.name}: {len(speaker.turns)} memories, "
            f"regenerated in {elapsed * 1000:.0f} ms",
            file=sys.stderr,
        )
    return rows


def table(results: dict[str, dict]) -> str:
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for t in THRESHOLDS:
        row = [f"{results[n][f'micro@{t}']:.3f} / {results[n][f'macro@{t}']:.3f}" for n in names]
        lines.append(f"| facts covered at cos ≥ {t} (micro / macro) | " + " | ".join(row) + " |")
    lines.append(
        "| mean best similarity | "
        + " | ".join(f"{results[n]['mean_best']:.3f}" for n in names)
        + " |"
    )
    lines.append(
        "| words per summary (mean) | "
        + " | ".join(f"{results[n]['words']:.0f}" for n in names)
        + " |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser, port=8098)
    parser.add_argument("--summarizer", choices=("extractive", "llm"), default="extractive")
    parser.add_argument(
        "--max-words",
        type=int,
        default=int(os.environ.get("OM_SUMMARY_MAX_LENGTH", 200)),
        help="the server's OM_SUMMARY_MAX_LENGTH and the baseline's length (default: %(default)s)",
    )
    parser.add_argument("--show", action="store_true", help="print every summary")
    args = parser.parse_args()

    speakers = load(args.data)
    print(
        f"LoCoMo: {len(speakers)} speakers, {sum(len(s.turns) for s in speakers)} turns, "
        f"{sum(len(s.facts) for s in speakers)} reference facts; "
        f"OM_SUMMARY_MAX_LENGTH={args.max_words}"
    )
    if args.summarizer == "llm":
        problem = llm_reachable()
        if problem:
            raise SystemExit(f"no LLM to measure ({problem}); run without --summarizer llm")

    # For a server started here (serving); one at --base-url has its own settings.
    os.environ["OM_SUMMARY_MAX_LENGTH"] = str(args.max_words)
    os.environ["OM_SUMMARIZER"] = args.summarizer
    with serving(args) as (api, _):
        health = api.get("/health")
        started = time.perf_counter()
        rows = run(speakers, api, uuid.uuid4().hex[:6])
        loaded = time.perf_counter() - started

    coverage = Coverage()
    ours = f"server {args.summarizer} ({health['database']}, {health['embeddings']})"
    texts = {
        ours: [row["summary"] for row in rows],
        "first N memories": [first_n(s.texts, args.max_words) for s in speakers],
    }
    results: dict[str, dict] = {}
    blind_results: dict[str, dict] = {}
    for name, summaries in texts.items():
        for blind, into in ((False, results), (True, blind_results)):
            best = [
                coverage.best_similarities(s.name, s.facts, text, blind=blind)
                for s, text in zip(speakers, summaries, strict=True)
            ]
            into[name] = {
                **score(best),
                "words": float(np.mean([len(t.split()) for t in summaries])),
            }
    regenerate = [row["regenerate_ms"] for row in rows]
    timing = {
        "regenerate_ms_median": statistics.median(regenerate),
        "regenerate_ms_max": max(regenerate),
        "load_and_regenerate_s": loaded,
    }
    print()
    print('Facts and summary sentences with the person\'s name read as "the user":')
    print(table(results))
    print()
    print('Subject-blind ("the user", I, they, my... removed from both sides):')
    print(table(blind_results))
    print()
    print(
        f"regenerate over HTTP, per user ({len(speakers)} users, 184-344 memories each): "
        f"median {timing['regenerate_ms_median']:.0f} ms, max {timing['regenerate_ms_max']:.0f} ms"
    )
    if args.summarizer == "extractive":
        print("LLM summarizer: not measured (run with --summarizer llm and OM_LLM_* set)")
    if args.show:
        for speaker, row, base in zip(speakers, rows, texts["first N memories"], strict=True):
            print(f"\n## {speaker.sample_id} {speaker.name}\n{ours}: {row['summary']}")
            print(f"first N: {base}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "results": results,
                    "subject_blind": blind_results,
                    "timing": timing,
                    "summaries": rows,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
