"""Evaluation: encoding (+ cache), search, BM25, metrics (pytrec_eval), reports, comparisons.

``evaluate`` and ``EvaluationResult`` are imported lazily so that light commands
(``synthrank compare``) do not pay for importing torch.
"""

from synthrank.evaluate.metrics import DEFAULT_METRICS, evaluate_run

__all__ = ["DEFAULT_METRICS", "EvaluationResult", "evaluate", "evaluate_run"]


def __getattr__(name: str):
    if name in ("evaluate", "EvaluationResult"):
        from synthrank.evaluate import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'synthrank.evaluate' has no attribute {name!r}")
