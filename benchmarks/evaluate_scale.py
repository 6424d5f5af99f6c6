"""Benchmark: ``synthrank evaluate`` on a synthetic corpus of a million documents with the fast static model.

Prints, all measured in this run on this machine:
1. end to end (``python -m synthrank.cli evaluate`` in a child process: load, encode, search, metrics):
   wall time and **peak RSS** (goal <= 8 GB for 1M x 256-d, with ``--embedding-dtype float16``);
2. search on the same vectors: our exact chunked search (``search_s`` of the evaluation: the top-k
   search alone; normalisation and building the run are timed apart) against raw faiss
   (``IndexFlatIP`` add + search, same threads, same normalised vectors and k) timed here: the ratio
   faiss seconds / our seconds (goal >= 0.9);
3. the multi-process encode speed-up: the same texts with ``processes=2`` against 1, with the pool's
   start (two spawned workers importing torch and loading the model) timed apart. ``--encode-only``
   measures just this, ``--encode-model PATH`` with another model (e.g. the real MiniLM).

The corpus is random words from a 5,000-word vocabulary (30-80 words per document); queries are
3-6 words, each judging one document. Nothing downloads: the static model is distilled from the
offline MiniLM into ``~/.cache/synthrank/models/minilm-static-256`` on first use (~1 min).

Usage: python benchmarks/evaluate_scale.py [--docs 1000000] [--queries 1000] [--encode-texts 20000]
                                          [--encode-only] [--encode-model PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_corpus(folder: Path, docs: int, queries: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(5000)])
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as handle:
        for start in range(0, docs, 50_000):
            n = min(50_000, docs - start)
            lengths = rng.integers(30, 81, n)
            words = rng.choice(vocabulary, int(lengths.sum()))
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            handle.writelines(json.dumps({"_id": f"d{start + i}", "title": "", "text": " ".join(words[offsets[i]:offsets[i + 1]])}) + "\n"
                              for i in range(n))
    judged = rng.choice(docs, queries, replace=False)
    with open(folder / "queries.jsonl", "w") as handle:
        handle.writelines(json.dumps({"_id": f"q{i}", "text": " ".join(rng.choice(vocabulary, rng.integers(3, 7)))}) + "\n"
                          for i in range(queries))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{d}\t1\n" for i, d in enumerate(judged)))
    return folder


def static_model() -> Path:
    folder = Path.home() / ".cache" / "synthrank" / "models" / "minilm-static-256"
    if not (folder / "modules.json").is_file():
        from synthrank.distill import distill_static

        distill_static("all-MiniLM-L6-v2", folder, pca_dims=256)
    return folder


def run_ours(model: Path, data: Path, cache: Path, out: Path, dtype: str) -> dict:
    """The CLI in a child process; returns its results plus wall seconds and peak RSS (GiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "synthrank.cli", "evaluate", "-m", str(model), "-d", str(data), "--cache-dir", str(cache),
                    "--embedding-dtype", dtype, "--out", str(out), "-q"], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads((out / "results.json").read_text())
    result["wall_s"], result["peak_rss_gib"] = wall, max(peak, before) / 2**20  # ru_maxrss is KiB on Linux
    return result


def raw_faiss_seconds(model_path: Path, data: Path, cache: Path, k: int) -> tuple[float, int]:
    """faiss IndexFlatIP over the cached corpus vectors of this run (normalised), queries encoded here."""
    import faiss
    from sentence_transformers import SentenceTransformer

    vectors_file = max((cache / "embeddings").glob("document-*.npy"), key=lambda p: p.stat().st_mtime)
    docs = np.load(vectors_file).astype(np.float32)
    docs /= np.clip(np.linalg.norm(docs, axis=1, keepdims=True), 1e-12, None)
    queries = [json.loads(line)["text"] for line in open(data / "queries.jsonl")]
    model = SentenceTransformer(str(model_path), device="cpu")
    q = model.encode(queries, convert_to_numpy=True).astype(np.float32)
    q /= np.clip(np.linalg.norm(q, axis=1, keepdims=True), 1e-12, None)
    started = time.perf_counter()
    index = faiss.IndexFlatIP(docs.shape[1])
    index.add(docs)
    index.search(q, k)
    return time.perf_counter() - started, docs.shape[1]


def encode_speedup(model_path: Path, texts: int) -> tuple[float, float, float]:
    """Seconds to encode ``texts`` synthetic texts with 1 and with 2 processes, and the 2-process pool's start alone."""
    from sentence_transformers import SentenceTransformer

    from synthrank.evaluate.encode import _start_pool, encode_texts

    model = SentenceTransformer(str(model_path), device="cpu")
    rng = np.random.default_rng(1)
    sample = [" ".join(f"w{i}" for i in rng.integers(0, 5000, rng.integers(30, 81))) for _ in range(texts)]
    seconds = {}
    for processes in (1, 2):
        started = time.perf_counter()
        encode_texts(model, sample, batch_size=256, progress=False, processes=processes)
        seconds[processes] = time.perf_counter() - started
    started = time.perf_counter()
    model.stop_multi_process_pool(_start_pool(model, 2))
    return seconds[1], seconds[2], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--encode-texts", type=int, default=20_000)
    parser.add_argument("--dtype", default="float16", choices=["float16", "float32"])
    parser.add_argument("--encode-only", action="store_true", help="only the multi-process encode speed-up")
    parser.add_argument("--encode-model", type=Path, help="model folder for the speed-up (default: the static model)")
    args = parser.parse_args()
    model = static_model()
    if args.encode_only:
        print_speedup(args.encode_model or model, args.encode_texts)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        data = write_corpus(tmp / "data", args.docs, args.queries)
        print(f"corpus: {args.docs} documents, {args.queries} queries written in {time.perf_counter() - started:.0f} s", flush=True)
        ours = run_ours(model, data, tmp / "cache", tmp / "out", args.dtype)
        faiss_s, dim = raw_faiss_seconds(model, data, tmp / "cache", ours["settings"]["top_k"])
        one, two, pool_start = encode_speedup(model, args.encode_texts)
    t = ours["timings"]
    print("\n| measure | value |\n|---|---:|")
    print(f"| documents x dim | {args.docs} x {dim} ({args.dtype}) |")
    print(f"| end-to-end wall (s) | {ours['wall_s']:.1f} |")
    print(f"| peak RSS (GiB) | {ours['peak_rss_gib']:.2f} (goal <= 8) |")
    print(f"| load / encode corpus / normalise / search / build run / metrics (s) | {t['load_data_s']:.1f} / "
          f"{t['encode_corpus_s']:.1f} / {t['normalise_s']:.1f} / {t['search_s']:.1f} / {t['collect_run_s']:.1f} / {t['metrics_s']:.1f} |")
    print(f"| raw faiss IndexFlatIP add+search (s) | {faiss_s:.1f} |")
    print(f"| search ratio: faiss s / ours s | {faiss_s / t['search_s']:.2f} (goal >= 0.9) |")
    _speedup_rows(args.encode_texts, one, two, pool_start)
    print(f"\nmachine: {os.cpu_count()} CPUs; torch threads {__import__('torch').get_num_threads()}")



def _speedup_rows(texts: int, one: float, two: float, pool_start: float) -> None:
    print(f"| encode {texts} texts: 1 process / 2 processes (s) | {one:.1f} / {two:.1f} |")
    print(f"| 2-process pool start (s), included above | {pool_start:.1f} |")
    print(f"| multi-process encode speed-up | {one / two:.2f}x ({one / max(two - pool_start, 1e-9):.2f}x after the pool start) |")


def print_speedup(model: Path, texts: int) -> None:
    one, two, pool_start = encode_speedup(model, texts)
    print(f"\n| measure ({model.name}) | value |\n|---|---:|")
    _speedup_rows(texts, one, two, pool_start)
    print(f"\nmachine: {os.cpu_count()} CPUs; torch threads {__import__('torch').get_num_threads()}")


if __name__ == "__main__":
    main()
