"""Benchmark: training throughput of our losses vs plain sentence-transformers MNRL, and ws2's cost.

1. For each registered loss, examples/s of ``SentenceTransformerTrainer`` steps with our loss
   and our sequential epoch sampler, divided by examples/s of the same trainer with
   ``MultipleNegativesRankingLoss`` on the same model, batch size and texts (each example is a
   query + G passages, so both encode the same number of texts). Runs are interleaved
   (baseline, loss, baseline, loss, ...) and the median kept. Target >= 0.95.
2. The ws2 forward+backward on ``scores [B, B*G]`` at B = 256, G = 4, as a share of one full
   cached training step at that batch (GradCache, mini-batches of 32). Target <= 2 %.

Usage: python benchmarks/train.py [--batch-size 16] [--steps 3] [--repeats 3] [--skip-step]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from datasets import Dataset

from synthrank.data import embedded_dataset_path, load_beir_folder
from synthrank.evaluate.encoders import load_encoder
from synthrank.train.losses import get_loss_class
from synthrank.train.trainer import sequential_batch_sampler

G = 4


def make_dataset(n: int) -> Dataset:
    """Rows ``query, passage_0..passage_{G-1}, label`` from MEDLINE texts (deterministic)."""
    data = load_beir_folder(embedded_dataset_path())
    docs = [d.text for d in data.corpus.values()]
    rows = {"query": [], **{f"passage_{j}": [] for j in range(G)}, "label": []}
    for i in range(n):
        rows["query"].append(" ".join(docs[i % len(docs)].split()[:12]))
        for j in range(G):
            rows[f"passage_{j}"].append(docs[(i * G + j + 7) % len(docs)])
        rows["label"].append([3.0, 2.0, 1.0, 0.0])
    return Dataset.from_dict(rows)


class StepTimer:
    """Trainer callback recording the wall time of each optimizer step (seconds)."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                timer._start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                timer.durations.append(time.perf_counter() - timer._start)

        self.durations: list[float] = []
        self.callback = _Callback()


def time_steps(model, loss, dataset: Dataset, batch_size: int, steps: int, sampler=None) -> float:
    """Examples/s: batch size / median step time over ``steps`` optimizer steps (set-up excluded)."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    args = SentenceTransformerTrainingArguments(
        output_dir="/tmp/synthrank-bench", max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=1e-6,
        save_strategy="no", report_to="none", disable_tqdm=True, logging_strategy="no", dataloader_drop_last=True,
        **({"batch_sampler": sampler} if sampler else {}),
    )
    if isinstance(loss, type):
        loss = loss(model)
    data = dataset.remove_columns("label") if type(loss).__name__ == "MultipleNegativesRankingLoss" else dataset
    timer = StepTimer()
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss, callbacks=[timer.callback])
    trainer.train()
    return batch_size / statistics.median(timer.durations)


def ws2_share(model, skip_step: bool) -> None:
    from synthrank.train.losses import CachedListwiseLoss

    B = 256
    scores = torch.randn(B, B * G, requires_grad=True)
    labels = torch.tensor([[3.0, 2.0, 1.0, 0.0]] * B)
    loss = get_loss_class("ws2")()
    loss.compute(scores, labels).backward()  # warm-up
    times = []
    for _ in range(5):
        scores.grad = None
        start = time.perf_counter()
        loss.compute(scores, labels).backward()
        times.append(time.perf_counter() - start)
    ws2_s = statistics.median(times)
    print(f"ws2 forward+backward at B={B}, G={G} (scores [{B}, {B * G}]): {ws2_s * 1000:.1f} ms")
    if skip_step:
        return
    dataset = make_dataset(B)
    cached = CachedListwiseLoss(model, "ws2", mini_batch_size=32)
    eps = time_steps(model, cached, dataset, B, 1, sequential_batch_sampler)
    step_s = B / eps
    print(f"one cached training step at B={B}, G={G} ({B * (G + 1)} texts, max_seq_length {model.max_seq_length}): {step_s:.1f} s")
    print(f"RATIO ws2_share_of_step = {ws2_s / step_s:.5f}  (target <= 0.02)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--losses", default="ws2,infonce,kl,approx_ndcg")
    parser.add_argument("--skip-step", action="store_true", help="Only time ws2 itself, not the B=256 training step.")
    args = parser.parse_args()
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    model = load_encoder("all-MiniLM-L6-v2", device="cpu")
    model.max_seq_length = args.max_seq_length
    dataset = make_dataset(args.batch_size * args.steps)
    time_steps(model, MultipleNegativesRankingLoss, dataset, args.batch_size, 1)  # warm-up
    for name in args.losses.split(","):
        ours, base = [], []
        for _ in range(args.repeats):
            base.append(time_steps(model, MultipleNegativesRankingLoss, dataset, args.batch_size, args.steps))
            ours.append(time_steps(model, get_loss_class(name)(model, temperature=0.05), dataset, args.batch_size, args.steps, sequential_batch_sampler))
        print(f"{name}: ours {statistics.median(ours):.2f} examples/s, MNRL {statistics.median(base):.2f} examples/s "
              f"(batch {args.batch_size}, 1 query + {G} passages per example, median of {args.repeats})")
        print(f"RATIO train_throughput {name}/MNRL = {statistics.median(ours) / statistics.median(base):.3f}  (target >= 0.95)")
    ws2_share(model, args.skip_step)


if __name__ == "__main__":
    main()
