"""Evaluation on a dev BEIR split during training, through synthrank's own evaluation path."""

from __future__ import annotations

from sentence_transformers.base.evaluation import BaseEvaluator

from synthrank.train.config import DevConfig


class DevSetEvaluator(BaseEvaluator):
    """Encodes the dev corpus with the model being trained and reports trec_eval metrics.

    Returns ``{"dev_<metric>": value, ...}``; ``primary_metric`` is ``dev_<metric>`` (e.g.
    ``dev_ndcg@10``) so the trainer can track it. No embedding cache (the weights change).
    """

    def __init__(self, dev: DevConfig):
        super().__init__()
        self.dataset = dev.load()
        metric, relevance_level = dev.metric, dev.relevance_level
        self.metric = metric
        self.relevance_level = relevance_level
        self.primary_metric = f"dev_{metric}"
        self.greater_is_better = True

    def __call__(self, model, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        from synthrank.evaluate.pipeline import evaluate

        result = evaluate("model", dataset=self.dataset, metrics=[self.metric, "recall@100"], relevance_level=self.relevance_level,
                          use_cache=False, progress=False, encoder=model)
        return {f"dev_{name}": value for name, value in result.metrics.items()}
