"""Benchmark: our encode path vs raw ``SentenceTransformer.encode``, and the cost of search + metrics.

Prints three ratios, all measured in this run on this machine:
1. throughput(our ``encode_texts``) / throughput(raw ``model.encode``) on the same texts,
   model and batch size (target >= 0.98); runs are interleaved and the median is kept, so
   background load affects both sides alike;
2. throughput with ``precision="bf16"`` (bfloat16 autocast) / fp32, and how close the vectors are;
3. the share of evaluation time spent outside encoding (search + metrics) for a 100k-document
   corpus (target <= 5 %). Search and metrics run for real on 100k vectors; the encoding time
   of 100k documents is extrapolated from the throughput measured in (1), because encoding
   100k documents takes ~30 minutes on 2 CPU cores.

Usage: python benchmarks/encode.py [--texts 512] [--repeats 3] [--docs 100000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from synthrank.data import embedded_dataset_path, load_beir_folder
from synthrank.evaluate.encode import encode_texts
from synthrank.evaluate.encoders import load_encoder
from synthrank.evaluate.metrics import evaluate_run
from synthrank.evaluate.search import exact_top_k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()

    dataset = load_beir_folder(embedded_dataset_path())
    texts = [d.full_text for d in dataset.corpus.values()][: args.texts]
    model = load_encoder("all-MiniLM-L6-v2", device="cpu")
    model.encode(texts[:64], batch_size=args.batch_size)  # warm-up

    ours, raw = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        encode_texts(model, texts, batch_size=args.batch_size, progress=False)
        ours.append(len(texts) / (time.perf_counter() - start))
        start = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, show_progress_bar=False)
        raw.append(len(texts) / (time.perf_counter() - start))
    ours_tps, raw_tps = statistics.median(ours), statistics.median(raw)
    print(f"encode throughput: ours {ours_tps:.1f} texts/s, raw SentenceTransformer.encode {raw_tps:.1f} texts/s "
          f"({len(texts)} MEDLINE abstracts, batch {args.batch_size}, median of {args.repeats})")
    print(f"RATIO encode_throughput ours/raw = {ours_tps / raw_tps:.3f}  (target >= 0.98)")

    fp32_runs, bf16_runs = [], []  # precision: bf16 autocast against fp32, interleaved like above
    for _ in range(args.repeats):
        for precision, runs in (("fp32", fp32_runs), ("bf16", bf16_runs)):
            start = time.perf_counter()
            vectors = encode_texts(model, texts, batch_size=args.batch_size, progress=False, precision=precision)
            runs.append(len(texts) / (time.perf_counter() - start))
            if precision == "fp32":
                reference = vectors
    cosine = np.sum(vectors * reference, 1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
    fp32_tps, bf16_tps = statistics.median(fp32_runs), statistics.median(bf16_runs)
    print(f"precision: fp32 {fp32_tps:.1f} texts/s, bf16 autocast {bf16_tps:.1f} texts/s; "
          f"min cosine bf16 vs fp32 vectors {cosine.min():.6f}")
    print(f"RATIO encode_throughput bf16/fp32 = {bf16_tps / fp32_tps:.3f}  (> 1 on CPUs with AVX512-BF16 or AMX)")

    rng = np.random.default_rng(0)
    dim = model.get_embedding_dimension()
    docs = rng.standard_normal((args.docs, dim)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries = docs[rng.choice(args.docs, args.queries, replace=False)] + 0.1 * rng.standard_normal((args.queries, dim)).astype(np.float32)
    start = time.perf_counter()
    scores, indices = exact_top_k(queries, docs, k=1000)
    search_s = time.perf_counter() - start
    doc_ids = [f"d{i}" for i in range(args.docs)]
    run = {f"q{q}": {doc_ids[i]: float(s) for i, s in zip(indices[q], scores[q])} for q in range(args.queries)}
    qrels = {f"q{q}": {doc_ids[i]: int(rng.integers(0, 4)) for i in rng.choice(args.docs, 20, replace=False)} for q in range(args.queries)}
    start = time.perf_counter()
    evaluate_run(qrels, run)
    metrics_s = time.perf_counter() - start
    encode_s = args.docs / ours_tps
    share = (search_s + metrics_s) / (encode_s + search_s + metrics_s)
    print(f"at {args.docs} docs x {args.queries} queries, top-1000: search {search_s:.2f} s, metrics {metrics_s:.2f} s, "
          f"encoding {encode_s:.0f} s (extrapolated from the measured {ours_tps:.1f} texts/s)")
    print(f"RATIO non_encoding_share = {share:.4f}  (target <= 0.05)")


if __name__ == "__main__":
    main()
