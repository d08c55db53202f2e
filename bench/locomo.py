"""LoCoMo retrieval benchmark through the public API: evidence recall@1/5/10 and MRR of the
server's ranking beside a BM25 baseline and a dense-only baseline, plus add/query latency.

Follows the protocol of ../shared/data/README.md: one memory per turn, content
"[<session date_time>] <speaker>: <text>", added with POST /memory/add (one user per
conversation); after all turns are stored, each question with evidence is asked once with
POST /memory/query {query, k: 10, filters: {user_id}}. A question's recall@k is the share of
its evidence turns among the top k; MRR is 1 / rank of the first evidence turn in the top 10.

    .venv/bin/python bench/locomo.py                      # starts a fresh SQLite server
    .venv/bin/python bench/locomo.py --database postgres  # fresh PostgreSQL database
    .venv/bin/python bench/locomo.py --base-url http://127.0.0.1:8080 --api-key KEY

The data (CC BY-NC 4.0) is read from ../shared/data/ at run time and never copied here.
Baselines, computed here on the same memory texts:
  bm25   bm25s (Okapi BM25, its English stop words, Snowball stemming via PyStemmer) over
         each user's turns;
  dense  all-MiniLM-L6-v2 (the server's `local` model) cosine similarity alone.
Needs the dev extra (bm25s, PyStemmer).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "locomo-dev.json"
K = 10
CUTOFFS = (1, 5, 10)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


# --- Data ----------------------------------------------------------------------------------


@dataclass
class Conversation:
    sample_id: str
    turns: list[tuple[str, str]]  # (dia_id, memory content), in conversation order
    questions: list[dict]


def load(path: Path) -> list[Conversation]:
    conversations = []
    for sample in json.loads(path.read_text()):
        conv = sample["conversation"]
        turns = []
        n = 1
        while f"session_{n}_date_time" in conv:
            for turn in conv.get(f"session_{n}", []):
                when = conv[f"session_{n}_date_time"]
                turns.append((turn["dia_id"], f"[{when}] {turn['speaker']}: {turn['text']}"))
            n += 1
        # A handful of questions have no evidence: nothing to find, so they are skipped.
        questions = [q for q in sample["qa"] if q.get("evidence")]
        conversations.append(Conversation(sample["sample_id"], turns, questions))
    return conversations


# --- Scoring -------------------------------------------------------------------------------


@dataclass
class Scores:
    recall: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    reciprocal: list[float] = field(default_factory=list)
    by_category: dict[int, dict[int, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )

    def add(self, question: dict, ranked: list[str]) -> None:
        evidence = question["evidence"]
        for cutoff in CUTOFFS:
            top = set(ranked[:cutoff])
            value = sum(1 for e in evidence if e in top) / len(evidence)
            self.recall[cutoff].append(value)
            self.by_category[question["category"]][cutoff].append(value)
        rank = next((i for i, d in enumerate(ranked[:K], 1) if d in set(evidence)), None)
        self.reciprocal.append(1 / rank if rank else 0.0)

    def summary(self) -> dict:
        out = {f"recall@{c}": float(np.mean(v)) for c, v in self.recall.items()}
        out["mrr"] = float(np.mean(self.reciprocal))
        out["questions"] = len(self.reciprocal)
        out["categories"] = {
            CATEGORIES[cat]: {
                "n": len(values[K]),
                **{f"recall@{c}": float(np.mean(values[c])) for c in CUTOFFS},
            }
            for cat, values in sorted(self.by_category.items())
        }
        return out


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
    }


# --- Baselines -----------------------------------------------------------------------------


def bm25_baseline(conversations: list[Conversation]) -> Scores:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    scores = Scores()
    for conv in conversations:
        ids = [dia for dia, _ in conv.turns]
        corpus = bm25s.tokenize(
            [text for _, text in conv.turns], stopwords="en", stemmer=stemmer, show_progress=False
        )
        index = bm25s.BM25()
        index.index(corpus, show_progress=False)
        for question in conv.questions:
            tokens = bm25s.tokenize(
                question["question"], stopwords="en", stemmer=stemmer, show_progress=False
            )
            vocab = {v: k for k, v in tokens.vocab.items()}
            words = [vocab[i] for i in tokens.ids[0]]
            result = index.get_scores(words) if words else np.zeros(len(ids))
            order = np.argsort(-result, kind="stable")[:K]
            scores.add(question, [ids[i] for i in order])
    return scores


def dense_baseline(conversations: list[Conversation]) -> Scores:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "openmemory.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from memories.embeddings import LocalEmbeddings

    model = LocalEmbeddings(threads=2, fast=False)
    scores = Scores()
    for conv in conversations:
        ids = [dia for dia, _ in conv.turns]
        docs = model.embed([text for _, text in conv.turns])
        questions = model.embed([q["question"] for q in conv.questions])
        for question, vector in zip(conv.questions, questions, strict=True):
            order = np.argsort(-(docs @ vector), kind="stable")[:K]
            scores.add(question, [ids[i] for i in order])
    return scores


# --- The server ----------------------------------------------------------------------------


class Api:
    """One persistent HTTP connection, as an app server keeps to its memory server."""

    def __init__(self, base_url: str, api_key: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=120)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"}

    def post(self, path: str, body: dict) -> tuple[dict, float]:
        payload = json.dumps(body)
        started = time.perf_counter()
        self.conn.request("POST", path, payload, self.headers)
        response = self.conn.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - started
        if response.status >= 300:
            raise SystemExit(f"POST {path}: {response.status} {raw[:300]!r}")
        return json.loads(raw), elapsed

    def get(self, path: str) -> dict:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        return json.loads(response.read())


def start_server(database: str, port: int, api_key: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "OM_PORT": str(port),
        "OM_API_KEY": api_key,
        "OM_RATE_LIMIT": "0",
    }
    with open(ROOT / "data" / "bench" / f"locomo-{database}.log", "w") as log:
        process = subprocess.Popen(
            ["bash", str(ROOT / "bench" / "serve.sh"), database],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"bench server exited; see data/bench/locomo-{database}.log")
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("bench server did not become healthy")


def analyze(args: argparse.Namespace, server: subprocess.Popen | None):
    """On a PostgreSQL server this script started: fresh planner statistics after the load,
    as autovacuum gives a running deployment (it is off on these machines)."""
    if server is None or args.database != "postgres":
        return None

    def run() -> None:
        import psycopg

        pg = os.environ.get("OM_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
        database = os.environ.get("OM_BENCH_DB", "openmemory_bench")
        with psycopg.connect(f"{pg}/{database}", autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")

    return run


def run_server(conversations: list[Conversation], api: Api, after_adds=None) -> tuple[Scores, dict]:
    tag = uuid.uuid4().hex[:6]
    add_times: list[float] = []
    query_times: list[float] = []
    scores = Scores()
    violations = 0
    users: dict[str, tuple[str, dict[str, str]]] = {}
    for conv in conversations:
        user_id = f"locomo-{conv.sample_id}-{tag}"
        by_memory: dict[str, str] = {}
        for dia_id, content in conv.turns:
            body, elapsed = api.post("/memory/add", {"content": content, "user_id": user_id})
            add_times.append(elapsed)
            by_memory[body["id"]] = dia_id
        users[conv.sample_id] = (user_id, by_memory)
        print(f"  {conv.sample_id}: {len(conv.turns)} turns stored", file=sys.stderr)
    if after_adds is not None:
        after_adds()
    for conv in conversations:
        user_id, by_memory = users[conv.sample_id]
        for question in conv.questions:
            request = {"query": question["question"], "k": K, "filters": {"user_id": user_id}}
            body, elapsed = api.post("/memory/query", request)
            query_times.append(elapsed)
            violations += sum(1 for m in body["matches"] if m["user_id"] != user_id)
            scores.add(question, [by_memory.get(m["id"], "?") for m in body["matches"]])
    timing = {
        "add_ms": percentiles(add_times),
        "query_ms": percentiles(query_times),
        "isolation_violations": violations,
    }
    return scores, timing


# --- Report --------------------------------------------------------------------------------


def table(results: dict[str, dict]) -> str:
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for cutoff in CUTOFFS:
        row = [f"{results[n]['recall@' + str(cutoff)]:.3f}" for n in names]
        lines.append(f"| **all: recall@{cutoff}** | " + " | ".join(row) + " |")
    lines.append("| all: MRR | " + " | ".join(f"{results[n]['mrr']:.3f}" for n in names) + " |")
    first = results[names[0]]["categories"]
    for category, values in first.items():
        row = [
            " / ".join(
                f"{results[n]['categories'][category]['recall@' + str(c)]:.3f}" for c in CUTOFFS
            )
            for n in names
        ]
        lines.append(f"| {category} ({values['n']}): r@1 / r@5 / r@10 | " + " | ".join(row) + " |")
    return "\n".join(lines)


def add_server_arguments(parser: argparse.ArgumentParser, *, port: int) -> None:
    """The options of both LoCoMo benchmarks: the data, which server, where results go."""
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--base-url", help="use a running server instead of starting one")
    parser.add_argument("--api-key", default="bench-key")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--json", type=Path, help="also write the results here")


@contextlib.contextmanager
def serving(args: argparse.Namespace) -> Iterator[tuple[Api, subprocess.Popen | None]]:
    """The server to measure: --base-url's, or a fresh one (bench/serve.sh, with the
    environment's OM_* settings) stopped afterwards."""
    server = None
    base_url = args.base_url
    if base_url is None:
        (ROOT / "data" / "bench").mkdir(parents=True, exist_ok=True)
        server = start_server(args.database, args.port, args.api_key)
        base_url = f"http://127.0.0.1:{args.port}"
    try:
        yield Api(base_url, args.api_key), server
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_arguments(parser, port=8097)
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args()

    conversations = load(args.data)
    turns = sum(len(c.turns) for c in conversations)
    questions = sum(len(c.questions) for c in conversations)
    print(f"LoCoMo: {len(conversations)} conversations, {turns} turns, {questions} questions")

    with serving(args) as (api, server):
        health = api.get("/health")
        ours, timing = run_server(conversations, api, after_adds=analyze(args, server))
    results = {f"server ({health['database']}, {health['embeddings']})": ours.summary()}
    if not args.no_baselines:
        results["bm25 (bm25s)"] = bm25_baseline(conversations).summary()
        results["dense (MiniLM)"] = dense_baseline(conversations).summary()
    print()
    print(table(results))
    print()
    for name, key in (("single add", "add_ms"), ("query", "query_ms")):
        t = timing[key]
        print(
            f"{name}: p50 {t['p50']:.1f} ms, p95 {t['p95']:.1f} ms, p99 {t['p99']:.1f} ms "
            f"(mean {t['mean']:.1f}), sequential over HTTP"
        )
    print(f"isolation violations: {timing['isolation_violations']}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "timing": timing}, indent=2))


if __name__ == "__main__":
    main()
