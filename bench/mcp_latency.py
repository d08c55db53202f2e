"""MCP over streamable HTTP next to the plain HTTP API, against a running server: the same
searches through `search_memories` on /mcp and through POST /memory/query, timed one after
the other, with p50/p95 printed for each.

    .venv/bin/python bench/mcp_latency.py --base-url http://127.0.0.1:8080 --api-key KEY
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import urllib.request

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

WORDS = "tea coffee cello piano hiking swimming peanuts bees bread chess travel garden".split()


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms"


def http_post(base_url: str, key: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


async def main(args: argparse.Namespace) -> None:
    user = "bench-mcp"
    for i in range(args.memories):
        content = f"{user} likes {WORDS[i % len(WORDS)]} number {i}"
        http_post(args.base_url, args.api_key, "/memory/add", {"content": content, "user_id": user})
    queries = [f"does the user like {WORDS[i % len(WORDS)]}" for i in range(args.queries)]

    plain: list[float] = []
    for query in queries:
        started = time.perf_counter()
        http_post(
            args.base_url,
            args.api_key,
            "/memory/query",
            {"query": query, "k": 8, "filters": {"user_id": user}},
        )
        plain.append(time.perf_counter() - started)

    headers = {"Authorization": f"Bearer {args.api_key}"}
    over_mcp: list[float] = []
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        transport = streamable_http_client(f"{args.base_url}/mcp", http_client=http)
        started = time.perf_counter()
        async with Client(transport) as client:
            connected = time.perf_counter() - started
            await client.list_tools()
            for query in queries:
                started = time.perf_counter()
                result = await client.call_tool(
                    "search_memories", {"query": query, "k": 8, "user_id": user}
                )
                over_mcp.append(time.perf_counter() - started)
                assert not result.is_error, result.content

    print(f"searches: {args.queries} each, for one user ({args.memories} memories added this run)")
    print(f"POST /memory/query        {percentiles(plain)}")
    print(f"search_memories on /mcp   {percentiles(over_mcp)}")
    print(f"MCP connect (discover)    {connected * 1000:6.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8080")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--memories", type=int, default=200)
    parser.add_argument("--queries", type=int, default=200)
    anyio.run(main, parser.parse_args())
