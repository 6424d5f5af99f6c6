"""Quality filters for generated passages; every rejection is counted with its reason.

Reasons, checked in this order for each passage:

* ``empty`` - nothing but whitespace;
* ``too_short`` / ``too_long`` - fewer than ``min_words`` or more than ``max_words`` words;
* ``refusal_or_meta`` - a refusal ("As an AI ...", "I cannot ...") or meta text about the task
  ("Here is a passage", "relevance level", "this passage");
* ``copies_query`` - the passage is the query, or mostly the query's words (token containment
  >= ``query_copy`` with few extra words);
* ``exact_duplicate`` - same normalized text as an earlier passage of the same query;
* ``near_duplicate`` - word-3-gram Jaccard similarity >= ``near_dup`` with an earlier kept
  passage of the same query.

Passages are compared in (level descending, index) order, so a duplicate is always the later one.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

REASONS = ("empty", "too_short", "too_long", "refusal_or_meta", "copies_query", "exact_duplicate", "near_duplicate")

_META = re.compile(
    r"\bas an ai\b|\bi(?:'m| am) (?:sorry|unable)\b|\bi can(?:not|'t) (?:help|provide|write|assist)\b|"
    r"\blanguage model\b|^\s*(?:here is|here's|sure[,!]|certainly[,!])|\brelevance level\b|"
    r"\bthis passage\b|\bthe query\b|\bpassage (?:above|below)\b",
    re.I,
)
_WORD = re.compile(r"\w+", re.U)


@dataclass(frozen=True)
class FilterSettings:
    """Thresholds (words are ``\\w+`` runs)."""

    min_words: int = 15
    max_words: int = 300
    query_copy: float = 0.9
    near_dup: float = 0.7


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return _WORD.findall(text.lower())


def _shingles(tokens: list[str], k: int = 3) -> set[tuple[str, ...]]:
    if len(tokens) < k:
        return {tuple(tokens)}
    return {tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1)}


def single_reason(passage: str | None, query: str, settings: FilterSettings = FilterSettings()) -> str | None:
    """The reason a passage fails on its own (no comparison with others), or None."""
    if passage is None or not passage.strip():
        return "empty"
    tokens = words(passage)
    if len(tokens) < settings.min_words:
        return "too_short"
    if len(tokens) > settings.max_words:
        return "too_long"
    if _META.search(passage):
        return "refusal_or_meta"
    q = set(words(query))
    if q and tokens:
        extra = [t for t in tokens if t not in q]
        if " ".join(tokens) == " ".join(words(query)) or (
            len(q & set(tokens)) / len(q) >= settings.query_copy and len(extra) < len(q)):
            return "copies_query"
    return None


def filter_query_passages(query: str, passages: list[tuple[object, str | None]],
                          settings: FilterSettings = FilterSettings()) -> dict[object, str | None]:
    """Filter the passages of one query: ``[(key, text)]`` in priority order -> ``{key: reason or None}``."""
    out: dict[object, str | None] = {}
    kept_norm: set[str] = set()
    kept_shingles: list[set] = []
    for key, text in passages:
        reason = single_reason(text, query, settings)
        if reason is None:
            tokens = words(text or "")
            norm = " ".join(tokens)
            shingles = _shingles(tokens)
            if norm in kept_norm:
                reason = "exact_duplicate"
            elif any(len(shingles & s) / max(1, len(shingles | s)) >= settings.near_dup for s in kept_shingles):
                reason = "near_duplicate"
            else:
                kept_norm.add(norm)
                kept_shingles.append(shingles)
        out[key] = reason
    return out


def count_reasons(reasons: dict[object, str | None]) -> dict[str, int]:
    """``{"kept": k, reason: count, ...}`` with every reason present (0 when unused)."""
    counts = Counter(r or "kept" for r in reasons.values())
    return {"kept": counts.get("kept", 0), **{r: counts.get(r, 0) for r in REASONS}}
