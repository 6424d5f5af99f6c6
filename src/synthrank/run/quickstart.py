"""``synthrank quickstart``: the whole method on a laptop, offline, in a few minutes.

It is an ordinary ``synthrank run`` of a config built here (:func:`quickstart_config`):

- generate: the embedded Qwen2.5-Coder-0.5B writes one passage per level 3/2/1/0 for 16 of the
  24 quickstart queries shipped in the package (medical questions disjoint from MEDLINE's), with the
  ``per-level-hard`` prompt: every level on the query's subject, level 0 a near miss;
  Not SmolLM2-135M, the generate stage's default: on these queries it kept 12 of 32 passages,
  most of them fragments ("1", "...", "staph aureus"); Qwen 0.5B keeps ~95 % and orders the
  levels (docs/prompt-study.md) at ~30 tokens/s on 2 cores;
- train: all-MiniLM-L6-v2 on those ranking contexts with the 2-Wasserstein loss (ws2), in small
  steps (lr 5e-6, the development slice's choice);
- evaluate: the base model, BM25 and the trained model on the embedded MEDLINE collection,
  with paired significance tests, and ``report.md``.

``reduced=True`` (CI) takes the same code path with 4 queries, one training step (no warmup, so
the step changes the weights; the CI test checks that it did) and shorter sequences. Everything runs from the installed package: no ``../shared``, no hub, no GPU.
"""

from __future__ import annotations

import os
from pathlib import Path

from synthrank.run.config import RunConfig
from synthrank.systems import BASE, BM25, TRAINED

WHAT_IT_SHOWS = """\
What this demonstrates: the whole SyCL pipeline running end to end on your machine - an LLM
writes passages at four relevance levels for real-looking queries, independent judges measure
whether the levels are ordered, a bi-encoder is trained list-wise (ws2) on the graded lists, and
it is compared with its base model and BM25 on a real test collection with paired tests.

It uses what our development runs taught (docs/results.md, issue 18): passages at every level on
the query's own subject (level 0 a near miss, not an unrelated text) and small training steps,
because large steps on a few synthetic queries pull a strong model below its base.

What it cannot show: whether the method works. The generator is a 0.5B-parameter model (the
paper uses 70B-class models), there are 16 training queries instead of tens of thousands, and
training lasts a few small steps. Expect the trained model to be close to its base model, better
or worse by noise. For real numbers use `synthrank run configs/<name>.yaml` (see docs/results.md)."""


def free_cores(sample_s: float = 0.5) -> int:
    """Cores idle right now: CPU count minus the cores busy over a ``sample_s`` sample, at least 1.

    llama.cpp collapses when its threads share cores with other busy processes (the 1.5B model
    measured 15 tok/s with 1 thread and 3 tok/s with 2 on two busy cores), so the quickstart
    decodes on every core of an idle machine and on fewer of a busy one. A short sample of the
    CPU use, not the 1-minute load average: right after another job ends the load average still
    counts it for a minute (measured: the README's first command right after CI took 1 thread of an
    idle 2-core machine and 683 s; with the sample, 2 threads and 467 s).
    """
    import psutil

    cores = os.cpu_count() or 1
    busy = round(psutil.cpu_percent(interval=sample_s) / 100 * cores)
    return max(1, cores - busy)


def quickstart_config(out: Path, reduced: bool = False, generator: str = "qwen-coder-0.5b", threads: int = 0) -> RunConfig:
    """The quickstart's run config, writing to ``out``."""
    from synthrank.data.embedded import quickstart_queries_path

    queries = 4 if reduced else 16
    threads = threads or free_cores()
    # the lessons of the development runs (docs/results.md, issue 18): every level on the query's own
    # subject (level 0 a near miss, not an unrelated text), written as the collection's documents are
    generate = {"queries": str(quickstart_queries_path()), "limit": queries, "model": generator, "prompt": "per-level-hard",
                "collection": "abstracts of medical research papers",
                "max_tokens": 120 if reduced else 160, "threads": threads, "n_parallel": 4, "concurrency": 8,
                "diagnose": ["bm25", "dense"]}
    train = {
        "base_model": "all-MiniLM-L6-v2",
        "sources": [{"name": "synthetic", "data": "@generate"}],
        "context": {"group_size": 4, "selection": "random"},
        "loss": {"name": "ws2", "temperature": 1.0, "similarity": "cosine"},  # the reference's; 0.05 breaks ws2 (docs/results.md)
        # small steps: at 2e-5 a strong base drifts below itself on a few synthetic queries (issue 18)
        "training": {"epochs": 1 if reduced else 4, "batch_size": 2 if reduced else 8, "learning_rate": 5.0e-6,
                     # reduced: its one step must change the weights (a warmup would make it a step at lr 0)
                     "warmup_ratio": 0.0 if reduced else 0.1, "max_seq_length": 64 if reduced else 128, "save_steps": 4,
                     **({"max_steps": 1} if reduced else {})},
    }
    evaluate = {"datasets": [{"data": "embedded"}], "systems": [BASE, BM25, TRAINED],
                "max_seq_length": 128 if reduced else 256}
    return RunConfig(name="quickstart-reduced" if reduced else "quickstart", run_dir=out,
                     description=WHAT_IT_SHOWS.split("\n\n")[0],
                     generate=generate, train=train, evaluate=evaluate)
