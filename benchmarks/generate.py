"""Benchmark the generation pipeline against its raw backend, and its scaling over several endpoints.

1. Overhead: tokens/s of ``run_generation`` (prompt rendering, retry layer, validation, SQLite
   store) divided by tokens/s of bare ``backend.complete`` calls at the same concurrency on the
   same backend. Target >= 0.9.
2. Endpoints: tokens/s with N fake endpoints (each serves ONE request at a time with a fixed
   service time) divided by tokens/s with one endpoint, concurrency N. Target >= 0.9 N.

The fake endpoints are the loopback server of the tests (tests/generate/generate_fake_server.py).
3. Server scale (``--scale``): requests/s of the generation loop (``run_generation`` with the
   openai backend, the SQLite store and the progress bar, i.e. what ``synthrank generate`` runs)
   divided by requests/s of a raw async HTTP loop (one shared ``aiohttp`` session with keep-alive
   connections, ``concurrency`` coroutines posting the same request bodies and reading the
   answers, nothing else; the same loop on ``httpx`` is printed for reference), both against a zero-latency loopback
   server in its own process (``benchmarks/zero_latency_server.py``), at concurrency 64, 256 and
   1024. Target >= 0.9 at every concurrency. Sides alternate, twice each; the table shows the
   mean of each side.

``--embedded`` adds the overhead ratio on the real embedded model (SmolLM2-135M, CPU).

    python benchmarks/generate.py [--queries 40] [--embedded]
    python benchmarks/generate.py --scale [--concurrency 64 256 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "generate"))

from generate_fake_server import FakeOpenAI  # noqa: E402

from synthrank.data import Query  # noqa: E402
from synthrank.generate.backends.openai import OpenAIBackend  # noqa: E402
from synthrank.generate.prompts import answer_schema, load_prompt  # noqa: E402
from synthrank.generate.runner import GenerationOptions, GenerationSettings, run_generation  # noqa: E402
from synthrank.generate.store import Store  # noqa: E402

LEVELS = [3, 2, 1, 0]


def _queries(n: int) -> list[Query]:
    return [Query(_id=f"b{i}", text=f"benchmark question {i} about a subject numbered {i}") for i in range(n)]


async def raw_tokens_per_s(backend, queries, prompt, concurrency: int) -> float:
    """Bare backend calls: the same requests the pipeline would send, no retries, no store."""
    sem = asyncio.Semaphore(concurrency)
    tokens = 0

    async def one(q, level):
        nonlocal tokens
        async with sem:
            c = await backend.complete(prompt.messages(q.text, LEVELS, 1, level=level), answer_schema("per-level", [level], 1),
                                       {"temperature": 0.7, "top_p": 0.95, "max_tokens": 240, "seed": 1})
            tokens += c.completion_tokens

    start = time.perf_counter()
    await asyncio.gather(*(one(q, lv) for q in queries for lv in LEVELS))
    return tokens / (time.perf_counter() - start)


async def pipeline_tokens_per_s(backend, queries, prompt, concurrency: int) -> float:
    """Full pipeline into a fresh store; completion tokens of every call per wall second."""
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:
        settings = GenerationSettings(prompt, GenerationOptions(levels=list(LEVELS), concurrency=concurrency))
        summary = await run_generation(queries, backend, store, settings, progress=False)
        # all generated tokens (invalid answers too): the raw side counts every token as well
        return summary.generated_tokens / summary.seconds


async def overhead_fake(n_queries: int, concurrency: int) -> dict:
    prompt = load_prompt("per-level")
    with FakeOpenAI(delay_s=0.02, token_delay_s=0.002, capacity=concurrency) as server:
        backend = OpenAIBackend([server.base_url], "fake")
        raw = await raw_tokens_per_s(backend, _queries(n_queries), prompt, concurrency)
        pipe = await pipeline_tokens_per_s(backend, _queries(n_queries), prompt, concurrency)
        await backend.aclose()
    return {"backend": "fake openai server", "concurrency": concurrency, "raw_tok_s": round(raw, 1),
            "pipeline_tok_s": round(pipe, 1), "ratio": round(pipe / raw, 3)}


async def overhead_embedded(n_queries: int) -> dict:
    from synthrank.generate.backends.embedded import EmbeddedBackend

    prompt = load_prompt("per-level")
    backend = EmbeddedBackend("smollm2-135m", threads=1, n_parallel=2)
    queries = _queries(n_queries)
    await raw_tokens_per_s(backend, queries[:1], prompt, 2)  # warm-up
    raws, pipes = [], []
    for _ in range(2):  # interleaved, so that drifting load on a shared machine hits both sides
        raws.append(await raw_tokens_per_s(backend, queries, prompt, 2))
        pipes.append(await pipeline_tokens_per_s(backend, queries, prompt, 2))
    raw, pipe = sum(raws) / 2, sum(pipes) / 2
    await backend.aclose()
    return {"backend": "embedded smollm2-135m (1 thread, 2 slots)", "concurrency": 2, "raw_tok_s": round(raw, 1),
            "pipeline_tok_s": round(pipe, 1), "ratio": round(pipe / raw, 3)}


async def endpoints(n_queries: int, counts=(1, 2, 4, 8), service_s: float = 0.2) -> list[dict]:
    """``service_s`` is each fake endpoint's time per request. Real LLM calls take seconds; at 50 ms the
    harness itself (client, store and 8 servers in one Python process on 2 cores) becomes the limit."""
    prompt = load_prompt("per-level")
    out, base = [], None
    for n in counts:
        servers = [FakeOpenAI(delay_s=service_s, capacity=1).__enter__() for _ in range(n)]
        backend = OpenAIBackend([s.base_url for s in servers], "fake")
        tps = await pipeline_tokens_per_s(backend, _queries(n_queries), prompt, concurrency=2 * n)
        await backend.aclose()
        for s in servers:
            s.__exit__()
        base = base or tps
        out.append({"endpoints": n, "service_s": service_s, "tok_s": round(tps, 1), "speedup": round(tps / base, 2), "target": round(0.9 * n, 2)})
    return out


@contextlib.contextmanager
def zero_latency_server():
    """The zero-latency server in a child process; yields its base URL."""
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("zero_latency_server.py"))],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().split()[1])
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def _request_bodies(queries: list[Query], prompt) -> list[dict]:
    """The bodies the pipeline sends for ``queries`` x LEVELS (per-level prompt, schema, sampling)."""
    bodies = []
    for q in queries:
        for level in LEVELS:
            schema = answer_schema("per-level", [level], 1)
            bodies.append({"model": "zero-latency", "messages": prompt.messages(q.text, LEVELS, 1, level=level),
                           "temperature": 0.7, "top_p": 0.95, "max_tokens": 240, "seed": 1,
                           "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}})
    return bodies


async def raw_requests_per_s(base_url: str, bodies: list[dict], concurrency: int) -> float:
    """The baseline: ``concurrency`` coroutines posting ``bodies`` through one aiohttp session and reading each answer."""
    import aiohttp

    pending = iter(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def worker() -> None:
            for body in pending:
                async with session.post(f"{base_url}/chat/completions", json=body) as response:
                    response.raise_for_status()
                    await response.read()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - start)


async def httpx_requests_per_s(base_url: str, bodies: list[dict], concurrency: int) -> float:
    """The same loop on one ``httpx.AsyncClient`` (the openai backend's transport before aiohttp), for reference."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    pending = iter(bodies)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        async def worker() -> None:
            for body in pending:
                response = await client.post(f"{base_url}/chat/completions", json=body)
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - start)


async def pipeline_requests_per_s(base_url: str, queries: list[Query], prompt, concurrency: int) -> float:
    """``run_generation`` (openai backend, fresh SQLite store, progress bar on, drawn to /dev/null): calls per wall second."""
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        backend = OpenAIBackend([base_url], "zero-latency")
        with Store(Path(tmp) / "s.sqlite") as store:
            settings = GenerationSettings(prompt, GenerationOptions(levels=list(LEVELS), concurrency=concurrency))
            start = time.perf_counter()
            summary = await run_generation(queries, backend, store, settings, progress=True)
            seconds = time.perf_counter() - start
        await backend.aclose()
    if summary.done_rows != len(queries) * len(LEVELS) or summary.calls != summary.done_rows:
        raise RuntimeError(f"the pipeline stored {summary.done_rows} rows in {summary.calls} calls for {len(queries)} queries")
    return summary.calls / seconds


def server_scale(concurrencies: list[int], rounds: int = 2) -> list[dict]:
    prompt = load_prompt("per-level")
    out = []
    with zero_latency_server() as url:
        for concurrency in concurrencies:
            queries = _queries(max(1000, 4 * concurrency))  # 4 requests per query: >= 16 per connection
            bodies = _request_bodies(queries, prompt)
            asyncio.run(raw_requests_per_s(url, bodies[:concurrency], concurrency))  # warm-up: connections, imports
            raw, pipe = [], []
            for _ in range(rounds):
                raw.append(asyncio.run(raw_requests_per_s(url, bodies, concurrency)))
                pipe.append(asyncio.run(pipeline_requests_per_s(url, queries, prompt, concurrency)))
            r, p = sum(raw) / rounds, sum(pipe) / rounds
            old = asyncio.run(httpx_requests_per_s(url, bodies[: 2 * concurrency], concurrency))
            out.append({"concurrency": concurrency, "requests": len(bodies), "raw_req_s": round(r, 1),
                        "pipeline_req_s": round(p, 1), "ratio": round(p / r, 3), "httpx_req_s": round(old, 1)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--embedded", action="store_true", help="also measure the embedded SmolLM2 backend (slower)")
    parser.add_argument("--scale", action="store_true", help="only the server-scale table (zero-latency server)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256, 1024])
    args = parser.parse_args()
    if args.scale:
        rows = server_scale(args.concurrency)
        print("| concurrency | requests | raw aiohttp loop (req/s) | synthrank generate loop (req/s) | ratio (goal >= 0.9) "
              "| raw httpx loop (req/s), for reference |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['concurrency']} | {r['requests']} | {r['raw_req_s']:.0f} | {r['pipeline_req_s']:.0f} | {r['ratio']:.2f} "
                  f"| {r['httpx_req_s']:.0f} |")
        print(f"\nmachine: {os.cpu_count()} CPUs; server in its own process")
        print(json.dumps(rows))
        return
    results = {"overhead": [asyncio.run(overhead_fake(max(args.queries, 40), c)) for c in (1, 8)]}
    if args.embedded:
        results["overhead"].append(asyncio.run(overhead_embedded(max(2, args.queries // 8))))
    results["endpoints"] = asyncio.run(endpoints(args.queries // 2)) + asyncio.run(endpoints(args.queries, (1, 8), 0.05))
    for r in results["overhead"]:
        print(f"overhead  {r['backend']:45} c={r['concurrency']}: raw {r['raw_tok_s']:8.1f} tok/s, "
              f"pipeline {r['pipeline_tok_s']:8.1f} tok/s, ratio {r['ratio']:.3f} (target >= 0.9)")
    for r in results["endpoints"]:
        print(f"endpoints N={r['endpoints']} (service {r['service_s']} s/request): {r['tok_s']:8.1f} tok/s, speed-up {r['speedup']:.2f} (target >= {r['target']})")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
