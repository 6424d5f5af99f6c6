"""Evaluation on a dev BEIR split during training, through synthrank's own evaluation path."""

from __future__ import annotations

from pathlib import Path

from sentence_transformers.base.evaluation import BaseEvaluator

from synthrank.data.beir import BeirDataset, load_beir_folder


class DevSetEvaluator(BaseEvaluator):
    """Encodes the dev corpus with the model being trained and reports trec_eval metrics.

    Returns ``{"dev_<metric>": value, ...}``; ``primary_metric`` is ``dev_<metric>`` (e.g.
    ``dev_ndcg@10``) so the trainer can track it. No embedding cache (the weights change).
    """

    def __init__(self, data: Path, split: str = "test", metric: str = "ndcg@10", relevance_level: int = 1, max_queries: int | None = None):
        super().__init__()
        dataset = load_beir_folder(Path(data), split=split)
        if max_queries:
            keep = list(dataset.queries)[:max_queries]
            dataset = BeirDataset(dataset.path, dataset.corpus, {q: dataset.queries[q] for q in keep}, {q: dataset.qrels[q] for q in keep}, split)
        self.dataset = dataset
        self.metric = metric
        self.relevance_level = relevance_level
        self.primary_metric = f"dev_{metric}"
        self.greater_is_better = True

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        from synthrank.evaluate.pipeline import evaluate

        result = evaluate("model", dataset=self.dataset, metrics=[self.metric, "recall@100"], relevance_level=self.relevance_level,
                          use_cache=False, progress=False, encoder=model)
        return {f"dev_{name}": value for name, value in result.metrics.items()}
