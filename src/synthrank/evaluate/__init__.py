"""Evaluation: encoding (+ cache), search, BM25, metrics (pytrec_eval), reports, comparisons."""

from synthrank.evaluate.metrics import DEFAULT_METRICS, evaluate_run
from synthrank.evaluate.pipeline import EvaluationResult, evaluate

__all__ = ["DEFAULT_METRICS", "EvaluationResult", "evaluate", "evaluate_run"]
