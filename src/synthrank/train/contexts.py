"""Graded ranking contexts: per query, G passages with levels, merged from several sources.

SyCL trains on a *ranking context* per query: a group of G passages, each with a relevance
level, scored list-wise. This module merges *sources* (real labels, synthetic exports,
mined negatives; see :mod:`synthrank.train.sources`) into one candidate pool per query and
draws a group of G from it every epoch.

**How a group is built** (query ``q``, epoch ``e``; every draw uses a random generator
seeded by ``(seed + e, q)``, so a query's group does not depend on the other queries):

1. *Pool.* All candidates of ``q`` from every source, in source order, after each source's
   ``keep_levels`` and ``relabel``. A passage whose text already came from an earlier
   source (or earlier in the same source) is dropped and counted as a duplicate.
2. *Per-source caps.* A source with ``max_per_level`` / ``max_per_query`` contributes a
   fresh random draw of at most that many passages per level / in total.
3. *Selection* of G from what remains:
   ``random`` (uniform subset), ``top_levels`` (highest levels first, random among equal
   levels), ``one_per_level`` (round-robin over the levels present, highest first, a
   random passage each time - the group covers as many levels as it can).
4. *Binary contexts* (``binary_threshold: t``, for InfoNCE): levels >= t are positives
   (label 1), the rest negatives (label 0). A group is exactly **one positive** + G-1
   negatives; source caps apply to negatives only; the positive is a random one
   (``top_levels``: one of the highest level). The selection strategy picks the negatives.
5. *Too few candidates* (fewer than G after the caps) - the ``fill`` rule:
   ``mask`` pads the group with empty passages labelled **-1**; the losses mask label < 0
   slots out of the scores, so padding never changes the loss of any other query.
   ``mined`` tops the group up with random passages from ``fill_source`` (a designated
   negatives source that is used *only* for filling; binary contexts fill with its
   negatives). A query that still has fewer than G is dropped.
6. *Order.* Highest level first (binary: the positive first), padding last; equal levels
   keep the random order of the draw. So "the first passage is the positive" holds for
   InfoNCE, and labels are non-increasing except for trailing -1 padding.

**Dropped queries are counted, never silent**: ``RankingContexts.stats.dropped`` maps each
reason (no query text, no candidates, no positive, fewer than ``min_candidates``, fewer
than G after filling) to a count, and a warning is logged. Which queries are kept does not
depend on the epoch, so every epoch's dataset has the same rows in the same query order
(shuffling is the trainer's job).

**Dataset contract** (:func:`build_epoch_dataset`): one row per kept query, columns
``query`` (str), ``passage_0`` ... ``passage_{G-1}`` (str; padding is ``""``) and ``label``
(list of G float32: the training level, or 1/0 in binary contexts, or -1 for padding).

**The four configurations of SyCL** (YAML; ``sources`` and ``context`` sections)::

    # 1. real binary: real positives + 2 BM25-mined negatives, InfoNCE, G = 3
    #    (negatives: synthrank mine --queries data/scifact --split train --rank-range 1:1000
    #     --count 30 --out runs/scifact-bm25-neg.tsv)
    sources:
      - {name: real, data: data/scifact, split: train, keep_levels: [1]}
      - {name: bm25, data: runs/scifact-bm25-neg.tsv, corpus: data/scifact}
    context: {group_size: 3, binary_threshold: 1, selection: random}

    # 2. synthetic binary: synthetic levels >= 2 positive, < 2 negative, InfoNCE, G = 3
    sources:
      - {name: synthetic, data: data/synthetic/scifact-train}
    context: {group_size: 3, binary_threshold: 2, selection: random}

    # 3. synthetic multi-level: all four levels, a random subset of G = 4 each epoch, ws2
    sources:
      - {name: synthetic, data: data/synthetic/scifact-train}
    context: {group_size: 4, selection: random}

    # 4. synthetic + real: real positives -> 3, 2 BM25 negatives -> 1, synthetic 0-3, G = 7, ws2
    sources:
      - {name: real, data: data/scifact, split: train, keep_levels: [1], relabel: {1: 3}, max_per_query: 1}
      - {name: bm25, data: runs/scifact-bm25-neg.tsv, corpus: data/scifact, relabel: {0: 1}, max_per_query: 2}
      - {name: synthetic, data: data/synthetic/scifact-train, max_per_level: 1}
    context: {group_size: 7, selection: random}   # 1 real + 2 mined + 4 synthetic levels = 7

Add ``fill: mined`` and ``fill_source: <name>`` to top short groups up from a negatives
source instead of padding them.

Python::

    contexts = build_contexts([SourceConfig(...), ...], ContextConfig(group_size=4))
    print(contexts.stats.render())
    train_dataset = build_epoch_dataset(contexts, epoch=0)
"""

from __future__ import annotations

import logging
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from synthrank.train.sources import Candidate, LoadedSource, SourceConfig, load_sources

logger = logging.getLogger(__name__)

PAD_LABEL = -1.0

DROP_NO_TEXT = "no query text in any source"
DROP_NO_CANDIDATES = "no candidates"
DROP_NO_POSITIVE = "no positive (level >= binary_threshold)"
DROP_TOO_FEW = "fewer than min_candidates candidates"
DROP_SHORT_AFTER_FILL = "fewer than group_size candidates after filling"

__all__ = [
    "Candidate", "ContextConfig", "ContextStats", "RankingContexts", "RankingGroup", "SourceConfig",
    "build_contexts", "build_epoch_dataset", "sample_groups", "PAD_LABEL",
]


class ContextConfig(BaseModel):
    """How groups are drawn from the pooled candidates (the ``context:`` section of the YAML)."""

    model_config = ConfigDict(extra="forbid")

    group_size: int = Field(ge=1, description="G: passages per query per step.")
    selection: Literal["random", "top_levels", "one_per_level"] = "random"
    fill: Literal["mask", "mined"] = Field("mask", description="Queries with fewer than G candidates: pad (label -1) or top up from fill_source.")
    fill_source: str | None = Field(None, description="Source used only to fill short groups (fill: mined).")
    min_candidates: int = Field(1, ge=1, description="Drop queries with fewer candidates than this (before filling).")
    seed: int = Field(0, description="Seed of the per-epoch draw of each group.")
    binary_threshold: int | None = Field(None, ge=0, description="Binary contexts: levels >= this are positives (1), others 0; one positive per group, first.")

    @model_validator(mode="after")
    def _consistent(self) -> ContextConfig:
        if self.fill == "mined" and not self.fill_source:
            raise ValueError("fill: mined needs fill_source (the name of a negatives source)")
        if self.fill == "mask" and self.fill_source:
            raise ValueError("fill_source is only used with fill: mined")
        if self.min_candidates > self.group_size:
            raise ValueError(f"min_candidates ({self.min_candidates}) must not exceed group_size ({self.group_size})")
        if self.binary_threshold is not None and self.group_size < 2:
            raise ValueError("binary contexts need group_size >= 2 (one positive and at least one negative)")
        return self


@dataclass
class RankingGroup:
    """One query's group for one epoch: parallel lists of length G (padding: text "", id None)."""

    query_id: str
    query: str
    passages: list[str]
    labels: list[float]
    doc_ids: list[str | None]
    sources: list[str | None]
    levels: list[int | None]


@dataclass
class ContextStats:
    """What went into the contexts: counts per query, level, source and drop reason.

    Counts describe the kept queries' pools (after dedup, before the per-epoch caps and
    before binarisation); ``levels`` are training levels (after relabel). The pad / fill
    slot counts are per epoch and the same every epoch. ``sources`` holds each source's
    own reading counts (judgments, filtered, unknown documents skipped, levels).
    """

    group_size: int
    queries_seen: int = 0
    queries_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    candidates_per_query: dict[str, float] = field(default_factory=dict)
    levels: dict[int, int] = field(default_factory=dict)
    positives_per_query: dict[str, float] | None = None
    duplicates_removed: int = 0
    short_queries: int = 0
    padded_slots_per_epoch: int = 0
    filled_slots_per_epoch: int = 0
    fill_only_queries: int = 0
    sources: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    def render(self) -> str:
        """A few human-readable lines (for logs and the CLI)."""
        cpq = self.candidates_per_query
        lines = [
            f"ranking contexts: {self.queries_kept} of {self.queries_seen} queries kept, group size {self.group_size}",
            f"candidates per query: min {cpq.get('min', 0)}, median {cpq.get('median', 0)}, mean {cpq.get('mean', 0)}, max {cpq.get('max', 0)}",
            "levels: " + ", ".join(f"{lvl}: {n}" for lvl, n in self.levels.items()),
        ]
        if self.positives_per_query:
            ppq = self.positives_per_query
            lines.append(f"positives per query: min {ppq['min']}, mean {ppq['mean']}, max {ppq['max']}")
        for reason, n in self.dropped.items():
            lines.append(f"dropped {n} queries: {reason}")
        if self.short_queries:
            how = (f"{self.padded_slots_per_epoch} padded slots (label -1)" if self.padded_slots_per_epoch
                   else f"{self.filled_slots_per_epoch} slots filled from the fill source")
            lines.append(f"{self.short_queries} queries have fewer than {self.group_size} candidates: {how} per epoch")
        if self.duplicates_removed:
            lines.append(f"{self.duplicates_removed} duplicate passages removed (same text for the same query)")
        if self.fill_only_queries:
            lines.append(f"{self.fill_only_queries} queries appear only in the fill source (ignored)")
        for name, s in self.sources.items():
            lines.append(f"source {name}: {s['candidates']} candidates for {s['queries_with_candidates']} queries, levels {s['levels']}")
        return "\n".join(lines)


@dataclass
class RankingContexts:
    """Candidate pools of the kept queries; draw an epoch with :func:`build_epoch_dataset`.

    ``pools[qid]`` holds the candidates grouped by source (source order); ``fill[qid]`` the
    fill source's candidates (``fill: mined`` only); ``queries[qid]`` the query text.
    """

    config: ContextConfig
    source_configs: dict[str, SourceConfig]
    queries: dict[str, str]
    pools: dict[str, dict[str, list[Candidate]]]
    fill: dict[str, list[Candidate]]
    stats: ContextStats

    def __len__(self) -> int:
        return len(self.pools)


def build_contexts(sources: Sequence[SourceConfig | dict] | Sequence[LoadedSource], config: ContextConfig | dict,
                   base_dir: Path | None = None) -> RankingContexts:
    """Load the sources and build every query's candidate pool (see the module docstring).

    ``sources`` are :class:`SourceConfig` (or dicts of one), or already loaded sources;
    relative paths resolve against ``base_dir`` (the YAML file's folder). Raises
    DataFormatError for bad files and ValueError for an inconsistent configuration
    (unknown ``fill_source``, duplicate names). Dropped queries are counted in
    ``stats.dropped`` and logged as a warning.
    """
    config = config if isinstance(config, ContextConfig) else ContextConfig.model_validate(config)
    items = list(sources)
    if not items:
        raise ValueError("a ranking context needs at least one source")
    if all(isinstance(s, LoadedSource) for s in items):
        loaded = items
    else:
        loaded = load_sources([s if isinstance(s, SourceConfig) else SourceConfig.model_validate(s) for s in items], base_dir)
    names = [s.config.name for s in loaded]
    if config.fill_source and config.fill_source not in names:
        raise ValueError(f"fill_source {config.fill_source!r} is not a source (sources: {', '.join(names)})")
    if config.fill_source and len(loaded) == 1:
        raise ValueError("fill_source must not be the only source: it is used only to fill groups")
    return _pool(loaded, config)


def _merge_query_texts(loaded: Iterable[LoadedSource]) -> dict[str, str]:
    texts: dict[str, str] = {}
    origin: dict[str, str] = {}
    for source in loaded:
        for qid, text in source.queries.items():
            if qid in texts and texts[qid].strip() != text.strip():
                raise ValueError(f"query {qid!r} has different text in sources {origin[qid]!r} and {source.config.name!r} "
                                 f"({texts[qid][:60]!r} vs {text[:60]!r}); their query ids do not refer to the same queries")
            texts.setdefault(qid, text)
            origin.setdefault(qid, source.config.name)
    return texts


def _capped_count(candidates: Sequence[Candidate], cfg: SourceConfig) -> int:
    """How many of ``candidates`` survive the source's per-epoch caps (the same every epoch)."""
    if cfg.max_per_level is not None:
        per_level = Counter(c.level for c in candidates)
        n = sum(min(cfg.max_per_level, k) for k in per_level.values())
    else:
        n = len(candidates)
    return min(n, cfg.max_per_query) if cfg.max_per_query is not None else n


def _summary(values: list[int]) -> dict[str, float]:
    if not values:
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    return {"min": min(values), "median": statistics.median(values), "mean": round(statistics.fmean(values), 3), "max": max(values)}


def _pool(loaded: list[LoadedSource], config: ContextConfig) -> RankingContexts:
    G, thr = config.group_size, config.binary_threshold
    query_texts = _merge_query_texts(loaded)
    pool_sources = [s for s in loaded if s.config.name != config.fill_source]
    fill_source = next((s for s in loaded if s.config.name == config.fill_source), None)
    order: dict[str, None] = {}
    for source in pool_sources:
        order.update(dict.fromkeys(source.candidates))
    stats = ContextStats(group_size=G, queries_seen=len(order), sources={s.config.name: s.stats for s in loaded})
    if fill_source is not None:
        stats.fill_only_queries = sum(1 for q in fill_source.candidates if q not in order)
    dropped: Counter[str] = Counter()
    pools: dict[str, dict[str, list[Candidate]]] = {}
    fills: dict[str, list[Candidate]] = {}
    sizes, positives = [], []
    levels: Counter[int] = Counter()
    for qid in order:
        seen: set[str] = set()
        pool: dict[str, list[Candidate]] = {}
        for source in pool_sources:
            kept = []
            for cand in source.candidates.get(qid, ()):
                key = cand.text.strip()
                if key in seen:
                    stats.duplicates_removed += 1
                    continue
                seen.add(key)
                kept.append(cand)
            if kept:
                pool[source.config.name] = kept
        fill = []
        for cand in fill_source.candidates.get(qid, ()) if fill_source else ():
            key = cand.text.strip()
            if key not in seen and (thr is None or cand.level < thr):  # binary contexts fill with negatives only
                seen.add(key)
                fill.append(cand)
        available, n_pos = _available(pool, config, loaded)
        fill_available = _capped_count(fill, fill_source.config) if fill_source else 0
        reason = None
        if qid not in query_texts:
            reason = DROP_NO_TEXT
        elif not pool:
            reason = DROP_NO_CANDIDATES
        elif thr is not None and n_pos == 0:
            reason = DROP_NO_POSITIVE
        elif available < config.min_candidates:
            reason = DROP_TOO_FEW
        elif config.fill == "mined" and available + fill_available < G:
            reason = DROP_SHORT_AFTER_FILL
        if reason:
            dropped[reason] += 1
            continue
        pools[qid] = pool
        if fill_source is not None:
            fills[qid] = fill
        all_cands = [c for cs in pool.values() for c in cs]
        sizes.append(len(all_cands))
        levels.update(c.level for c in all_cands)
        if thr is not None:
            positives.append(n_pos)
        if available < G:
            stats.short_queries += 1
            if config.fill == "mask":
                stats.padded_slots_per_epoch += G - available
            else:
                stats.filled_slots_per_epoch += G - available
    stats.queries_kept = len(pools)
    stats.dropped = dict(dropped)
    stats.candidates_per_query = _summary(sizes)
    stats.levels = dict(sorted(levels.items(), reverse=True))
    stats.positives_per_query = _summary(positives) if thr is not None else None
    if dropped:
        logger.warning("ranking contexts: dropped %d of %d queries (%s)", sum(dropped.values()), stats.queries_seen,
                       "; ".join(f"{reason}: {n}" for reason, n in dropped.items()))
    return RankingContexts(config=config, source_configs={s.config.name: s.config for s in loaded},
                           queries={q: query_texts[q] for q in pools}, pools=pools, fill=fills, stats=stats)


def _available(pool: dict[str, list[Candidate]], config: ContextConfig, loaded: list[LoadedSource]) -> tuple[int, int]:
    """``(passages a group can take before filling, number of positives)`` for one query."""
    cfgs = {s.config.name: s.config for s in loaded}
    thr, G = config.binary_threshold, config.group_size
    if thr is None:
        return min(G, sum(_capped_count(cands, cfgs[name]) for name, cands in pool.items())), 0
    n_pos = sum(1 for cands in pool.values() for c in cands if c.level >= thr)
    n_neg = sum(_capped_count([c for c in cands if c.level < thr], cfgs[name]) for name, cands in pool.items())
    return (min(1, n_pos) + min(G - 1, n_neg)), n_pos


def _draw_capped(cands: Sequence[Candidate], cfg: SourceConfig, rng: random.Random) -> list[Candidate]:
    """A source's per-epoch draw: at most ``max_per_level`` per level, then ``max_per_query``."""
    out = list(cands)
    if cfg.max_per_level is not None:
        by_level: dict[int, list[Candidate]] = defaultdict(list)
        for c in out:
            by_level[c.level].append(c)
        out = []
        for level in sorted(by_level, reverse=True):
            group = by_level[level]
            out.extend(rng.sample(group, min(cfg.max_per_level, len(group))))
    if cfg.max_per_query is not None and len(out) > cfg.max_per_query:
        out = rng.sample(out, cfg.max_per_query)
    return out


def _select(cands: list[Candidate], k: int, selection: str, rng: random.Random) -> list[Candidate]:
    """``min(k, len(cands))`` candidates by the selection strategy (order: as drawn)."""
    if k <= 0:
        return []
    if selection == "random":
        return rng.sample(cands, min(k, len(cands)))
    shuffled = rng.sample(cands, len(cands))
    if selection == "top_levels":
        return sorted(shuffled, key=lambda c: -c.level)[:k]
    by_level: dict[int, list[Candidate]] = defaultdict(list)
    for c in shuffled:
        by_level[c.level].append(c)
    queues = [by_level[level] for level in sorted(by_level, reverse=True)]
    out: list[Candidate] = []
    while len(out) < k and any(queues):
        for queue in queues:
            if queue and len(out) < k:
                out.append(queue.pop(0))
    return out


def _choose_positive(positives: list[Candidate], selection: str, rng: random.Random) -> Candidate:
    if selection == "top_levels":
        best = max(c.level for c in positives)
        positives = [c for c in positives if c.level == best]
    return rng.choice(positives)


def _group(contexts: RankingContexts, qid: str, epoch: int) -> RankingGroup:
    config = contexts.config
    G, thr = config.group_size, config.binary_threshold
    rng = random.Random(f"{config.seed + epoch}|{qid}")
    pool = contexts.pools[qid]
    cfgs = contexts.source_configs
    if thr is None:
        drawn = [c for name, cands in pool.items() for c in _draw_capped(cands, cfgs[name], rng)]
        chosen = _select(drawn, G, config.selection, rng)
        head: list[Candidate] = []
    else:
        positive = _choose_positive([c for cands in pool.values() for c in cands if c.level >= thr], config.selection, rng)
        drawn = [c for name, cands in pool.items() for c in _draw_capped([c for c in cands if c.level < thr], cfgs[name], rng)]
        chosen = _select(drawn, G - 1, config.selection, rng)
        head = [positive]
    shortfall = G - len(head) - len(chosen)
    if shortfall > 0 and config.fill == "mined":
        fill = _draw_capped(contexts.fill.get(qid, []), cfgs[config.fill_source], rng)
        chosen += rng.sample(fill, min(shortfall, len(fill)))
    body = sorted(chosen, key=lambda c: -c.level)  # stable: equal levels keep the draw's random order
    members = head + body
    if thr is None:
        labels = [float(c.level) for c in members]
    else:
        labels = [1.0] + [0.0] * len(body)
    pad = G - len(members)
    return RankingGroup(
        query_id=qid, query=contexts.queries[qid],
        passages=[c.text for c in members] + [""] * pad,
        labels=labels + [PAD_LABEL] * pad,
        doc_ids=[c.doc_id for c in members] + [None] * pad,
        sources=[c.source for c in members] + [None] * pad,
        levels=[c.level for c in members] + [None] * pad,
    )


def sample_groups(contexts: RankingContexts, epoch: int) -> list[RankingGroup]:
    """Every kept query's group for ``epoch`` (same query order every epoch), with ids and sources."""
    return [_group(contexts, qid, epoch) for qid in contexts.pools]


def build_epoch_dataset(contexts: RankingContexts, epoch: int):
    """The training rows of ``epoch`` as a ``datasets.Dataset``.

    Columns: ``query``, ``passage_0`` ... ``passage_{G-1}`` (strings, padding ``""``) and
    ``label`` (G float32 per row: level, or 1/0 when binary, -1 for padding). Passages are
    ordered highest level first (binary: the positive first). Deterministic in
    ``(seed + epoch)``; different epochs draw different groups.
    """
    from datasets import Dataset, Features, List, Value

    G = contexts.config.group_size
    groups = sample_groups(contexts, epoch)
    columns: dict[str, list] = {"query": [g.query for g in groups]}
    for i in range(G):
        columns[f"passage_{i}"] = [g.passages[i] for g in groups]
    columns["label"] = [g.labels for g in groups]
    features = Features({"query": Value("string"), **{f"passage_{i}": Value("string") for i in range(G)},
                         "label": List(Value("float32"))})
    return Dataset.from_dict(columns, features=features)
