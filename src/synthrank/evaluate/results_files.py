"""Reading ``results.json`` files and pairing two systems' per-query scores.

A *result* is one parsed ``results.json`` (one system on one dataset split), as written by
``synthrank evaluate --out``. A file that is not a results.json raises
:class:`~synthrank.data.errors.DataFormatError` (``file:line: field: what is wrong``); results
that cannot be paired raise :class:`ComparisonError`, whose message names the files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthrank.data.errors import DataFormatError

#: Keys every results.json must have, with the JSON type each must hold.
REQUIRED_RESULT_KEYS: dict[str, type] = {
    "metrics": dict,
    "per_query": dict,
    "model": str,
    "dataset": str,
    "split": str,
}

#: Key that :func:`load_results` adds to every result: the absolute path of its file.
RESULTS_PATH_KEY = "results_path"


class ComparisonError(ValueError):
    """Results that are each well formed but cannot be compared; the message names the files."""


# --------------------------------------------------------------------------------------------
# Loading


def load_results(paths: Iterable[str | Path]) -> list[dict]:
    """Read and check ``results.json`` files, in the order given.

    Each returned dict is the file's JSON object plus ``RESULTS_PATH_KEY`` (``"results_path"``),
    the file's absolute path (used to tell apart systems that share a display name).

    Raises :class:`DataFormatError` naming the file when it is missing, is a folder, is not
    UTF-8 JSON, is not an object, lacks one of ``REQUIRED_RESULT_KEYS`` or holds the wrong
    type there, or has an empty ``per_query``; and ``ValueError`` when the same file is given
    twice or no path is given.
    """
    results: list[dict] = []
    seen: dict[Path, str] = {}
    for given in paths:
        path = Path(given)
        resolved = path.resolve()
        if resolved in seen:
            raise ValueError(f"{path}: the same results file is given twice (also as {seen[resolved]})")
        seen[resolved] = str(path)
        result = _read_results_file(path)
        result[RESULTS_PATH_KEY] = str(resolved)
        results.append(result)
    if not results:
        raise ValueError("no results files given")
    return results


def _read_results_file(path: Path) -> dict:
    if path.is_dir():
        raise DataFormatError(path, 0, "-", "is a folder; give the results.json file inside it")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFormatError(path, 0, "-", "file not found") from None
    except UnicodeDecodeError as err:
        raise DataFormatError(path, 0, "-", f"not a UTF-8 text file ({err.reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFormatError(path, err.lineno, "-", f"not valid JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(data, dict):
        raise DataFormatError(path, 0, "-", f"expected a results.json object, got a JSON {type(data).__name__}")
    for key, expected_type in REQUIRED_RESULT_KEYS.items():
        if key not in data:
            has = ", ".join(sorted(data)) or "none"
            raise DataFormatError(path, 0, key, f"missing: not a synthrank results.json (its keys: {has})")
        if not isinstance(data[key], expected_type):
            raise DataFormatError(
                path, 0, key, f"expected a JSON {_json_type_name(expected_type)}, got {type(data[key]).__name__}"
            )
    if not data["per_query"]:
        raise DataFormatError(path, 0, "per_query", "is empty: no per-query scores to compare")
    for query_id, scores in data["per_query"].items():
        if not isinstance(scores, dict):
            raise DataFormatError(path, 0, f"per_query.{query_id}", "expected an object of metric scores")
    return data


def _json_type_name(python_type: type) -> str:
    return {dict: "object", str: "string", list: "array"}.get(python_type, python_type.__name__)


def describe_result(result: dict) -> str:
    """How to name a result in messages: its file if known, else model and dataset."""
    return result.get(RESULTS_PATH_KEY) or f"<{result.get('model')} on {result.get('dataset')}>"


# --------------------------------------------------------------------------------------------
# Scores


def normalize_metric_name(metric: str) -> str:
    """``"nDCG@10 "`` -> ``"ndcg@10"``: results.json metric keys are lower case."""
    return metric.strip().lower()


def metric_value(result: dict, metric: str) -> float:
    """The system's aggregate score: ``metrics[metric]``, or the mean over ``per_query`` if absent.

    Raises :class:`ComparisonError` naming the file when neither holds ``metric``.
    """
    reported = result["metrics"].get(metric)
    if reported is not None:
        return _as_score(reported, result, f"metrics.{metric}")
    return float(np.mean(list(per_query_scores(result, metric).values())))


def per_query_scores(result: dict, metric: str) -> dict[str, float]:
    """``{query_id: score}`` of ``metric`` for every query in ``result["per_query"]``.

    Raises :class:`ComparisonError` when no query has ``metric`` (listing the metrics there
    are) and :class:`DataFormatError` when only some queries lack it or a score is not a number.
    """
    per_query = result["per_query"]
    if not any(metric in scores for scores in per_query.values()):
        available = sorted(set(result["metrics"]).union(*(scores.keys() for scores in per_query.values())))
        raise ComparisonError(
            f"{describe_result(result)}: metric {metric!r} is not in this results file "
            f"(it has: {', '.join(available) or 'none'})"
        )
    scores: dict[str, float] = {}
    for query_id, query_scores in per_query.items():
        if metric not in query_scores:
            raise DataFormatError(describe_result(result), 0, f"per_query.{query_id}", f"has no {metric!r} score")
        scores[query_id] = _as_score(query_scores[metric], result, f"per_query.{query_id}.{metric}")
    return scores


def _as_score(value: object, result: dict, field_name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataFormatError(describe_result(result), 0, field_name, f"expected a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PairedScores:
    """Scores of a system and the baseline on the queries both have, sorted by query id.

    ``system: [P]`` and ``baseline: [P]`` are aligned with ``query_ids``; ``only_in_system`` and
    ``only_in_baseline`` count the queries left out because the other side lacks them.
    """

    query_ids: tuple[str, ...]
    system: np.ndarray
    baseline: np.ndarray
    only_in_system: int
    only_in_baseline: int

    @property
    def differences(self) -> np.ndarray:
        """``system - baseline`` per paired query, ``[P]``."""
        return self.system - self.baseline


def pair_per_query_scores(system_result: dict, baseline_result: dict, metric: str) -> PairedScores:
    """Align two results' per-query ``metric`` scores on the queries both evaluated.

    Raises :class:`ComparisonError` naming both files when they share no query.
    """
    system_scores = per_query_scores(system_result, metric)
    baseline_scores = per_query_scores(baseline_result, metric)
    shared = sorted(system_scores.keys() & baseline_scores.keys())
    if not shared:
        raise ComparisonError(
            f"{describe_result(system_result)} and the baseline {describe_result(baseline_result)} share no query "
            f"({len(system_scores)} vs {len(baseline_scores)} queries, e.g. "
            f"{_first_ids(system_scores)} vs {_first_ids(baseline_scores)}): were they run on the same queries?"
        )
    return PairedScores(
        query_ids=tuple(shared),
        system=np.array([system_scores[q] for q in shared], dtype=np.float64),
        baseline=np.array([baseline_scores[q] for q in shared], dtype=np.float64),
        only_in_system=len(system_scores) - len(shared),
        only_in_baseline=len(baseline_scores) - len(shared),
    )


def _first_ids(scores: dict[str, float], count: int = 3) -> str:
    return ", ".join(repr(q) for q in sorted(scores)[:count])
